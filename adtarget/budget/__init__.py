"""Privacy budgets and their accounting: budgets as frozen values (``PrivacyBudget``), the persistent ledger
that every advertiser release and DP-derived definition is charged to before it exists (``BudgetLedger``, SQLite),
the advertisers it knows (``Advertiser``), and a process-local accountant for notebooks (``InMemoryAccountant``).

Nothing here reads events: the budget is a function of public parameters only. See docs/privacy/budget-ledger.md.
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
