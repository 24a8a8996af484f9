"""Kernel types from the BTF the kernel carries, and typed objects over them.

``Kvm.type()``, ``Kvm.object()`` and the helpers on :class:`~pykvm.Kvm` are
the public face; this package holds the machinery:

* :mod:`.typesys`: :class:`Type`, :class:`Member`, the per-handle type table
  over the C library's BTF (libbpf) and the parser of type names;
* :mod:`.objects`: :class:`Object`, a typed value at an address;
* :mod:`.decls`: the declarations of well-known kernel globals (kernel BTF
  describes only per-CPU variables);
* :mod:`.helpers`: ``container_of``, list walks, per-CPU access, symbolize.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .typesys import Member, Type, TypeTable
    from .objects import Object
    from .helpers import Symbolized

__all__ = ["Type", "Member", "TypeTable", "Object", "Symbolized"]
# Imported on first use (PEP 562): pykvm.Kvm holds helpers' TypesMixin, and a program that
# asks no type question should not pay for the type system.
_WHERE = {"Type": "typesys", "Member": "typesys", "TypeTable": "typesys", "Object": "objects",
          "Symbolized": "helpers"}

__getattr__, __dir__ = lazy_names(__name__, _WHERE, __all__)
