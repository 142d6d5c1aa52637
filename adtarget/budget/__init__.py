"""Privacy budgets and their accounting: budgets as frozen values (``PrivacyBudget``), the persistent ledger
that every advertiser release and DP-derived definition is charged to before it exists (``BudgetLedger``, SQLite),
the advertisers it knows (``Advertiser``), and a process-local accountant for notebooks (``InMemoryAccountant``).

Nothing here reads events: the budget is a function of public parameters only. See docs/privacy/budget-ledger.md.
"""

from adtarget.budget._accountant import InMemoryAccountant
from adtarget.budget._ledger import Advertiser, BudgetLedger
from adtarget.budget._spec import PrivacyBudget, RemainingBudget

__all__ = ["Advertiser", "BudgetLedger", "InMemoryAccountant", "PrivacyBudget", "RemainingBudget"]
