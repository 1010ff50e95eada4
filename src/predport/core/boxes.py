"""The columnar box table (the schema's ``boxes``): what one row means, as an ordinary object record.

A reader with many plain boxes per data unit (COCO results, YOLO, CSV) may put them in one table of columns
instead of one object record per box: it costs a few list comprehensions instead of five dicts per box, and
validation and writing then work a column at a time. The table adds no meaning of its own: row k *is* the
object :func:`row_record` builds, and any row the bulk checks do not clear is validated as exactly that
record, so a table and its expansion (:func:`expand`) give the same problems, locations and label rows.
"""

from __future__ import annotations

import contextlib
import copy
from bisect import bisect_left, bisect_right
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
    table = plain(unit).get("boxes")
    if table is None:
        return unit
    out = {k: v for k, v in unit.items() if k != "boxes"}
    out["objects"] = [*unit["objects"], *(row_record(table, k) for k in range(len(table["class"])))]
    return out  # type: ignore[return-value]


#: the columns a shared table may hold (:class:`SharedBoxes`): what whole-file readers of plain boxes have
SHARED_COLUMNS = ("class", "id", "x", "y", "w", "h", "confidence", "record", "line")
_NUMBERS = ("x", "y", "w", "h", "confidence")


class SharedBoxes:
    """One box table whose rows many data units share, each unit a contiguous range of them (:class:`BoxSlice`),
    so that its columns are checked once for the whole file instead of once per unit.

    It means nothing the schema's ``boxes`` does not: a unit whose ``boxes`` is ``table.rows(a, b)`` holds exactly
    the table :meth:`BoxSlice.table` makes of rows ``a`` to ``b - 1`` (the same classes, every column cut to those
    rows); validation, the filters and the writer give that table's problems, counts and label rows, differential
    tests hold them to it, and wherever the fast path does not apply (a row that a bulk check does not clear, a
    class map applied after the reader, images merged into a video, top-k on a slice that is not one of the
    table's ``units``, a broken table) the unit is converted as that table.

    Columns are numpy arrays or sequences, all as long as ``class``: ``x``, ``y``, ``w``, ``h`` and
    ``confidence`` float64 arrays (what ``tolist()`` gives is the column), ``class``, ``record`` and ``line``
    integer arrays, ``id`` an integer array (an integer stands for its decimal spelling: 17 is the id "17") or a
    sequence of strings. The table copies ``classes`` and ``source``, and takes the arrays as they are and makes them
    read-only: a reader must not change an array once it has handed it over (the checks are made once). Columns
    of other types are not refused here: their units are converted as the tables of their rows, where the schema
    says what is wrong with them.

    ``units`` (optional): where the ranges of rows the reader will hand out as units begin, ascending, from 0 (the
    last one ends at the table's end). It changes no meaning; it lets ``--top-k``, which ranks the rows of each
    unit, do so a column at a time for the whole table (a slice that is not one of these ranges is filtered as its
    plain table).

    ``sources`` (optional, with ``units``): each unit's own ``source``, in the order of ``units``, for a table whose
    units come from different files (a YOLO label file each): the table of a slice that is one of the units has
    that unit's source (a slice that is not one has ``source``). Ids then need only differ within each unit (a
    slice that is not within one unit is converted as its plain table when they repeat across units)."""

    __slots__ = ("__weakref__", "_ids", "_starts", "_verdicts", "classes", "columns", "field", "n", "source",
                 "sources", "units")

    def __init__(self, classes: list[Any], columns: dict[str, Any], *, field: str | None = None,
                 source: Any = None, units: Any = None, sources: Any = None) -> None:
        import numpy as np

        unknown = set(columns) - set(SHARED_COLUMNS)
        if unknown:  # (a reader's bug, not a data problem)
            raise ValueError(f"SharedBoxes has no column(s) {sorted(unknown)}")
        self.classes = copy.deepcopy(classes)
        self.source = copy.deepcopy(source)
        self.field = field
        self.columns: dict[str, Any] = {}
        for name, col in columns.items():
            if isinstance(col, np.ndarray):
                col = np.ascontiguousarray(col)  # (orjson writes C-contiguous arrays)
                col.flags.writeable = False
            else:
                col = tuple(col)
            self.columns[name] = col
        cls = self.columns.get("class")
        self.n = len(cls) if cls is not None else 0
        self._verdicts: dict[int, tuple[Any, tuple[list[Any], list[int]] | None]] = {}
        self._ids: str | None = None  # (whether ids differ: "table", "units" (within each), "no"; when asked)
        self.units = None
        self._starts: list[int] = []
        if units is not None:
            starts = np.asarray(units, dtype=np.int64)
            if starts.ndim != 1 or (len(starts) and (starts[0] != 0 or (np.diff(starts) < 0).any()
                                                      or starts[-1] > self.n)):  # (a reader's bug)
                raise ValueError("SharedBoxes units: where ranges of its rows begin, ascending from 0")
            starts.flags.writeable = False
            self.units = starts
            self._starts = starts.tolist()
        self.sources = None
        if sources is not None:
            if units is None or len(sources) != len(self._starts):  # (a reader's bug)
                raise ValueError("SharedBoxes sources: one per unit, with units")
            # (a source is a small dict of strings and numbers: a copy of it, not a deep copy, 5,000 a table)
            self.sources = [dict(s) if type(s) is dict and all(type(v) in (str, int) for v in s.values())
                            else copy.deepcopy(s) for s in sources]

    def rows(self, start: int, stop: int) -> BoxSlice:
        """Rows ``start`` to ``stop - 1``, as a data unit's ``boxes``."""
        return BoxSlice(self, start, stop)

    def verdict(self, ontology: Any) -> tuple[list[Any], list[int]] | None:
        """For ``ontology``: the ontology object of each class entry when it is a box class (else None), and the
        rows that a bulk check of :func:`predport.core.validate.tables.table_rows` does not clear (their class is
        not a box class, a box not strictly inside the frame, a confidence outside [0, 1]), ascending. None when
        the table cannot take the fast path at all: a column of another type or length, a class index out of
        range, an id used twice in the table, classes or source that the schema refuses. Computed once per
        ontology (the table cannot change)."""
        key = id(ontology)
        done = self._verdicts.get(key)
        if done is None or done[0] is not ontology:
            done = self._verdicts[key] = (ontology, _verdict(self, ontology))
        return done[1]

    def clean(self, ontology: Any, start: Any, stop: Any) -> list[Any] | None:
        """The resolved classes (:meth:`verdict`) when rows ``start`` to ``stop - 1`` exist and all clear the
        bulk checks, else None."""
        found = self.verdict(ontology)
        if found is None or not (type(start) is int and type(stop) is int and 0 <= start <= stop <= self.n):
            return None
        classes, failing = found
        if self._ids == "units" and stop > start:  # (ids repeat across units: one unit's rows at most)
            i = bisect_right(self._starts, start) - 1
            if stop > (self._starts[i + 1] if i + 1 < len(self._starts) else self.n):
                return None
        k = bisect_left(failing, start)
        return classes if k == len(failing) or failing[k] >= stop else None

    def unit_index(self, start: int, stop: int) -> int | None:
        """Which of ``units`` rows ``start`` to ``stop - 1`` are (None: not one of them)."""
        starts = self._starts
        i = bisect_left(starts, start)
        while i < len(starts) and starts[i] == start:
            if (starts[i + 1] if i + 1 < len(starts) else self.n) == stop:
                return i
            i += 1
        return None


class BoxSlice:
    """Rows ``start`` to ``stop - 1`` of a :class:`SharedBoxes`: a data unit's ``boxes`` (see there)."""

    __slots__ = ("shared", "start", "stop")

    def __init__(self, shared: SharedBoxes, start: int, stop: int) -> None:
        if not (type(shared) is SharedBoxes and type(start) is int and type(stop) is int
                and 0 <= start <= stop <= shared.n):  # (a reader's bug, not a data problem)
            raise ValueError(f"rows {start!r}..{stop!r} are not a range of the shared table's rows")
        self.shared, self.start, self.stop = shared, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __repr__(self) -> str:
        return f"BoxSlice(rows {self.start}..{self.stop - 1} of {self.shared.n})"

    def source(self) -> Any:
        """The ``source`` of the table this slice stands for: its unit's, when the shared table has ``sources``."""
        sh = self.shared
        if sh.sources is not None:
            i = sh.unit_index(self.start, self.stop)
            if i is not None:
                return sh.sources[i]
        return sh.source

    def table(self, compact: bool = True) -> Boxes:
        """The box table this slice stands for: plain lists and JSON values; its classes are the shared table's
        that its rows use (copied), in the shared table's order. (``compact=False``, for reading only: the shared
        table's own class entries, all of them, and its class indices.)"""
        import numpy as np

        sh, a, b = self.shared, self.start, self.stop
        out: dict[str, Any] = {}
        for name, col in sh.columns.items():
            part = col[a:b]
            if isinstance(part, np.ndarray):
                part = part.tolist()
                if name == "id" and col.dtype.kind in "iu":
                    part = list(map(str, part))
            else:
                part = list(part)
            out[name] = part
        cls, entries = out.get("class"), sh.classes
        used = sorted(set(cls)) if type(cls) is list and set(map(type, cls)) <= {int} else []
        if not compact:
            out["classes"] = entries  # (for reading only)
        elif type(entries) is not list:  # (for validation to report)
            out["classes"] = copy.deepcopy(entries)
        elif used and used[0] >= 0 and used[-1] < len(entries):
            local = {c: k for k, c in enumerate(used)}
            out["class"] = [local[c] for c in cls]  # type: ignore[union-attr]
            out["classes"] = [_entry(entries[c]) for c in used]
        else:  # (indices that point nowhere: kept, for validation to report)
            out["classes"] = list(map(_entry, entries))
        if sh.field is not None:
            out["field"] = sh.field
        src = self.source()
        if src is not None:
            out["source"] = copy.deepcopy(src)
        return out  # type: ignore[return-value]


def _entry(entry: Any) -> Any:
    """A copy of a class entry (maps rewrite them). (A class ref's values are strings: 0.4 us an entry, where
    ``copy.deepcopy`` took 6 us, 80 entries a unit.)"""
    if type(entry) is dict and type(ref := entry.get("class")) is dict and all(type(v) is str for v in ref.values()):
        return {**entry, "class": dict(ref)}
    return copy.deepcopy(entry)


def plain(unit: Any) -> Any:
    """``unit`` with a :class:`BoxSlice` replaced by the table it stands for (any other unit as it is)."""
    if type(unit) is dict and type(unit.get("boxes")) is BoxSlice:
        return {**unit, "boxes": unit["boxes"].table()}
    return unit


def _verdict(sh: SharedBoxes, ontology: Any) -> tuple[list[Any], list[int]] | None:
    import numpy as np

    from predport.core import schema
    from predport.core.validate.tables import box_classes

    cols, n = sh.columns, sh.n
    if not {"class", "id", "x", "y", "w", "h"} <= cols.keys():
        return None
    for name, col in cols.items():
        if len(col) != n:
            return None
        if name == "id" and type(col) is tuple:
            if not all(type(i) is str and i for i in col):
                return None
            continue
        if not (isinstance(col, np.ndarray) and col.ndim == 1):
            return None
        if name in _NUMBERS and col.dtype != np.float64:
            return None
        if name not in _NUMBERS and col.dtype.kind not in "iu":
            return None
    probe: dict[str, Any] = {"classes": sh.classes, **{name: [] for name in cols}}
    if sh.field is not None:
        probe["field"] = sh.field
    if sh.source is not None:
        probe["source"] = sh.source
    if not schema.compiled_def("boxes")(probe):
        return None
    if sh.sources is not None and not all(map(schema.compiled_def("source"), sh.sources)):
        return None
    cls = cols["class"]
    if n and (int(cls.min()) < 0 or int(cls.max()) >= len(sh.classes)):
        return None
    if "record" in cols and n and int(cols["record"].min()) < 0:
        return None
    if "line" in cols and n and int(cols["line"].min()) < 1:  # (1-based)
        return None
    if sh._ids is None:  # (one id on two rows of a unit is one track)
        sh._ids = "table" if _distinct(cols["id"]) else "units" if sh.units is not None and _distinct_within(
            cols["id"], sh._starts) else "no"
    if sh._ids == "no":
        return None
    x, y, w, h = cols["x"], cols["y"], cols["w"], cols["h"]
    with np.errstate(invalid="ignore", over="ignore"):
        ok = (x >= 0.0) & (y >= 0.0) & (w > 0.0) & (h > 0.0) & (x + w <= 1.0) & (y + h <= 1.0)
        if "confidence" in cols:
            conf = cols["confidence"]
            ok &= (conf >= 0.0) & (conf <= 1.0)
    resolved = box_classes(ontology, sh.classes)
    if None in resolved:
        ok &= np.array([c is not None for c in resolved], dtype=bool)[cls]
    return resolved, np.flatnonzero(~ok).tolist()


def _distinct_within(ids: Any, starts: list[int]) -> bool:
    """No id twice within any of the ranges that begin at ``starts`` (ascending, from 0)."""
    ends = [*starts[1:], len(ids)]
    return all(_distinct(ids[a:b]) for a, b in zip(starts, ends, strict=True) if b - a > 1)


def _distinct(ids: Any) -> bool:
    """No id twice. (For integers: counted when they are small, else sorted; numpy's hash-based unique took 0.22 s
    for 500k ids, sorting 0.03 s, counting 3 ms.)"""
    import numpy as np

    if not isinstance(ids, np.ndarray):
        return len(set(ids)) == len(ids)
    if not len(ids):
        return True
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo < 4 * len(ids) + 1024:
        return int(np.bincount((ids - lo).astype(np.int64)).max()) <= 1
    s = np.sort(ids)
    return bool((s[1:] != s[:-1]).all())
