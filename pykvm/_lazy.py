"""Names a package imports on first use (PEP 562), so that importing it does
not load what a program may never ask for."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Dict, Iterable, List, Tuple


def lazy_names(package: str, where: Dict[str, str],
               public: Iterable[str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The module-level __getattr__ and __dir__ of package: name -> the
    submodule (where[name]) it comes from, imported when first asked for."""
    names = set(public)

    def __getattr__(name: str) -> Any:
        sub = where.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sub}"), name)
        setattr(sys.modules[package], name, value)  # asked once
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | names)

    return __getattr__, __dir__
