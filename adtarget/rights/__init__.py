"""The data subject's rights on what the SDK holds (promises P7, P8): access (``access_export``, everything held or
derived about one person, as JSON), and deletion and retention on the files the SDK owns (``purge_events``,
``purge_assignments``, ``forget_everywhere``)."""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
