"""Type stub of adtarget.rights: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._access import access_export as access_export
from ._purge import PurgeReport as PurgeReport
from ._purge import forget_everywhere as forget_everywhere
from ._purge import purge_assignments as purge_assignments
from ._purge import purge_events as purge_events

__all__ = ["PurgeReport", "access_export", "forget_everywhere", "purge_assignments", "purge_events"]
