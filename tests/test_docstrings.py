"""Every public call of pykvm's API says in its docstring what it raises;
pykvm.has() lists its valid features and refuses an unknown one by name."""

from __future__ import annotations

import inspect

import pytest

import pykvm
import pykvm.kvm
from pykvm._fast import Reader


def public_members(cls, home):
    """(name, docstring) of cls's public methods and properties defined in home."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        func = attr.fget if isinstance(attr, property) else attr
        owner = getattr(func, "__module__", None) or getattr(getattr(func, "__objclass__", None),
                                                           "__module__", None)
        if owner in home:
            yield name, inspect.getdoc(attr.fget if isinstance(attr, property) else getattr(cls, name)) or ""


def test_every_public_call_names_what_it_raises():
    missing = []
    calls = [(n, inspect.getdoc(getattr(pykvm, n)) or "") for n in pykvm.__all__
             if callable(getattr(pykvm, n)) and not isinstance(getattr(pykvm, n), type)]
    calls += list(public_members(pykvm.Kvm, {"pykvm.kvm", "pykvm._fast", "pykvm.btf.helpers"}))
    assert {"read", "read_cstring", "read_many", "write", "nlist", "info", "symbols", "type",
            "offsetof", "object", "list_for_each_entry", "per_cpu", "symbolize"} <= \
        {n for n, _ in calls}
    for name, doc in calls:
        if "raise" not in doc.lower():
            missing.append(name)
    assert not missing, f"no exceptions named in the docstring of: {missing}"
    # the C methods name the errors a read can raise
    for name in ("read", "readinto", "read_u64", "read_cstring", "read_many"):
        doc = getattr(Reader, name).__doc__
        assert "FaultError" in doc and "BadAddressError" in doc and "ClosedError" in doc, name


def test_has_lists_its_features():
    doc = inspect.getdoc(pykvm.has)
    for feature in pykvm.FEATURES:
        assert f'"{feature}"' in doc, feature
    assert set(pykvm.features()) == set(pykvm.FEATURES)
    with pytest.raises(ValueError) as ei:
        pykvm.has("lz4")
    message = str(ei.value)
    assert "'lz4'" in message and all(f in message for f in pykvm.FEATURES)


def test_exception_classes_say_when_they_are_raised():
    for name in pykvm.__all__:
        obj = getattr(pykvm, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert (obj.__doc__ or "").strip(), name
