"""Compiled kernels (numba) for the hot loops that numpy, scipy and pyarrow have no single call for.

Each module here imports numba at its top and defines ``@numba.njit(cache=True, nogil=True)`` functions over
numpy arrays; callers import a kernel module *inside* the function that uses it, so ``import adtarget`` and the
light CLI paths never load numba (a test checks it). Kernels are single-threaded, deterministic, and each has
a test that compares it with a plain numpy (or hashlib) reference on random input. Compiled code is cached on
disk beside the module (numba's ``cache=True``), so a process pays the compile cost only once per machine.
"""
