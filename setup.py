# All metadata is in pyproject.toml; this only names the cffi builder, tags
# the wheel abi3 (the cffi module uses the limited API, so one wheel serves
# CPython 3.8 and later) and keeps the builder itself out of the wheel.
from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithoutBuilder(build_py):
    """pykvm/_build.py runs at build time only: not installed."""

    def find_package_modules(self, package, package_dir):
        return [m for m in super().find_package_modules(package, package_dir)
                if (m[0], m[1]) != ("pykvm", "_build")]


setup(
    cffi_modules=["pykvm/_build.py:ffi"],
    cmdclass={"build_py": BuildPyWithoutBuilder},
    options={"bdist_wheel": {"py_limited_api": "cp38"}},
)
