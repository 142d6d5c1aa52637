"""Ingest: events in the event contract (DESIGN.md §3 "Events") become an ``EventBatch``.

Sources (Parquet, CSV, Arrow, pandas, mappings of arrays) are read into named columns (``_sources``); identifying
columns are refused by name (``_header_checks``, ``_schema``, promise P1); values are parsed (``_parsing``) and
every row is accepted or quarantined with its first reason (``_validation``); person ids are factorised
(``_person_ids``) and replaced by keyed pseudonyms (``_pseudonym``, promise P11). The compiled kernels of these
steps sit beside them (``_factorize_kernels``, ``_blake2b_kernels``; SipHash in numpy: ``_siphash``).
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
