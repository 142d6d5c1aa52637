"""Type stub of adtarget.budget: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._accountant import InMemoryAccountant as InMemoryAccountant
from ._ledger import Advertiser as Advertiser
from ._ledger import BudgetLedger as BudgetLedger
from ._spec import PrivacyBudget as PrivacyBudget
from ._spec import ReleaseAccounting as ReleaseAccounting
from ._spec import RemainingBudget as RemainingBudget

__all__ = ["Advertiser", "BudgetLedger", "InMemoryAccountant", "PrivacyBudget", "ReleaseAccounting", "RemainingBudget"]
