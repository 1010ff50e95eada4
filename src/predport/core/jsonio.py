"""Reading JSON fast, without losing files that Python's json module wrote with NaN / Infinity."""

from __future__ import annotations

import gc
import json
import mmap
import numbers
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson


def load(path: Path) -> Any:
    """Parse a JSON file; see :func:`loads`."""
    return loads(path.read_bytes())


@contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused: a parsed document cannot hold reference cycles, and the collections
    that millions of fresh objects trigger would each walk all of them (half the time of a large parse)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def loads(data: bytes) -> Any:
    """Parse JSON (orjson; the standard library only for the non-standard NaN / Infinity tokens, so that
    such values become located problems instead of an unreadable file). Raises ValueError. The collector is
    paused meanwhile."""
    with _no_collection():
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            if b"NaN" not in data and b"Infinity" not in data:
                raise ValueError(str(e)) from e
        try:
            doc = json.loads(data)
        except json.JSONDecodeError as e:
            raise ValueError(str(e)) from e
        if b"\\u" in data:  # (the standard library accepts escaped lone surrogates, which no writer can encode)
            try:
                json.dumps(doc, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as e:
                raise ValueError(f"a string holds a lone surrogate ({e.reason}): not valid Unicode") from e
        return doc


def decode(path: Path, kind: Any) -> Any:
    """The file's JSON decoded straight into ``kind``, a msgspec type, and checked against it in the same C pass;
    None when it does not fit (or is not JSON, or cannot be read). The collector is paused meanwhile."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return decode_bytes(data, kind)


def decode_bytes(data: bytes | bytearray | memoryview | mmap.mmap, kind: Any) -> Any:
    """:func:`decode` for JSON in memory."""
    import msgspec

    with _no_collection():
        try:
            return msgspec.json.Decoder(kind).decode(data)
        except msgspec.DecodeError:  # (a ValidationError is a DecodeError)
            return None


_BETWEEN = re.compile(rb"\}\s*,\s*\{")


def split_file(fd: int, size: int, parts: int, window: int = 1 << 16) -> list[tuple[int, int]]:
    """Where to cut the JSON array of objects in the ``size`` bytes of an open file into at most ``parts`` arrays
    at element boundaries, near equal sizes (fewer when no boundary is found): each piece's (start, end);
    :func:`read_piece` reads a piece as an array. A cut is made between a ``}`` and a ``{`` separated by a comma:
    if that comma is inside a string, the piece before it ends inside the string and cannot parse. So when every
    piece parses, their elements, in order, are exactly the file's (the caller decodes the whole instead when one
    does not). Each cut is looked for in reads of ``window`` bytes where it should be, not in the whole file:
    each piece is read by the process that decodes it."""
    import os

    def search(at: int) -> tuple[int, int] | None:
        while at < size:
            chunk = os.pread(fd, window, at)
            m = _BETWEEN.search(chunk)
            if m is not None:
                return at + m.start(), at + m.end()
            if len(chunk) < window:
                return None
            at += window - min(4096, window // 2)  # (a separator across the window's end is in the next one)
        return None

    cuts: list[tuple[int, int]] = []  # (end of a piece, start of the next)
    for k in range(1, parts):
        found = search(max(size * k // parts, cuts[-1][1] if cuts else 0))
        if found is None:
            break
        cuts.append((found[0] + 1, found[1] - 1))
    starts = [0, *(b for _, b in cuts)]
    ends = [*(a for a, _ in cuts), size]
    return list(zip(starts, ends, strict=True))


def read_buffer(path: Path) -> bytearray | mmap.mmap:
    """A file's bytes: a private anonymous map, whose pages the kernel gives zeroed as the file is read into
    them, where ``bytearray(size)`` first zero-filled all 72 MB of the bench's file (a fifth of the run's page
    faults)."""
    import os

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size and hasattr(mmap, "MAP_PRIVATE"):
            data = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
            if f.readinto(data) == size and not f.read(1):
                return data
            data.close()  # (a file that shrank or grew meanwhile: read as it is now)
            f.seek(0)
        return bytearray(f.read())


def read_piece(fd: int, pieces: list[tuple[int, int]], k: int, buffer: bytearray) -> memoryview | None:
    """Piece ``k`` of an open file cut by :func:`split_file`, read into ``buffer`` (grown as needed) as a JSON
    array: ``[`` before it and ``]`` after it, but for the file's own at its ends. None when the file no longer
    holds the piece's bytes (it shrank). The view must be released before the buffer is used again.

    Why pieces are read where they are decoded: reading the bench's 72 MB file whole took 0.04 s before the
    processes that decode it could start, with the other core idle; read piece by piece, both processes read."""
    import os

    a, b = pieces[k]
    head, tail = (1 if k else 0), (1 if k < len(pieces) - 1 else 0)
    n = head + (b - a) + tail
    if len(buffer) < n:
        buffer.extend(bytes(n - len(buffer)))
    view = memoryview(buffer)[:n]
    if head:
        view[0] = 0x5B
    if tail:
        view[n - 1] = 0x5D
    at, end = head, n - tail
    while at < end:
        got = os.preadv(fd, [view[at:end]], a + at - head)
        if got <= 0:
            view.release()
            return None
        at += got
    return view


_PLAIN = frozenset((str, int, float, bool, type(None)))


def json_values(v: Any, _open: set[int] | None = None) -> Any:
    """``v`` with every value that stands for a JSON value made of that value's own Python type: numpy scalars
    and arrays (by ``tolist``), tuples, decimals, fractions, and subclasses of dict, list, str, int and float.
    Dicts and lists are changed in place; a value of another type, or a container inside itself (no JSON value
    is), is left for the schema to report.

    Why: readers written with numpy hand over ``numpy.float64`` and arrays. The schema's compiled check takes
    only the exact types, jsonschema takes some of these as numbers, and orjson writes none of them; made
    plain here (on the slow path, where the compiled check said no), they validate and write as the numbers
    they are."""
    t = type(v)
    if t in _PLAIN:
        return v
    if _open is None:
        _open = set()
    if id(v) in _open:
        return v
    if t is dict or t is list:
        _open.add(id(v))
        items = v.items() if t is dict else enumerate(v)
        if t is dict or not _PLAIN.issuperset(map(type, v)):
            for k, x in items:
                if type(x) not in _PLAIN and (y := json_values(x, _open)) is not x:
                    v[k] = y  # (a value replaced, no key added: iterating goes on)
        _open.discard(id(v))
        return v
    if isinstance(v, Mapping | list | tuple):
        _open.add(id(v))  # (its copy's items may lead back to it)
        out = json_values(dict(v) if isinstance(v, Mapping) else list(v), _open)
        _open.discard(id(v))
        return out
    if hasattr(v, "dtype") and callable(getattr(v, "tolist", None)):  # numpy: its values as Python's
        return json_values(v.tolist(), _open)
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, numbers.Real | Decimal):
        return float(v)
    return v
