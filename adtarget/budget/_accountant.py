"""InMemoryAccountant: a process-local privacy accountant for notebooks and tests (no file)."""

from __future__ import annotations

import math
import threading
from typing import Any

from adtarget.budget._spec import PrivacyBudget
from adtarget.exceptions import BudgetExhaustedError, LedgerError, ParameterError

__all__ = ["InMemoryAccountant"]


class InMemoryAccountant:
    """A process-local privacy accountant for notebooks and tests: records charges, no file.

    Copies are the same accountant: ``copy``/``deepcopy`` (and so scikit-learn's ``clone``, ``GridSearchCV``,
    ``cross_val_score``) return this very object, so every fit of every clone is charged here. Pickling (for
    example to a joblib worker process) gives a *detached* accountant that refuses to charge, because spending
    recorded in another process would be lost; use the SQLite ``BudgetLedger`` there.

    Parameters
    ----------
    epsilon_limit : float, default inf
        Total ε this accountant allows; a charge past it raises ``BudgetExhaustedError`` and records nothing.
    """

    def __init__(self, epsilon_limit: float = math.inf) -> None:
        if isinstance(epsilon_limit, bool) or not isinstance(epsilon_limit, int | float) or not epsilon_limit > 0:
            raise ParameterError(f"epsilon_limit must be a number > 0 (inf allowed), got {epsilon_limit!r}")
        self.epsilon_limit = float(epsilon_limit)
        self._charges: list[tuple[str, PrivacyBudget, str]] = []
        self._lock = threading.Lock()
        self._detached = False

    def charge_definition(self, artefact_id: str, budget: PrivacyBudget) -> bool:
        """Record the ``budget`` a DP-derived definition (a DP k-means fit) spends, once per ``artefact_id``.

        Returns False when ``artefact_id`` was charged before (nothing new is recorded).
        """
        if any(key == f"definition:{artefact_id}" for _, _, key in self._charges):
            return False
        self.charge("", budget, f"definition:{artefact_id}")
        return True

    def charge(self, advertiser: str, budget: PrivacyBudget, query_key: str) -> None:
        """Record ``budget`` for ``advertiser`` under ``query_key`` (every call is a new charge)."""
        if self._detached:
            raise LedgerError("this InMemoryAccountant was pickled into another process, where its spending "
                              "would be lost; use a BudgetLedger (SQLite file) with parallel jobs")
        with self._lock:
            total = self.spent_epsilon + budget.epsilon
            if total > self.epsilon_limit * (1 + 1e-12):
                raise BudgetExhaustedError(f"epsilon: charging {budget.epsilon} would bring the total to {total}, "
                                           f"above epsilon_limit={self.epsilon_limit}; nothing was spent")
            self._charges.append((advertiser, budget, query_key))

    @property
    def spent_epsilon(self) -> float:
        """Total ε charged so far (basic composition)."""
        return math.fsum(b.epsilon for _, b, _ in self._charges)

    @property
    def spent_delta(self) -> float:
        """Total δ charged so far (basic composition)."""
        return math.fsum(b.delta for _, b, _ in self._charges)

    @property
    def charges(self) -> tuple[tuple[str, PrivacyBudget, str], ...]:
        """Every charge as ``(advertiser, budget, query_key)``, in order."""
        return tuple(self._charges)

    def __copy__(self) -> InMemoryAccountant:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> InMemoryAccountant:
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {"epsilon_limit": self.epsilon_limit}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["epsilon_limit"])  # type: ignore[misc]
        self._detached = True

    def __repr__(self) -> str:
        return f"InMemoryAccountant(epsilon_limit={self.epsilon_limit})"
