"""Sphinx configuration: the API reference from pykvm's docstrings (make docs)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from pykvm import __version__  # noqa: E402  (the built package, in place)

project = "pykvm"
author = "The pykvm authors"
copyright = "The pykvm authors, BSD-2-Clause"
version = release = __version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]  # napoleon: the "Raises:" sections
autodoc_member_order = "bysource"
autodoc_typehints = "description"
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
