"""The JSON Schema's verdict on a data unit, as located problems and the records it rejects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from predport.core import boxes as boxmod
from predport.core import schema
from predport.core.problems import Location, Problem


@dataclass
class Rejected:
    """What the schema rejects: object and classification records by index, box table rows (-1: the table),
    or the unit as a whole (then nothing of it can be resolved)."""

    objects: set[int] = field(default_factory=set)
    classifications: set[int] = field(default_factory=set)
    rows: set[int] = field(default_factory=set)
    whole: bool = False


def schema_problems(unit: Any, rejected: Rejected) -> Iterator[Problem]:
    """Every schema violation of ``unit``, located at the innermost record that says where it came from (a
    box table row at its own place); the records they concern go to ``rejected``."""
    table = unit.get("boxes") if isinstance(unit, dict) else None
    for path, message in schema.errors(unit):
        fld = "/".join(map(str, path)) or None
        if len(path) >= 2 and path[0] == "objects" and isinstance(path[1], int):
            rejected.objects.add(path[1])
        elif len(path) >= 2 and path[0] == "classifications" and isinstance(path[1], int):
            rejected.classifications.add(path[1])
        elif len(path) >= 3 and path[0] == "boxes" and path[1] in boxmod.COLUMNS and isinstance(path[2], int):
            rejected.rows.add(path[2])
            yield Problem("schema.invalid", "error", message,
                          Location.from_source(boxmod.row_source(table, path[2]), fld))  # type: ignore[arg-type]
            continue
        elif path[:1] == ("boxes",):
            rejected.rows.add(-1)
        else:
            rejected.whole = True
        yield Problem("schema.invalid", "error", message, Location.from_source(_innermost_source(unit, path), fld))


def _innermost_source(unit: Any, path: tuple[str | int, ...]) -> Any:
    source, node = unit.get("source") if isinstance(unit, dict) else None, unit
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(node.get("source"), dict) and isinstance(node["source"].get("file"),
                                                                                          str):
            source = node["source"]  # (a source that does not name its file locates nothing: the outer one does)
    return source
