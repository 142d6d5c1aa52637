"""Build the one C extension, ``adtarget._core._memory`` (everything else is in pyproject.toml)."""

import numpy
from setuptools import Extension, setup

setup(ext_modules=[Extension("adtarget._core._memory", ["adtarget/_core/_memory.c"], include_dirs=[numpy.get_include()])])
