# All metadata is in pyproject.toml; this only names the cffi builder and
# the fast path's extension (both defined in pykvm/_build.py).
import importlib.util
import os

from setuptools import setup

_spec = importlib.util.spec_from_file_location("_pykvm_build", os.path.join("pykvm", "_build.py"))
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)

setup(cffi_modules=["pykvm/_build.py:ffi"],
      ext_modules=[_build.fast_extension(os.path.relpath(_build.CSRC))])
