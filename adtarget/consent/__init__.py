"""Consent: the ConsentLedger (SQLite), its imports and snapshots (DESIGN.md §3 "Consent")."""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
