"""Reference data every stage reads and none derives from events: interest taxonomies, sensitivity profiles
(which categories reveal special categories of data, promise P5) and the service registry (promise P9).

Bundled files are under ``adtarget/data/taxonomy/``; user taxonomies load from TSV, CSV or JSON.
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
