"""The bundled sensitivity profiles: per taxonomy and class, the root node ids that make a node sensitive.

Each root is written as ``(id, name)``: ``tests/test_sensitivity.py`` checks every name against the bundled
taxonomy, so a mistyped id cannot slip through. The reasoning for every borderline node is in
``docs/sensitivity.md``. :func:`profile_parts` composes the tables of a profile into the arguments of a
:class:`~adtarget.reference._sensitivity.SensitivityProfile`; nothing here is validated (the profile validates itself).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AGE_RESTRICTED", "GDPR_ART9_EXTRA", "IAB_SCD_NOT_SPECIAL", "POLICY_CLASSES", "PROFILE_NAMES", "profile_parts",
]

# --- the bundled node lists (taxonomy -> class -> [(root id, root name)]); reasons in docs/sensitivity.md ----
_Table = dict[str, dict[str, list[tuple[str, str]]]]

POLICY_CLASSES: _Table = {
    "iab-2.2": {
        "racial_or_ethnic_origin": [("214", "World Cuisines")],
        "religious_or_philosophical_beliefs": [
            ("453", "Religion & Spirituality"), ("175", "Religious Events"),
            ("361", "Religious (Music and Audio)"), ("354", "Gospel Music"),
        ],
        "health": [
            ("286", "Medical Health"), ("224", "Children's Health"), ("228", "Men's Health"),
            ("230", "Senior Health"), ("231", "Weight Loss"), ("233", "Alternative Medicine"),
            ("236", "Physical Therapy"), ("237", "Smoking Cessation"), ("238", "Women's Health"),
            ("219", "Food Allergies"), ("136", "Special Education"), ("199", "Special Needs Kids"),
            ("494", "Disabled Sports"), ("399", "Health Insurance"), ("169", "Birth"),
        ],
    },
    "topics-v2": {
        "racial_or_ethnic_origin": [],
        "religious_or_philosophical_beliefs": [],
        "health": [("160", "Health Insurance")],
    },
    "iab-audience-1.1": {
        "racial_or_ethnic_origin": [
            ("380", "World Cuisines"), ("1095", "Ethnic"), ("1426", "Holiday and Ethnic Items"),
            ("156", "Language"),
        ],
        "religious_or_philosophical_beliefs": [
            ("503", "Religious (Music and Audio)"), ("496", "Gospel Music"), ("1344", "Religious Items"),
            ("1474", "Psychics and Astrology"), ("1097", "Matzoh Food"),
        ],
        "health": [
            ("381", "Health and Medical Services"), ("466", "Medical Health"),
            ("550", "Pharmaceuticals, Conditions, and Symptoms"), ("1448", "Health and Medical Services"),
            ("1555", "Pharmaceuticals, Conditions, and Symptoms"), ("407", "Children's Health"),
            ("411", "Men's Health"), ("413", "Senior Health"), ("414", "Weight Loss"),
            ("416", "Alternative Medicine"), ("419", "Physical Therapy"), ("420", "Smoking Cessation"),
            ("421", "Women's Health"), ("374", "Food Allergies"), ("627", "Disabled Sports"),
            ("762", "Health and Fitness Apps"), ("765", "Medical Apps"), ("1393", "Medical Insurance"),
            ("925", "Maternity Clothing"), ("1501", "Births"),
        ],
    },
}

GDPR_ART9_EXTRA: _Table = {
    "iab-2.2": {
        "political_opinions": [("386", "Politics"), ("174", "Political Event")],
        "trade_union_membership": [],
        "genetic_data": [("468", "Genetics"), ("273", "Genealogy and Ancestry")],
        "biometric_data": [],
        "sex_life_or_sexual_orientation": [("188", "Dating"), ("307", "Sexual Health")],
    },
    "topics-v2": {
        "political_opinions": [("247", "Politics")],
        "trade_union_membership": [],
        "genetic_data": [],
        "biometric_data": [],
        "sex_life_or_sexual_orientation": [],
    },
    "iab-audience-1.1": {
        "political_opinions": [("529", "Politics")],
        "trade_union_membership": [("1541", "Federations and Professional Associations")],
        "genetic_data": [("222", "Genetics"), ("449", "Genealogy and Ancestry"),
                         ("1381", "Genealogy and Family Trees")],
        "biometric_data": [],
        "sex_life_or_sexual_orientation": [("51", "Other Gender")],
    },
}

#: Products and content for adults only (alcohol, tobacco, gambling, dating, adult content, weapons, nightlife:
#: the categories the IAB's and the ad industry's codes restrict for minors, e.g. the CAP Code's age-restricted
#: sections and Google Ads' restricted content). For a person under the policy's ``adult_age`` the gate treats
#: them as sensitive, in every profile; ``strict_minors`` also removes them for everyone. (IAB Content 2.2's
#: "Sensitive Topics" branch, with its adult-content, weapons and drugs nodes, is not an interest taxonomy and is
#: not loaded: ``IAB_NON_INTEREST_ROOTS``.)
AGE_RESTRICTED: _Table = {
    "iab-2.2": {"age_restricted": [
        ("211", "Alcoholic Beverages"), ("260", "Cigars"), ("181", "Casinos & Gambling"),
        ("524", "Poker and Professional Gambling"), ("480", "Lotteries and Scratchcards"), ("188", "Dating"),
        ("514", "Hunting and Shooting"), ("158", "Nightclubs"),
    ]},
    "topics-v2": {"age_restricted": [("353", "Bars, Clubs & Nightlife")]},
    "iab-audience-1.1": {"age_restricted": [
        ("369", "Alcoholic Beverages"), ("436", "Cigars"), ("654", "Poker and Professional Gambling"),
        ("646", "Hunting and Shooting"), ("1644", "Hunting and Shooting Equipment"), ("1402", "Bars"),
        ("794", "Nightclubs"),
    ]},
}

#: IAB Content 2.2 nodes flagged "SCD" that no bundled profile treats as special-category data, and why.
IAB_SCD_NOT_SPECIAL: Mapping[str, str] = {
    "189": "Divorce: marital status, not a special category (GDPR Art. 9) nor in the policy's list",
    "200": "Single Life: relationship status, not a special category; Dating is covered under sex life",
    "211": "Alcoholic Beverages: an age-restricted product, not health data; covered by strict_minors",
    "410": "Personal Investing: financial interest, not a special category (GDPR Art. 9) nor in the policy",
    "465": "Biological Sciences: an academic subject; its genetics part, 468 Genetics, is covered",
    "549": "Bodybuilding: a sport, like the unflagged Fitness and Exercise; reveals no condition",
}

_PROFILES: dict[str, tuple[str, tuple[_Table, ...]]] = {
    "default": ("the privacy policy's sensitive information: racial or ethnic origin, religious or "
                "philosophical beliefs, personal health", (POLICY_CLASSES,)),
    "gdpr_art9": ("all GDPR Art. 9 special categories", (POLICY_CLASSES, GDPR_ART9_EXTRA)),
    "strict_minors": ("GDPR Art. 9 plus age-restricted products, for persons under 18",
                      (POLICY_CLASSES, GDPR_ART9_EXTRA, AGE_RESTRICTED)),
}

PROFILE_NAMES: tuple[str, ...] = tuple(_PROFILES)


def profile_parts(name: str) -> tuple[str, tuple[str, ...], dict[str, dict[str, tuple[str, ...]]]]:
    """``(description, classes, roots)`` of the bundled profile ``name`` (one of :data:`PROFILE_NAMES`).

    Classes come in table order; ``roots`` is ``{taxonomy: {class: (root ids, ...)}}``, the later tables of a
    profile adding classes to the earlier ones (a node an earlier table lists keeps its earlier class: Dating
    is sex life in ``gdpr_art9`` and age-restricted in ``AGE_RESTRICTED``).
    """
    description, tables = _PROFILES[name]
    classes = tuple(dict.fromkeys(c for table in tables for per_tax in table.values() for c in per_tax))
    roots: dict[str, dict[str, tuple[str, ...]]] = {}
    for table in tables:
        for tax, per_class in table.items():
            listed = {n for ids in roots.get(tax, {}).values() for n in ids}
            for cls, nodes in per_class.items():
                roots.setdefault(tax, {})[cls] = tuple(node_id for node_id, _ in nodes if node_id not in listed)
    return description, classes, roots
