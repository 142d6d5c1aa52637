"""Build the one C extension, ``adtarget._memory`` (everything else is in pyproject.toml)."""

import numpy
from setuptools import Extension, setup

setup(ext_modules=[Extension("adtarget._memory", ["adtarget/_memory.c"], include_dirs=[numpy.get_include()])])
