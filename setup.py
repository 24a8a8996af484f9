# All metadata is in pyproject.toml; this only names the cffi builder.
from setuptools import setup

setup(cffi_modules=["pykvm/_build.py:ffi"])
