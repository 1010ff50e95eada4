"""The columnar box table (the schema's ``boxes``): what one row means, as an ordinary object record.

A reader with many plain boxes per data unit (COCO results, YOLO, CSV) may put them in one table of columns
instead of one object record per box: it costs a few list comprehensions instead of five dicts per box, and
validation and writing then work a column at a time. The table adds no meaning of its own: row k *is* the
object :func:`row_record` builds, and any row the bulk checks do not clear is validated as exactly that
record, so a table and its expansion (:func:`expand`) give the same problems, locations and label rows.
"""

from __future__ import annotations

import contextlib
from typing import Any

from predport.core.model import Boxes, DataUnit, Object, Source

#: the per-row columns (all as long as "class")
COLUMNS = ("id", "x", "y", "w", "h", "confidence", "frame", "pointer", "record", "line", "area", "iscrowd")


def row_source(table: Boxes, k: int) -> Source:
    """Where row ``k`` came from: the table's file with the row's pointer (given, or built from its record
    index) or line (else the pointer to its id cell), and its class's group. Never raises: in a broken table
    it says what it can (problems about such tables need a location too)."""
    given = table.get("source") if type(table) is dict else None
    src: dict[str, Any] = dict(given) if type(given) is dict else {}
    with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
        _locate_row(table, k, src)
    return src  # type: ignore[return-value]


def _locate_row(table: Boxes, k: int, src: dict[str, Any]) -> None:
    if "pointer" in table:
        src["pointer"] = table["pointer"][k]
    elif "record" in table:
        field = table.get("field")
        src["pointer"] = f"{src.get('pointer', '')}/{table['record'][k]}" + (f"/{field}" if field else "")
    elif "line" in table:
        src.pop("pointer", None)
        src["line"] = table["line"][k]
    elif "line" in src and "pointer" not in src:  # a table on one line of a JSON-lines file
        src["record"] = k
    else:
        src["pointer"] = f"{src.get('pointer', '')}/id/{k}"
    cls, classes = table["class"][k], table["classes"]
    if type(cls) is int and 0 <= cls < len(classes) and type(classes[cls]) is dict:
        group = classes[cls].get("group")
        if type(group) is str:
            src["group"] = group


def row_record(table: Boxes, k: int) -> Object:
    """Row ``k`` as the object record it stands for (its class index must be valid)."""
    frame: dict[str, Any] = {
        "frame": table["frame"][k] if "frame" in table else 0,
        "geometry": {"shape": "bounding_box", "x": table["x"][k], "y": table["y"][k], "w": table["w"][k],
                     "h": table["h"][k]},
        "source": row_source(table, k)}
    if "confidence" in table:
        frame["confidence"] = table["confidence"][k]
    coco = {name: table[name][k] for name in ("area", "iscrowd") if name in table}  # type: ignore[literal-required]
    if coco:
        frame["coco"] = coco
    return {"id": table["id"][k], "class": table["classes"][table["class"][k]]["class"],
            "frames": [frame]}  # type: ignore[typeddict-item,list-item]


def expand(unit: DataUnit) -> DataUnit:
    """The same data unit with its box table turned into object records (appended after ``objects``)."""
    table = unit.get("boxes")
    if table is None:
        return unit
    out = {k: v for k, v in unit.items() if k != "boxes"}
    out["objects"] = [*unit["objects"], *(row_record(table, k) for k in range(len(table["class"])))]
    return out  # type: ignore[return-value]
