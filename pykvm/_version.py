"""The version of pykvm (the PyPI distribution pylibkvm); pyproject.toml reads it from here."""

__version__ = "0.1.0"
