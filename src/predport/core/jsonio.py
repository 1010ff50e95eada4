"""Reading JSON fast, without losing files that Python's json module wrote with NaN / Infinity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson


def load(path: Path) -> Any:
    """Parse a JSON file; see :func:`loads`."""
    return loads(path.read_bytes())


def loads(data: bytes) -> Any:
    """Parse JSON (orjson; the standard library only for the non-standard NaN / Infinity tokens, so that
    such values become located problems instead of an unreadable file). Raises ValueError."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        if b"NaN" not in data and b"Infinity" not in data:
            raise ValueError(str(e)) from e
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise ValueError(str(e)) from e
