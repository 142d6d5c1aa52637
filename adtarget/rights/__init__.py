"""The data subject's rights on what the SDK holds (promises P7, P8): access (``access_export``, everything held or
derived about one person, as JSON), and deletion and retention on the files the SDK owns (``purge_events``,
``purge_assignments``, ``forget_everywhere``)."""

from adtarget.rights._access import access_export
from adtarget.rights._purge import PurgeReport, forget_everywhere, purge_assignments, purge_events

__all__ = ["PurgeReport", "access_export", "forget_everywhere", "purge_assignments", "purge_events"]
