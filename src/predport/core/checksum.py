"""The rows' CRC-32 and gzip members, with ISA-L (about 5x zlib's speed), and what must follow every call.

ISA-L's AVX-512 routines return with the upper halves of the vector registers dirty: they do not end with
VZEROUPPER. Until something clears them, every legacy SSE instruction of the thread pays a state-transition
penalty. On the 2-core Xeon development VM, after one ``isal_zlib.crc32`` orjson's and msgspec's number writing
ran 7x slower (19 us for 100 floats instead of 2.7), until some unrelated function happened to clear the state;
none of zlib, hashlib, struct or the str and bytes methods does. A numpy float64 ufunc on a small array runs
an AVX loop that ends with VZEROUPPER (0.6 us), so every call here is followed by one (:func:`_clear`). On a CPU
without AVX, or not x86, it is a cheap no-op.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

from isal import isal_zlib


def crc32(data: bytes) -> int:
    """CRC-32 of ``data`` (the same value as ``zlib.crc32``): by zlib for a process's first 4 MB, which then
    imports no numpy for :func:`_clear` (50-115 ms, more than a small run's rows cost), by ISA-L after."""
    global _zlib_left
    if _zlib_left > 0:
        _zlib_left -= len(data)
        return zlib.crc32(data)
    value = isal_zlib.crc32(data)
    _clear()
    return value


_zlib_left = 4 << 20


def gzip_member(data: bytes) -> bytes:
    """``data`` as one gzip member, ISA-L level 1, mtime 0 (the same rows give the same bytes)."""
    out = isal_zlib.compress(data, 1, wbits=31)
    _clear()
    return out


def _clear() -> None:
    _vzeroupper()()


@cache
def _vzeroupper() -> Callable[[], Any]:
    import numpy as np  # (when first needed: a run that writes no file of rows does not import it for this)

    a, out = np.ones(32), np.empty(32)
    return lambda: np.add(a, a, out=out)
