# All metadata is in pyproject.toml; this only names the cffi builder and the
# fast path's extension (both defined in pykvm/_build.py), tags the wheel abi3
# when both modules use the limited API, and keeps the builder out of the wheel.
import importlib.util
import os

from setuptools import setup
from setuptools.command.build_py import build_py

_spec = importlib.util.spec_from_file_location("_pykvm_build", os.path.join("pykvm", "_build.py"))
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)


class BuildPyWithoutBuilder(build_py):
    """pykvm/_build.py runs at build time only: not installed."""

    def find_package_modules(self, package, package_dir):
        return [m for m in super().find_package_modules(package, package_dir)
                if (m[0], m[1]) != ("pykvm", "_build")]


fast = _build.fast_extension(os.path.relpath(_build.CSRC))
# pykvm._fast needs the 3.11 stable ABI; below 3.11 it is built per version.
options = {"bdist_wheel": {"py_limited_api": "cp311"}} if fast.py_limited_api else {}

setup(
    cffi_modules=["pykvm/_build.py:ffi"],
    ext_modules=[fast],
    cmdclass={"build_py": BuildPyWithoutBuilder},
    options=options,
)
