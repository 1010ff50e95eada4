"""What validation makes of a data unit: names resolved to ontology nodes, records of one id merged into one
track. The writer accepts only a :class:`ResolvedUnit`, so nothing unvalidated can be written."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from predport.core.boxes import BoxSlice
from predport.core.model import Boxes, DataUnit
from predport.core.ontology import Attribute, OntologyClassification, OntologyObject, Option


@dataclass(slots=True)
class RAnswer:
    """A resolved answer. ``value``: list of options (radio: one), a string or a number."""

    attribute: Attribute
    value: list[Option] | str | float
    ranges: list[tuple[int, int]] | None = None  # dynamic answers only


class RObject:
    """A resolved object instance (a track): its class, frames sorted by frame, and resolved answers."""

    __slots__ = ("dynamic", "frames", "id", "ontology", "pending", "records", "static")

    def __init__(self, id: str, ontology: OntologyObject, frames: list[dict[str, Any]],
                 records: list[tuple[str, int]]) -> None:
        self.id = id
        self.ontology = ontology
        self.frames = frames  # the schema's object_frame records
        self.records = records  # the records merged here: ("objects", index) or ("boxes", row)
        self.static: list[RAnswer] = NONE
        self.dynamic: list[RAnswer] = NONE
        # answers are resolved once every frame of the track is known (dynamic ranges are checked against them)
        self.pending: list[tuple[dict[str, Any], Any]] = NONE


NONE: list[Any] = []  # shared and never mutated: attributes are replaced, not appended to


@dataclass(slots=True)
class RClassification:
    id: str
    ontology: OntologyClassification
    answers: list[RAnswer]
    ranges: list[tuple[int, int]]
    confidence: float


class RBoxes:
    """The rows of a box table that passed the bulk checks (the others became objects, or were reported).

    ``classes``: the ontology object per class index; ``rows``: the passing rows' indices, None for all. A table
    may be a :class:`~predport.core.boxes.BoxSlice` (``sliced``) whose rows all passed: :attr:`table` is then the
    table it stands for, made each time something asks for it; the hot paths (the counts, the writer's
    :func:`~predport.core.writer.row_bytes`) read the shared columns instead."""

    __slots__ = ("_table", "classes", "rows", "sliced")

    def __init__(self, table: Boxes | None, classes: list[OntologyObject | None], rows: list[int] | None,
                 sliced: BoxSlice | None = None) -> None:
        self._table, self.classes, self.rows, self.sliced = table, classes, rows, sliced

    @property
    def table(self) -> Boxes:
        if self._table is None:  # (made again at each use, not kept: evaluate holds every resolved unit)
            return self.sliced.table(compact=False)  # type: ignore[union-attr]  # (indices as classes')
        return self._table

    def columns(self) -> Iterable[str]:
        """The names of the table's columns and fields."""
        return self.sliced.shared.columns if self.sliced is not None else self.table.keys()

    def __len__(self) -> int:
        if self.sliced is not None:
            return len(self.sliced)
        return len(self.table["class"]) if self.rows is None else len(self.rows)

    def _classes(self) -> list[int]:
        cls = self.table["class"]
        return cls if self.rows is None else [cls[k] for k in self.rows]

    def count_objects(self, objects: Counter[str]) -> int:
        """Add the passing rows to ``objects`` (per class name); return how many they are. (A Counter counts
        an iterable in C: 2-3x the speed of adding a count per class.)"""
        cls = self._classes()
        names = [c.name if c is not None else "" for c in self.classes]  # (rows of no box class never pass)
        objects.update(map(names.__getitem__, cls))
        return len(cls)

    def count_groups(self, ledger: Counter[tuple[str, str]]) -> None:
        """Add the passing rows to ``ledger`` as converted, in their class's group (rows of a class that names
        none are not counted)."""
        keys = [(c["group"], "converted") if "group" in c else None for c in self.table["classes"]]
        rows = map(keys.__getitem__, self._classes())
        ledger.update(rows if None not in keys else (k for k in rows if k is not None))  # type: ignore[arg-type]


def count_shared(rows: list[RBoxes], objects: Counter[str], ledger: Counter[tuple[str, str]]) -> int:
    """:meth:`RBoxes.count_objects` and :meth:`RBoxes.count_groups` of many units' rows of shared tables (all
    passed), a table at a time; return how many rows they are."""
    if not rows:
        return 0
    import numpy as np

    tables: dict[int, list[RBoxes]] = {}
    for rb in rows:
        tables.setdefault(id(rb.sliced.shared), []).append(rb)  # type: ignore[union-attr]
    n = 0
    for group in tables.values():
        shared = group[0].sliced.shared  # type: ignore[union-attr]
        column = shared.columns["class"]
        for classes in {id(rb.classes): rb.classes for rb in group}.values():  # (one ontology, as a rule)
            parts = [column[rb.sliced.start:rb.sliced.stop] for rb in group if rb.classes is classes]  # type: ignore[union-attr]
            counts = np.bincount(np.concatenate(parts), minlength=len(classes)).tolist() if parts else []
            for k, c in enumerate(counts):
                if c:
                    o, entry = classes[k], shared.classes[k]
                    objects[o.name if o is not None else ""] += c
                    if "group" in entry:
                        ledger[(entry["group"], "converted")] += c
                    n += c
    return n


@dataclass(slots=True)
class ResolvedUnit:
    unit: DataUnit
    sizes: list[tuple[int | None, int | None]]  # (width, height) per frame index (one entry for videos)
    objects: list[RObject]
    classifications: list[RClassification]
    #: (list name, index) of the unit's records with at least one error: "objects", "classifications" or
    #: "boxes" (a row of the box table; ("boxes", -1): the whole table)
    rejected: set[tuple[str, int]] = field(default_factory=set)
    #: (list name, index, group) of the records whose source names a group (e.g. a COCO category)
    grouped: list[tuple[str, int, str]] = field(default_factory=list)
    #: the box table's rows that passed the bulk checks
    boxes: RBoxes | None = None


def frame_sizes(unit: DataUnit) -> list[tuple[int | None, int | None]]:
    if unit["kind"] == "image_group":
        return [(im.get("width"), im.get("height")) for im in unit.get("images", [])]
    return [(unit.get("width"), unit.get("height"))]


def frame_count(unit: DataUnit) -> int | None:
    kind = unit["kind"]
    if kind == "image":
        return 1
    if kind == "image_group":
        return len(unit.get("images", []))
    n = unit.get("frame_count")
    if n is None and unit.get("fps") and unit.get("duration"):
        try:
            product = unit["fps"] * unit["duration"]  # type: ignore[operator]
            known = math.isfinite(product) and product <= MAX_INDEX  # (else unknown, as without fps)
        except OverflowError:  # (an integer beyond the float range)
            known = False
        if known:
            n = math.ceil(product)
    return n


#: the largest frame number, frame count or pixel size (the schema's maximum)
MAX_INDEX = 2 ** 31 - 1


def to_ranges(frames: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted unique frames -> inclusive ranges: [0, 1, 2, 5] -> [(0, 2), (5, 5)]."""
    out: list[tuple[int, int]] = []
    for f in sorted(set(frames)):
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def overlaps(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(x0 <= y1 and y0 <= x1 for x0, x1 in a for y0, y1 in b)
