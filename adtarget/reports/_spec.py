"""ReleaseSpec: what an advertiser asks for, as a frozen, self-checking privacy notion.

The spec fixes everything that decides the privacy cost of a release before any data is read: the segments,
the breakdown dimensions, the contribution bounds, the mechanism and the (ε, δ) split between the count stage
and DP partition selection. Checks against the data (segment ids exist, window matches) happen in ``release``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from adtarget._core._numbers import exact_int, exact_real
from adtarget.budget._ledger import checked_advertiser
from adtarget.budget._spec import MIN_EPSILON
from adtarget.exceptions import ParameterError
from adtarget.reference._breakdowns import BREAKDOWN_DIMENSIONS, breakdown_dimension, breakdown_dimensions
from adtarget.reports._noise import MECHANISMS

__all__ = ["BREAKDOWN_DIMS", "MECHANISMS", "SEGMENT_ID_PATTERN", "ReleaseSpec", "checked_spec", "looks_like_pseudonym"]

#: the built-in breakdown dimensions (the default of ``ReleaseSpec.breakdowns``); the table is
#: ``adtarget.reference.BREAKDOWN_DIMENSIONS``
BREAKDOWN_DIMS: tuple[str, ...] = tuple(d.name for d in BREAKDOWN_DIMENSIONS)
#: taxonomy segments ``<taxonomy name>:<node id>``; learned segments ``learned:<model>:<k>``.
SEGMENT_ID_PATTERN = r"^(?:[a-z][a-z0-9.-]{0,39}|learned:[a-z0-9_-]{1,40}):[A-Za-z0-9_-]{1,64}$"
_SEGMENT_ID_RE = re.compile(SEGMENT_ID_PATTERN)
_HEX_RUN_RE = re.compile(r"[0-9a-fA-F]{16,}")


def looks_like_pseudonym(text: str) -> bool:
    """True when ``text`` contains a run of 16 or more hex digits (the shape of a pseudonym's hex form)."""
    return _HEX_RUN_RE.search(text) is not None


def _is_int(value: Any) -> bool:
    return exact_int(value) is not None  # an int, not a subclass that answers the checks differently


def _check_text(name: str, value: Any, *, max_len: int = 200) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ParameterError(f"{name} must be a non-empty string of at most {max_len} characters, "
                             f"got {type(value).__name__} of length {len(value) if isinstance(value, str) else '-'}")
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise ParameterError(f"{name} must not contain control characters, got {value!r}")
    if looks_like_pseudonym(value):
        raise ParameterError(f"{name} must not contain a run of 16 hex digits (pseudonym-like), got {value!r}")


def _epoch(name: str, value: Any) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParameterError(f"{name} must be timezone-aware (UTC), got naive datetime {value.isoformat()}")
        return int(value.timestamp())
    if not _is_int(value):
        raise ParameterError(f"{name} must be epoch seconds (int) or an aware datetime, got {value!r}")
    return int(value)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ReleaseSpec:
    """One advertiser query: segments, breakdowns, contribution bounds and privacy budget.

    Parameters
    ----------
    advertiser : str
        Who receives the report: 1-200 characters, no control characters or edge whitespace, no run of 16
        hex digits; stored NFC-normalised (the budget ledger's rule).
    segment_ids : sequence of str
        Requested segments (``"iab-2.2:239"``, ``"learned:kmeans:3"``), unique; checked against the segment
        assignments at release time.
    epsilon : float
        Total ε of the release (count stage plus partition selection), > 0; ``math.inf`` only for tests
        (``release`` refuses it unless ``allow_infinite_epsilon=True``).
    delta : float, default 0.0
        Total δ in [0, 1). ``"discrete_laplace"`` counts are pure (δ = 0 for counts): δ > 0 is then allowed only
        when a region breakdown needs partition selection, and all of it goes there. ``"discrete_gaussian"``
        needs δ > 0.
    breakdowns : sequence of str, default ("age_band", "region", "service")
        Names of ``adtarget.reference.BREAKDOWN_DIMENSIONS`` entries, stored in the table's order.
    mechanism : {"discrete_laplace", "discrete_gaussian"}
    max_segments_per_person : int, default 5
    max_cells_per_person : mapping of str to int, optional
        Values each person may contribute per breakdown dimension (default: the table entry's
        ``cells_per_person``, 1 for region and service; a person-level dimension such as age_band is always
        1). Stored as sorted ``(dimension, k)`` pairs for every dimension in ``breakdowns``.
    min_reported_size : int, default 50
        Segments whose noisy size is below it are suppressed; breakdown cells below it are left out.
    public_regions : sequence of str, default ()
        Region codes whose keys are public; other region keys go through DP partition selection.
    partition_share : float, default 0.1
        Share of ε (and, for the Gaussian mechanism, of δ) spent on partition selection when the region
        breakdown is requested, in (0, 1).
    size_share : float, default 0.6
        Share of ε (and, for the Gaussian mechanism, of δ) spent on the segment sizes when breakdowns are
        requested, in (0, 1); the breakdown cells get the rest (minus ``partition_share``). Without breakdowns
        the sizes get all of the count budget. 0.6 keeps the sizes' error within 1/0.6 = 1.67× that of a
        sizes-only release at the same ε (docs/privacy/release.md "Budget split").
    false_segment_rate : float, default 1e-6
        Largest probability that a segment (or a breakdown cell) whose true count is below
        ``min_reported_size`` is shown: the threshold a noisy count must clear is ``min_reported_size - 1``
        plus the noise's upper ``false_segment_rate`` quantile (``size_threshold``), in (0, 0.5).
    data_window : (start, end), optional
        Epoch seconds (or aware datetimes) of the data window; when given it must equal the eligible events'
        window. ``None`` takes the window of the data.
    salt : str, optional
        Release salt of the keyed bounding priority; defaults to the spec's fingerprint.

    Raises
    ------
    ParameterError
        Any field outside its domain (the message names the field, the constraint and the value).
    """

    advertiser: str
    segment_ids: tuple[str, ...]
    epsilon: float
    delta: float = 0.0
    breakdowns: tuple[str, ...] = BREAKDOWN_DIMS
    mechanism: str = "discrete_laplace"
    max_segments_per_person: int = 5
    max_cells_per_person: tuple[tuple[str, int], ...] | Mapping[str, int] = field(default=())
    min_reported_size: int = 50
    public_regions: tuple[str, ...] = ()
    partition_share: float = 0.1
    size_share: float = 0.6
    false_segment_rate: float = 1e-6
    data_window: tuple[int, int] | None = None
    salt: str | None = None

    def __post_init__(self) -> None:
        self._set("advertiser", checked_advertiser(self.advertiser))
        _check_text("advertiser", self.advertiser)
        self._set("segment_ids", self._checked_segments(self.segment_ids))
        self._set("breakdowns", self._checked_breakdowns(self.breakdowns))
        self._check_budget()
        self._check_bounds()
        self._set("max_cells_per_person", self._checked_cells(self.max_cells_per_person))
        self._set("public_regions", self._checked_regions(self.public_regions))
        self._set("data_window", self._checked_window(self.data_window))
        if self.salt is not None:
            _check_text("salt", self.salt)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @staticmethod
    def _checked_segments(ids: Any) -> tuple[str, ...]:
        if isinstance(ids, str) or not isinstance(ids, Sequence) or len(ids) == 0:
            raise ParameterError(f"segment_ids must be a non-empty sequence of segment id strings, got {ids!r}")
        for s in ids:
            if not isinstance(s, str) or not _SEGMENT_ID_RE.match(s) or looks_like_pseudonym(s):
                raise ParameterError(f"segment_ids entries must match {SEGMENT_ID_PATTERN}, got {s!r}")
        if len(set(ids)) != len(ids):
            raise ParameterError(f"segment_ids must be unique, got {len(ids)} ids with {len(set(ids))} distinct")
        return tuple(ids)

    @staticmethod
    def _checked_breakdowns(dims: Any) -> tuple[str, ...]:
        known = tuple(d.name for d in breakdown_dimensions())
        if isinstance(dims, str) or not isinstance(dims, Sequence):
            raise ParameterError(f"breakdowns must be a sequence of {known}, got {dims!r}")
        bad = [d for d in dims if d not in known]
        if bad or len(set(dims)) != len(dims):
            raise ParameterError(f"breakdowns must be distinct values of {known}, got {tuple(dims)!r}")
        return tuple(d for d in known if d in dims)

    def _check_budget(self) -> None:
        for name in ("epsilon", "delta", "partition_share", "size_share", "false_segment_rate"):
            number = exact_real(getattr(self, name))  # plain floats only: a float subclass could lie to the noise
            if number is None:
                raise ParameterError(f"{name} must be an int or float, got {type(getattr(self, name)).__name__}")
            self._set(name, number)
        eps, delta, share = self.epsilon, self.delta, self.partition_share
        if math.isnan(eps) or eps <= 0:
            raise ParameterError(f"epsilon must be a number > 0 (math.inf only for tests), got {eps!r}")
        if eps < MIN_EPSILON:
            raise ParameterError(f"epsilon must be at least {MIN_EPSILON:g}, got {eps!r}")
        if not 0 <= delta < 1:
            raise ParameterError(f"delta must be a number in [0, 1), got {delta!r}")
        if not 0 < share < 1:
            raise ParameterError(f"partition_share must be a number in (0, 1), got {share!r}")
        size = self.size_share
        if not 0 < size < 1:
            raise ParameterError(f"size_share must be a number in (0, 1), got {size!r}")
        if self.breakdowns and self.needs_partition_selection and size + share >= 1:
            raise ParameterError(f"size_share + partition_share must be < 1 (the breakdown cells get the rest), got "
                                 f"{size!r} + {share!r}")
        rate = self.false_segment_rate
        if not 0 < rate < 0.5:
            raise ParameterError(f"false_segment_rate must be a number in (0, 0.5), got {rate!r}")
        if self.mechanism not in MECHANISMS:
            raise ParameterError(f"mechanism must be one of {MECHANISMS}, got {self.mechanism!r}")
        if self.mechanism == "discrete_gaussian" and delta == 0:
            raise ParameterError("delta must be > 0 for mechanism 'discrete_gaussian', got 0")
        if self.mechanism == "discrete_laplace" and delta > 0 and not self.needs_partition_selection:
            raise ParameterError(f"delta must be 0 for mechanism 'discrete_laplace' without a breakdown whose keys "
                                 f"come from the data, such as region (counts are pure ε-DP), got {delta!r}")
        if self.mechanism == "discrete_laplace" and delta == 0 and self.needs_partition_selection:
            raise ParameterError(f"delta must be > 0 when breakdowns include {list(self.selected_breakdowns)}: DP "
                                 f"partition selection of their non-public keys needs δ > 0, got 0")

    def _check_bounds(self) -> None:
        for name in ("max_segments_per_person", "min_reported_size"):
            value = exact_int(getattr(self, name))
            if value is None or value < 1:
                raise ParameterError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
            self._set(name, value)

    def _checked_cells(self, cells: Any) -> tuple[tuple[str, int], ...]:
        given = dict(cells) if isinstance(cells, Mapping) else dict(cells or ())
        known = tuple(d.name for d in breakdown_dimensions())
        for dim, k in given.items():
            if dim not in known:
                raise ParameterError(f"max_cells_per_person keys must be in {known}, got {dim!r}")
            single = breakdown_dimension(dim).per == "person"
            if not _is_int(k) or k < 1 or (single and k != 1):
                limit = f"== 1 (one {dim} per person)" if single else ">= 1"
                raise ParameterError(f"max_cells_per_person[{dim!r}] must be an integer {limit}, got {k!r}")
        return tuple((d, exact_int(given.get(d, breakdown_dimension(d).cells_per_person)) or 1) for d in self.breakdowns)

    @staticmethod
    def _checked_regions(regions: Any) -> tuple[str, ...]:
        if isinstance(regions, str) or not isinstance(regions, Sequence):
            raise ParameterError(f"public_regions must be a sequence of region codes, got {regions!r}")
        for r in regions:
            _check_text("public_regions entry", r, max_len=64)
        if len(set(regions)) != len(regions):
            raise ParameterError(f"public_regions must be unique, got {len(regions)} codes "
                                 f"with {len(set(regions))} distinct")
        return tuple(sorted(regions))

    @staticmethod
    def _checked_window(window: Any) -> tuple[int, int] | None:
        if window is None:
            return None
        if not isinstance(window, Sequence) or len(window) != 2:
            raise ParameterError(f"data_window must be a (start, end) pair, got {window!r}")
        start, end = _epoch("data_window start", window[0]), _epoch("data_window end", window[1])
        if start >= end:
            raise ParameterError(f"data_window start must be before end, got {_iso(start)} >= {_iso(end)}")
        return (start, end)

    # --- derived -----------------------------------------------------------------------------------
    @property
    def selected_breakdowns(self) -> tuple[str, ...]:
        """The requested dimensions whose keys come from the data (``"selected"`` values, e.g. region)."""
        return tuple(d for d in self.breakdowns if breakdown_dimension(d).selected)

    @property
    def needs_partition_selection(self) -> bool:
        """True when a dimension with data-derived keys (region) is requested: its non-public keys are selected."""
        return bool(self.selected_breakdowns)

    def public_values(self, dim: str) -> tuple[str, ...]:
        """The keys of ``dim`` that are public (``public_regions`` for region): reported without selection."""
        name = breakdown_dimension(dim).public_values_field
        return tuple(getattr(self, name)) if name is not None else ()

    @property
    def selected_cells_per_person(self) -> int:
        """Keys one person can add to across the selected dimensions (the partition selection's bound)."""
        return sum(self.cells_per_person(d) for d in self.selected_breakdowns)

    def cells_per_person(self, dim: str) -> int:
        """Values a person may contribute in breakdown dimension ``dim`` (0 when not requested)."""
        return self._cells().get(dim, 0)

    def _cells(self) -> dict[str, int]:
        return dict(self.max_cells_per_person)

    @property
    def effective_segments_per_person(self) -> int:
        """``min(max_segments_per_person, len(segment_ids))``: a data-independent, tighter bound."""
        return min(self.max_segments_per_person, len(self.segment_ids))

    @property
    def partition_budget(self) -> tuple[float, float]:
        """(ε, δ) of DP partition selection of non-public keys of the selected dimensions (region), (0, 0)
        without one.

        ε · partition_share; δ · partition_share for the Gaussian mechanism, all of δ for the Laplace one.
        """
        if not self.needs_partition_selection:
            return (0.0, 0.0)
        eps = float(self.epsilon) * self.partition_share
        delta = float(self.delta) if self.mechanism == "discrete_laplace" else float(self.delta) * self.partition_share
        return (eps, delta)

    @property
    def count_budget(self) -> tuple[float, float]:
        """(ε, δ) of the count stage (sizes and breakdown cells): the total minus the partition budget."""
        p_eps, p_delta = self.partition_budget
        eps = float(self.epsilon) - p_eps if math.isfinite(self.epsilon) else math.inf
        return (eps, float(self.delta) - p_delta)

    @property
    def size_budget(self) -> tuple[float, float]:
        """(ε, δ) of the noisy sizes: ``size_share`` of the total with breakdowns, all of the count budget
        without. δ follows the same split for the Gaussian mechanism (the Laplace sizes are pure: δ 0)."""
        if not self.breakdowns:
            return self.count_budget
        eps = float(self.epsilon) * self.size_share if math.isfinite(self.epsilon) else math.inf
        delta = float(self.delta) * self.size_share if self.mechanism == "discrete_gaussian" else 0.0
        return (eps, delta)

    @property
    def breakdown_budget(self) -> tuple[float, float]:
        """(ε, δ) of the noisy breakdown cells: the count budget minus the sizes' ((0, 0) without breakdowns)."""
        if not self.breakdowns:
            return (0.0, 0.0)
        c_eps, c_delta = self.count_budget
        s_eps, s_delta = self.size_budget
        return (c_eps - s_eps if math.isfinite(c_eps) else math.inf, max(c_delta - s_delta, 0.0))

    @property
    def bounding_salt(self) -> str:
        """The release salt of the keyed bounding priority (``salt``, else the fingerprint)."""
        return self.salt if self.salt is not None else self.fingerprint()

    def as_dict(self) -> dict[str, Any]:
        """All fields as plain JSON-able values (tuples become lists)."""
        d = asdict(self)
        d["max_cells_per_person"] = self._cells()
        d["epsilon"] = "inf" if math.isinf(self.epsilon) else float(self.epsilon)
        return json.loads(json.dumps(d))

    def fingerprint(self) -> str:
        """Stable BLAKE2b hex digest (32 characters) of all fields, for the ledger's idempotency key."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16, person=b"adtarget-spec").hexdigest()

    def __str__(self) -> str:
        cells = ", ".join(f"{d}≤{k}" for d, k in self._cells().items())
        window = "window of the data" if self.data_window is None else \
            f"window {_iso(self.data_window[0])}..{_iso(self.data_window[1])}"
        return (f"ReleaseSpec for {self.advertiser!r}: {len(self.segment_ids)} segment(s), "
                f"breakdowns [{', '.join(self.breakdowns) or 'none'}], ε={self.epsilon:g}, δ={self.delta:g}, "
                f"{self.mechanism}, ≤{self.max_segments_per_person} segments/person, cells/person [{cells}], "
                f"min size {self.min_reported_size}, {len(self.public_regions)} public region(s), {window}")


def checked_spec(spec: object) -> ReleaseSpec:
    """A ReleaseSpec built again from ``spec``'s fields, so every check runs on what is used.

    Only the class itself is accepted (a subclass could override ``count_budget`` or the bounds the noise is
    calibrated to), and the fields are checked again (``object.__setattr__`` skips ``__post_init__``).
    ParameterError otherwise.
    """
    if type(spec) is not ReleaseSpec:
        raise ParameterError(f"spec must be a ReleaseSpec (the class itself, not a subclass or stand-in), got "
                             f"{type(spec).__name__}")
    try:
        return ReleaseSpec(**{f.name: getattr(spec, f.name) for f in fields(ReleaseSpec)})
    except ParameterError as exc:
        raise ParameterError(f"spec was changed after it was made: {exc}") from None
    except (AttributeError, TypeError, ValueError):
        raise ParameterError("spec was not made by ReleaseSpec(...) (fields are missing or of the wrong type)") \
            from None
