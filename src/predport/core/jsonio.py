"""Reading JSON fast, without losing files that Python's json module wrote with NaN / Infinity."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import orjson


def load(path: Path) -> Any:
    """Parse a JSON file; see :func:`loads`."""
    return loads(path.read_bytes())


def loads(data: bytes) -> Any:
    """Parse JSON (orjson; the standard library only for the non-standard NaN / Infinity tokens, so that
    such values become located problems instead of an unreadable file). Raises ValueError.

    The cyclic garbage collector is paused meanwhile: a parsed document cannot hold reference cycles, and
    the collections that millions of fresh objects trigger would each walk all of them (half the time of a
    large parse)."""
    paused = gc.isenabled()
    gc.disable()
    try:
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
    finally:
        if paused:
            gc.enable()
