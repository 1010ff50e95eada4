"""Reading JSON fast, without losing files that Python's json module wrote with NaN / Infinity."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
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
    import msgspec

    with _no_collection():
        try:
            return msgspec.json.Decoder(kind).decode(path.read_bytes())
        except (OSError, msgspec.DecodeError):  # (a ValidationError is a DecodeError)
            return None
