"""The advertiser release: exact counts per segment and breakdown cell under per-person contribution bounds
(``count_cells``), discrete noise (``CountNoise``), DP partition selection of data-derived keys
(``PartitionSelection``), noise-aware thresholds and post-processing, the budget charge before anything exists,
and the one advertiser-facing document (``SegmentReport``, ``adtarget.segment_report/v2``).

``release`` is the one path from eligible events and segment assignments to a report; ``release_counts`` the
same from exact counts summed over partitions (what an engine has). ``audit_proxies`` is the DP sensitive-proxy
audit whose outcome (a ``ProxyScreen``) screens catalogs before any release. Compiled kernels:
``_bounding_kernels`` (bounding and per-cell counts), ``_noise_kernels`` (the discrete Gaussian sampler).
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
