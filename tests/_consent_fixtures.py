"""Consent fixtures: a ConsentSnapshot from a small ``{account id: {field: value}}`` table (missing fields: an
adult opted-in US person under the current policy, allowing cross-service use), and a synthetic world whose
consent records went through a real ConsentLedger import."""

from __future__ import annotations

import numpy as np


def snapshot_of(pseudonymizer, people: dict[int, dict], as_of: int):
    from adtarget.consent import ConsentSnapshot

    ids = np.array(sorted(people), dtype=np.int64)
    pseud = pseudonymizer.pseudonymize(ids)
    order = np.argsort(pseud)
    rows = [people[int(i)] for i in ids[order]]

    def col(name, default, dtype):
        return np.array([r.get(name, default) for r in rows], dtype=dtype)

    return ConsentSnapshot(
        as_of=as_of,
        persons=pseud[order],
        birth_year=col("birth_year", 1990, np.int16),
        opted_in=col("opted_in", True, bool),
        cross_service=col("cross_service", True, bool),
        deleted=col("deleted", False, bool),
        terminated=col("terminated", False, bool),
        location_deleted=col("location_deleted", False, bool),
        policy_version=col("policy_version", "2018-05-14", object).astype(str),
        jurisdiction=col("jurisdiction", "US", object).astype(str),
    )


def consented_world(directory, pseudonymizer, config):
    """``(data, snapshot)``: synthetic data for ``config`` and the snapshot of a ConsentLedger in ``directory``
    that imported its consent CSV."""
    from adtarget import ConsentLedger, synth

    data = synth.generate(config)
    synth.write_consent(data, directory / "consent.csv")
    ledger = ConsentLedger(directory / "consent.sqlite", pseudonymizer)
    ledger.import_csv(directory / "consent.csv")
    return data, ledger.snapshot()
