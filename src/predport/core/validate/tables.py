"""Box tables, checked a column at a time: a row the bulk checks do not clear is checked as the object record
it stands for (:func:`predport.core.boxes.row_record`), which says exactly what is wrong or accepts it."""

from __future__ import annotations

import weakref
from collections import Counter
from typing import Any

from predport.core import boxes as boxmod
from predport.core.model import Boxes
from predport.core.ontology import Ontology, OntologyObject
from predport.core.problems import Problem
from predport.core.validate.context import UnitContext, collect
from predport.core.validate.objects import by_shape, object_problems
from predport.core.validate.resolved import RBoxes, RObject


def table_rows(ctx: UnitContext, ontology: Ontology, table: Boxes, bad_rows: set[int], names: list[str],
               by_id: dict[str, RObject], rejected: set[tuple[str, int]], sink: list[Problem]) -> RBoxes | None:
    """The rows that pass the bulk checks. A row they do not clear (a class that is not a box class, a box not
    strictly inside the frame, a confidence outside [0, 1], an id used twice, a frame other than 0 ...) is
    checked as its object record; rows the schema rejected (``bad_rows``; -1: the whole table) are only
    counted."""
    if -1 in bad_rows:  # the table as a whole breaks the schema (reported): none of it is taken
        rejected.add(("boxes", -1))
        return None
    n = len(table["class"])
    where: Any = table.get("source")
    given = table
    if bad_rows:  # the bulk checks below compare values: give the rows the schema rejected harmless ones
        table = _patched(table, bad_rows, n)
    cls = table["class"]
    ragged = [c for c in boxmod.COLUMNS if c in table and len(table[c]) != n]  # type: ignore[literal-required]
    if ragged or (n and not (set(map(type, cls)) <= {int} and min(cls) >= 0 and max(cls) < len(table["classes"]))):
        what = (f"columns {', '.join(ragged)} are not as long as 'class' ({n})" if ragged else
                f"class indices must be integers below {len(table['classes'])}, the number of classes")
        sink.append(ctx.problem("boxes.invalid", f"box table: {what}; none of its {n} rows is converted", where,
                                "boxes"))
        rejected.add(("boxes", -1))
        return None
    classes = box_classes(ontology, table["classes"])  # type: ignore[arg-type]
    slow = set(bad_rows)
    if None in classes:
        slow.update(k for k, c in enumerate(cls) if classes[c] is None)
    try:
        slow.update(k for k, (x, y, w, h) in enumerate(zip(table["x"], table["y"], table["w"], table["h"], strict=True))
                    if not (x >= 0.0 and y >= 0.0 and w > 0.0 and h > 0.0 and x + w <= 1.0 and y + h <= 1.0))
        if "confidence" in table:
            slow.update(k for k, c in enumerate(table["confidence"]) if not (0.0 <= c <= 1.0))
    except OverflowError:  # an integer beyond the float range somewhere: every row is checked as its record
        slow.update(range(n))
    if "frame" in table:
        count = ctx.count
        slow.update(k for k, f in enumerate(table["frame"]) if type(f) is not int or (count is not None and f >= count))
    ids = table["id"]
    if len(set(ids)) != n:  # one id on several rows is one track: the object path merges and checks them
        seen = Counter(ids)
        slow.update(k for k, i in enumerate(ids) if seen[i] > 1)
    if by_id:
        slow.update(k for k, i in enumerate(ids) if i in by_id)
    for k in sorted(slow):
        if k in bad_rows:
            rejected.add(("boxes", k))
            group = boxmod.row_source(given, k).get("group")  # (the row's own class, not the patched one)
            if group is not None:
                ctx.grouped.append(("boxes", k, group))
            continue
        if collect(sink, object_problems(ctx, ontology, boxmod.row_record(table, k), names, by_id, ("boxes", k))):
            rejected.add(("boxes", k))
    rows = [k for k in range(n) if k not in slow] if slow else None
    return RBoxes(table, classes, rows)


def box_classes(ontology: Ontology, entries: list[dict[str, Any]]) -> list[OntologyObject | None]:
    """The ontology object each class entry of a table names, when it is a box class; else None. Remembered per
    ontology by (hash, name): a table lists its classes again in every data unit, 57 a unit on the bench."""
    cache = _RESOLVED.get(ontology)
    if cache is None:
        cache = _RESOLVED[ontology] = {}
    out: list[OntologyObject | None] = []
    for entry in entries:
        ref = entry["class"]
        key = (ref.get("hash"), ref.get("name"))
        found = cache.get(key, _MISSING)
        if found is _MISSING:
            ont = ontology.objects.get(ref["hash"]) if "hash" in ref else by_shape(ontology.object(ref), "bounding_box")
            fits = (isinstance(ont, OntologyObject) and ont.shape == "bounding_box"
                    and ref.get("name", ont.name) == ont.name)
            found = cache[key] = ont if fits else None
        out.append(found)
    return out


_RESOLVED: weakref.WeakKeyDictionary[Ontology, dict[tuple[Any, Any], OntologyObject | None]] = \
    weakref.WeakKeyDictionary()
_MISSING: Any = object()


def _patched(table: Boxes, bad_rows: set[int], n: int) -> Boxes:
    out: dict[str, Any] = dict(table)
    for name, safe in (("class", 0), ("id", None), ("x", 0.0), ("y", 0.0), ("w", 0.5), ("h", 0.5),
                       ("confidence", 1.0), ("frame", 0)):
        column = table.get(name)
        if type(column) is list and len(column) == n:
            column = list(column)
            for k in bad_rows:
                if 0 <= k < n:
                    column[k] = safe if safe is not None else f"\0{k}"  # (an id no valid row has)
            out[name] = column
    return out  # type: ignore[return-value]
