"""Exceptions: one base class, subclasses that mix in the builtin that fits.

``str(e)`` is ``"<errstr>: <message>"`` when the handle was opened with an
errstr, else the message, exactly as the C library words it.
"""

from __future__ import annotations

import errno as _errno
from typing import Any, Callable, Optional, Tuple, Type


class KvmError(OSError):
    """Any failure reported by libkvm (or the shim)."""

    def __init__(self, errno: int, message: str, filename: Optional[str] = None,
                 prefix: Optional[str] = None, address: Optional[int] = None):
        super().__init__(errno, message, filename)
        self.prefix = prefix
        self.address = address

    def __str__(self) -> str:
        return f"{self.prefix}: {self.strerror}" if self.prefix else str(self.strerror)

    def __reduce__(self) -> Tuple[Callable[..., KvmError], Tuple[Any, ...]]:
        return (_rebuild, (type(self), self.errno, self.strerror, self.filename,
                           self.prefix, self.address))


def _rebuild(cls: Type[KvmError], errno: int, message: str, filename: Optional[str],
             prefix: Optional[str], address: Optional[int]) -> KvmError:
    return cls(errno, message, filename, prefix, address)


class KvmFileNotFoundError(KvmError, FileNotFoundError):
    """A namelist, core or swap file does not exist."""


class KvmPermissionError(KvmError, PermissionError):
    """Not allowed to open or read (e.g. /proc/kcore without CAP_SYS_RAWIO)."""


class KvmIsADirectoryError(KvmError, IsADirectoryError):
    """A directory was given where a file was expected."""


class KvmFormatError(KvmError, ValueError):
    """A file is not what it should be: bad format, truncated, wrong model."""


class FaultError(KvmError):
    """An address has no memory behind it in this core (``address`` says which)."""


class BadAddressError(FaultError, ValueError):
    """An address (or an address range) outside 0 .. 2**64 - 1: never mapped,
    and a wrong argument (``address`` is the value given)."""


class ClosedError(KvmError, ValueError):
    """I/O on a closed handle (a ValueError, as for a closed file)."""


class PageExcludedError(FaultError):
    """The page exists but the dump's filter left it out (makedumpfile -d)."""


class ReadOnlyError(KvmError):
    """A write to a handle opened O_RDONLY, or to memory that cannot be written."""


class UnsupportedError(KvmError, NotImplementedError):
    """The operation or format is not available in this build or backend."""


class SymbolNotFoundError(KvmError, KeyError):
    """A symbol the namelist does not define."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return KvmError.__str__(self)


_BY_ERRNO = {
    _errno.ENOENT: KvmFileNotFoundError,
    _errno.EACCES: KvmPermissionError,
    _errno.EPERM: KvmPermissionError,
    _errno.EISDIR: KvmIsADirectoryError,
    _errno.EINVAL: KvmFormatError,
    _errno.EFAULT: FaultError,
    _errno.ENODATA: PageExcludedError,
    _errno.EROFS: ReadOnlyError,
    _errno.EBADF: ReadOnlyError,
    _errno.ENOTSUP: UnsupportedError,
    _errno.ENOSYS: UnsupportedError,
}


def error_for(errno: int, message: str, filename: Optional[str] = None,
              prefix: Optional[str] = None, address: Optional[int] = None) -> KvmError:
    """The exception for a C failure with this errno and message."""
    cls = _BY_ERRNO.get(errno, KvmError)
    return cls(errno or _errno.EIO, message, filename, prefix, address)
