"""Validation = the JSON Schema + semantic checks against the ontology, in one pass that collects every
problem. Validating a data unit also *resolves* it: names become ontology nodes, objects with one id
become one track. The writer accepts only the :class:`ResolvedUnit` this module returns, so nothing
unvalidated can be written.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from predport.core import boxes as boxmod
from predport.core import schema
from predport.core.model import Boxes, DataUnit
from predport.core.ontology import (
    Attribute,
    Feature,
    Ontology,
    OntologyClassification,
    OntologyObject,
    Option,
)
from predport.core.problems import Location, Problem, Problems

BRANCH_RE = re.compile(r"[A-Za-z0-9._-]+")
#: tolerance for "inside the frame", in normalised units (far below a pixel of any real image)
EPS = 1e-9
_isfinite = math.isfinite


def check_branch(name: str) -> list[Problem]:
    """Problems with a prediction branch name (case-sensitive; MAIN and consensus names refused)."""
    loc = Location("<command line>", record="--branch")
    if not BRANCH_RE.fullmatch(name):
        msg = f"branch name {name!r} may only contain A-Z a-z 0-9 . _ -"
    elif name == "main":
        msg = "branch 'main' holds ground truth; predictions must go to another branch"
    elif name.startswith("encord-"):
        msg = f"branch name {name!r} starts with 'encord-', which is reserved for consensus branches"
    else:
        return []
    return [Problem("branch.invalid", "error", msg, loc)]


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
        self.static: list[RAnswer] = _NONE
        self.dynamic: list[RAnswer] = _NONE
        # answers are resolved once every frame of the track is known (dynamic ranges are checked against them)
        self.pending: list[tuple[dict[str, Any], Any]] = _NONE


_NONE: list[Any] = []  # shared and never mutated: attributes are replaced, not appended to


@dataclass(slots=True)
class RClassification:
    id: str
    ontology: OntologyClassification
    answers: list[RAnswer]
    ranges: list[tuple[int, int]]
    confidence: float


class RBoxes:
    """The rows of a box table that passed the bulk checks (the others became objects, or were reported).

    ``classes``: the ontology object per class index; ``rows``: the passing rows' indices, None for all."""

    __slots__ = ("classes", "rows", "table")

    def __init__(self, table: Boxes, classes: list[OntologyObject | None], rows: list[int] | None) -> None:
        self.table, self.classes, self.rows = table, classes, rows

    def __len__(self) -> int:
        return len(self.table["class"]) if self.rows is None else len(self.rows)

    def class_counts(self) -> Counter[int]:
        """Passing rows per class index."""
        cls = self.table["class"]
        return Counter(cls) if self.rows is None else Counter(cls[k] for k in self.rows)

    def groups(self) -> dict[int, str]:
        """Class index -> group, where the table names one."""
        return {j: c["group"] for j, c in enumerate(self.table["classes"]) if "group" in c}


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
        n = math.ceil(unit["fps"] * unit["duration"])  # type: ignore[operator]
    return n


def to_ranges(frames: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted unique frames -> inclusive ranges: [0, 1, 2, 5] -> [(0, 2), (5, 5)]."""
    out: list[tuple[int, int]] = []
    for f in sorted(set(frames)):
        if out and f == out[-1][1] + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def _overlaps(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    return any(x0 <= y1 and y0 <= x1 for x0, x1 in a for y0, y1 in b)


class _Ctx:
    """What the checks of one data unit share: the unit, its frames and the problem sink."""

    def __init__(self, unit: DataUnit, problems: Problems) -> None:
        self.unit = unit
        self.problems = problems
        self.kind = unit["kind"]
        self.sizes = frame_sizes(unit)
        self.count = frame_count(unit)
        self.unit_source = unit.get("source")
        self.grouped: list[tuple[str, int, str]] = []

    def add(self, code: str, msg: str, source: dict[str, Any] | None, fld: str | None = None,
            severity: str = "error") -> None:
        src = source or self.unit_source
        self.problems.append(Problem(code, severity, msg, Location.from_source(src, fld)))  # type: ignore[arg-type]

    def size(self, frame: int) -> tuple[int | None, int | None]:
        if self.kind == "image_group":
            return self.sizes[frame] if 0 <= frame < len(self.sizes) else (None, None)
        return self.sizes[0]

    def frame_ok(self, frame: int) -> bool:
        return frame >= 0 and (self.count is None or frame < self.count)


def validate_unit(unit: DataUnit, ontology: Ontology, problems: Problems) -> ResolvedUnit | None:
    """Check one data unit; append every problem to ``problems``.

    Returns the resolved unit (even when it has errors, so that callers can count what it holds), or None
    when the unit is too malformed to resolve at all.
    """
    bad_objects: set[int] = set()
    bad_classifications: set[int] = set()
    bad_rows: set[int] = set()  # of the box table (-1: the table as a whole)
    table = unit.get("boxes") if isinstance(unit, dict) else None
    for path, message in schema.errors(unit):
        if len(path) >= 2 and path[0] == "objects" and isinstance(path[1], int):
            bad_objects.add(path[1])
        elif len(path) >= 2 and path[0] == "classifications" and isinstance(path[1], int):
            bad_classifications.add(path[1])
        elif len(path) >= 3 and path[0] == "boxes" and path[1] in boxmod.COLUMNS and isinstance(path[2], int):
            bad_rows.add(path[2])
            problems.append(Problem("schema.invalid", "error", message,
                                    Location.from_source(boxmod.row_source(table, path[2]),  # type: ignore[arg-type]
                                                         "/".join(map(str, path)))))
            continue
        elif path[:1] == ("boxes",):
            bad_rows.add(-1)
        else:
            bad_objects.add(-1)
        _schema_problem(unit, path, message, problems)
    if -1 in bad_objects:
        return None
    _integral(unit)
    ctx = _Ctx(unit, problems)
    if unit["kind"] == "video" and ctx.count is None:
        ctx.add("unit.frame_count_unknown", f"video {unit['title']!r} has no frame count", None,
                severity="warning")
    rejected = {("objects", i) for i in bad_objects} | {("classifications", i) for i in bad_classifications}
    for kind, index in rejected:  # records the schema rejected still count, as reported, in their group
        group = record_group(unit[kind][index])  # type: ignore[literal-required]
        if group is not None:
            ctx.grouped.append((kind, index, group))
    objects, rboxes = _objects(ctx, ontology, [(i, o) for i, o in enumerate(unit["objects"]) if i not in bad_objects],
                               rejected, table, bad_rows)
    classifications = _classifications(
        ctx, ontology, [(i, c) for i, c in enumerate(unit["classifications"]) if i not in bad_classifications],
        rejected)
    return ResolvedUnit(unit, ctx.sizes, objects, classifications, rejected, ctx.grouped, rboxes)


def _integral(unit: DataUnit) -> None:
    """JSON Schema's "integer" admits 1.0: make the unit's sizes and frame count ints, so that the label row
    says 640, not 640.0 (frame numbers are made ints where they are checked)."""
    for holder in (unit, *unit.get("images", ())):
        for key in ("width", "height", "frame_count"):
            v = holder.get(key)  # type: ignore[attr-defined]
            if type(v) is float:
                holder[key] = int(v)  # type: ignore[index]


def record_group(rec: Any) -> str | None:
    """The record's group (e.g. its COCO category), from its own source or its first frame's."""
    if type(rec) is not dict:
        return None
    for src in (rec.get("source"), _first_frame_source(rec)):
        group = src.get("group") if type(src) is dict else None
        if type(group) is str:
            return group
    return None


def _first_frame_source(rec: dict[str, Any]) -> Any:
    frames = rec.get("frames")
    return frames[0].get("source") if type(frames) is list and frames and type(frames[0]) is dict else None


def _schema_problem(unit: Any, path: tuple[str | int, ...], message: str, problems: Problems) -> None:
    # locate at the innermost record that says where it came from
    source, node = unit.get("source") if isinstance(unit, dict) else None, unit
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(node.get("source"), dict):
            source = node["source"]
    fld = "/".join(map(str, path)) or None
    problems.append(Problem("schema.invalid", "error", message, Location.from_source(source, fld)))


# -- objects -------------------------------------------------------------------------------------------

def _resolve_feature(ctx: _Ctx, ref: dict[str, str], lookup: Callable[[dict[str, str]], Any],
                     names: Iterable[str], what: str, code: str, source: Any) -> Any:
    found = lookup(ref)
    label = ref.get("name") or ref.get("hash")
    if found is None:
        hint = ""
        if "name" in ref and "hash" not in ref:
            near = Ontology.suggest(ref["name"], names)
            hint = f" (did you mean {near!r}?)" if near else ""
        ctx.add(code, f"{what} {label!r} is not in the ontology{hint}", source)
        return None
    if isinstance(found, list):
        hashes = ", ".join(f.hash for f in found)
        ctx.add(code.split(".")[0] + ".ambiguous",
                f"{what} name {label!r} matches several ontology entries ({hashes}); give the feature hash",
                source)
        return None
    if "hash" in ref and "name" in ref and ref["name"] != found.name:
        ctx.add("class.name_mismatch",
                f"{what} hash {ref['hash']!r} is {found.name!r} in the ontology, not {ref['name']!r}", source)
    return found


def _objects(ctx: _Ctx, ontology: Ontology, records: list[tuple[int, Any]], rejected: set[tuple[str, int]],
             table: Boxes | None = None, bad_rows: set[int] | None = None) -> tuple[list[RObject], RBoxes | None]:
    by_id: dict[str, RObject] = {}
    names = list(ontology.objects_by_name)
    problems = ctx.problems
    for index, obj in records:
        errors = problems.errors
        _object(ctx, ontology, obj, names, by_id, ("objects", index))
        if problems.errors > errors:
            rejected.add(("objects", index))
    rboxes = _boxes(ctx, ontology, table, bad_rows or set(), names, by_id, rejected) if table is not None else None
    out = []
    for robj in by_id.values():
        if len(robj.frames) > 1:
            robj.frames.sort(key=lambda f: f["frame"])
        if robj.pending:
            errors = problems.errors
            frames = {f["frame"] for f in robj.frames}
            answers = _answers(ctx, robj.ontology, robj.pending, frames)
            robj.pending = []
            robj.static = [a for a in answers if a.ranges is None]
            robj.dynamic = [a for a in answers if a.ranges is not None]
            if problems.errors > errors:
                rejected.update(robj.records)
        if robj.frames:
            if robj.ontology.shape == "skeleton" and not robj.ontology.vertices:
                ctx.add("skeleton.no_template", f"class {robj.ontology.name!r} has no skeleton template in the "
                        "ontology: vertex names are not checked", robj.frames[0].get("source"), severity="warning")
            out.append(robj)
    return out, rboxes


def _boxes(ctx: _Ctx, ontology: Ontology, table: Boxes, bad_rows: set[int], names: list[str],
           by_id: dict[str, RObject], rejected: set[tuple[str, int]]) -> RBoxes | None:
    """Bulk checks of the box table, a column at a time. A row they do not clear (a class that is not a box
    class, a box not strictly inside the frame, a confidence outside [0, 1], an id used twice, a frame
    other than 0 ...) is checked as the object record it stands for, which says precisely what is wrong
    or accepts it (e.g. a box within the frame tolerance); rows the schema rejected are reported only."""
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
        ctx.add("boxes.invalid", f"box table: {what}; none of its {n} rows is converted", where, "boxes")
        rejected.add(("boxes", -1))
        return None
    classes: list[OntologyObject | None] = []
    for entry in table["classes"]:
        ref: dict[str, str] = entry["class"]  # type: ignore[assignment]
        ont = ontology.objects.get(ref["hash"]) if "hash" in ref else ontology.object(ref)
        fits = isinstance(ont, OntologyObject) and ont.shape == "bounding_box" and ref.get("name", ont.name) == ont.name
        classes.append(ont if fits else None)  # type: ignore[arg-type]
    slow = set(bad_rows)
    if None in classes:
        slow.update(k for k, c in enumerate(cls) if classes[c] is None)
    slow.update(k for k, (x, y, w, h) in enumerate(zip(table["x"], table["y"], table["w"], table["h"], strict=True))
                if not (x >= 0.0 and y >= 0.0 and w > 0.0 and h > 0.0 and x + w <= 1.0 and y + h <= 1.0))
    if "confidence" in table:
        slow.update(k for k, c in enumerate(table["confidence"]) if not (0.0 <= c <= 1.0))
    if "frame" in table:
        count = ctx.count
        slow.update(k for k, f in enumerate(table["frame"]) if type(f) is not int or (count is not None and f >= count))
    ids = table["id"]
    if len(set(ids)) != n:  # one id on several rows is one track: the object path merges and checks them
        seen = Counter(ids)
        slow.update(k for k, i in enumerate(ids) if seen[i] > 1)
    if by_id:
        slow.update(k for k, i in enumerate(ids) if i in by_id)
    problems = ctx.problems
    for k in sorted(slow):
        if k in bad_rows:
            rejected.add(("boxes", k))
            group = boxmod.row_source(given, k).get("group")  # (the row's own class, not the patched one)
            if group is not None:
                ctx.grouped.append(("boxes", k, group))
            continue
        errors = problems.errors
        _object(ctx, ontology, boxmod.row_record(table, k), names, by_id, ("boxes", k))
        if problems.errors > errors:
            rejected.add(("boxes", k))
    rows = [k for k in range(n) if k not in slow] if slow else None
    return RBoxes(table, classes, rows)


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


def _object(ctx: _Ctx, ontology: Ontology, obj: Any, names: list[str], by_id: dict[str, RObject],
            index: tuple[str, int]) -> None:
    """Check one object record and merge it into its track (``by_id``)."""
    src = obj.get("source")
    frames = obj["frames"]
    if src is None and frames:  # readers may give only the (more precise) frame's source
        src = frames[0].get("source")
    group = src.get("group") if src is not None else None
    if group is None and src is not None:
        group = record_group(obj)
    if group is not None:
        ctx.grouped.append((*index, group))
    ref = obj["class"]
    ont = ontology.objects.get(ref["hash"]) if len(ref) == 1 and "hash" in ref else None  # the usual case
    if ont is None:
        ont = _resolve_feature(ctx, ref, ontology.object, names, "object class", "class.unknown", src)
        if ont is None:
            return
    oid = obj["id"]
    robj = by_id.get(oid)
    if robj is None:
        robj = by_id[oid] = RObject(oid, ont, [], records=[index])
        seen: set[int] | None = set() if len(frames) > 1 else None
    elif robj.ontology is not ont:
        ctx.add("instance.conflicting_class",
                f"instance id {oid!r} is a {robj.ontology.name!r} elsewhere and a {ont.name!r} here", src)
        return
    else:  # another record of the same track
        robj.records.append(index)
        seen = {f["frame"] for f in robj.frames}
    count = ctx.count
    shape = ont.shape
    for i, fr in enumerate(frames):
        fsrc = fr.get("source") or src
        n = fr["frame"]
        if type(n) is not int:  # 1.0 passed the schema: a label row's frame key must read "1", not "1.0"
            n = fr["frame"] = int(n)
        if n < 0 or (count is not None and n >= count):
            ctx.add("frame.out_of_range", f"frame {n} is outside the data unit ({_frames_text(ctx)})",
                    fsrc, f"frames/{i}/frame")
            continue
        if seen is not None:
            if n in seen:
                ctx.add("frame.duplicate", f"instance {oid!r} has two geometries on frame {n}", fsrc)
                continue
            seen.add(n)
        conf = fr.get("confidence", 1.0)
        if not (0.0 <= conf <= 1.0):  # NaN fails this too
            ctx.add("confidence.out_of_range", f"confidence {conf!r} is not in [0, 1]", fsrc,
                    f"frames/{i}/confidence")
        g = fr["geometry"]
        if g["shape"] != shape:
            ctx.add("class.shape_mismatch",
                    f"a {g['shape']} does not fit class {ont.name!r}, whose shape is {shape}", fsrc)
            continue
        if shape == "bounding_box":  # the common case, inline; anything doubtful goes to the full check
            x, y, w, h = g["x"], g["y"], g["w"], g["h"]
            if not (x >= 0.0 and y >= 0.0 and w > 0.0 and h > 0.0 and x + w <= 1.0 and y + h <= 1.0):
                _check_geometry(ctx, g, ont, ctx.size(n), fsrc)
        else:
            _check_geometry(ctx, g, ont, ctx.size(n), fsrc)
        robj.frames.append(fr)
    if "answers" in obj:
        robj.pending = [*robj.pending, *((a, src) for a in obj["answers"])]


def _frames_text(ctx: _Ctx) -> str:
    if ctx.kind == "image":
        return "an image has only frame 0"
    return f"{ctx.count} frames" if ctx.count is not None else "unknown frame count"


def _in(v: float) -> bool:
    return -EPS <= v <= 1.0 + EPS


def _check_geometry(ctx: _Ctx, g: dict[str, Any], ont: OntologyObject, size: tuple[int | None, int | None],
                    src: Any) -> None:
    shape = g["shape"]
    if shape in ("bounding_box", "rotatable_bounding_box"):
        x, y, w, h = g["x"], g["y"], g["w"], g["h"]
        vals = (x, y, w, h, g["theta"]) if shape == "rotatable_bounding_box" else (x, y, w, h)
        if not all(map(_isfinite, vals)):
            ctx.add("geometry.not_finite", f"{shape} has a NaN or infinite value: {list(vals)}", src)
        elif w <= 0 or h <= 0:
            ctx.add("geometry.degenerate", f"{shape} has zero or negative size (w={w}, h={h})", src)
        elif shape == "bounding_box":
            if not (_in(x) and _in(y) and _in(x + w) and _in(y + h)):
                ctx.add("geometry.out_of_frame",
                        f"box x={x}, y={y}, w={w}, h={h} reaches outside the frame [0, 1]", src)
        elif not (_in(x + w / 2) and _in(y + h / 2)):
            ctx.add("geometry.out_of_frame", f"rotated box centre ({x + w / 2}, {y + h / 2}) is outside the frame",
                    src)
    elif shape == "polygon":
        for p, part in enumerate(g["polygons"]):
            for r, ring in enumerate(part):
                what = f"polygon {p} {'outer ring' if r == 0 else f'hole {r}'}"
                _check_points(ctx, ring, 3, what, src)
    elif shape == "polyline":
        _check_points(ctx, g["points"], 2, "polyline", src)
    elif shape == "point":
        x, y = g["x"], g["y"]
        if not (_isfinite(x) and _isfinite(y)):
            ctx.add("geometry.not_finite", f"point ({x}, {y}) is not finite", src)
        elif not (_in(x) and _in(y)):
            ctx.add("geometry.out_of_frame", f"point ({x}, {y}) is outside the frame", src)
    elif shape == "bitmask":
        fw, fh = size
        g["width"], g["height"] = int(g["width"]), int(g["height"])  # (1.0 passed the schema as an integer)
        if fw is None or fh is None:
            ctx.add("frame.size_unknown", "a bitmask needs the frame's pixel size, which is unknown", src)
        elif (g["width"], g["height"]) != (fw, fh):
            ctx.add("bitmask.size_mismatch",
                    f"bitmask is {g['width']}x{g['height']} but the frame is {fw}x{fh}", src)
        else:
            from predport.core import rle as rlemod  # numpy & pycocotools load only when masks appear

            err = rlemod.check(g["rle"], g["width"], g["height"])
            if err:
                ctx.add("bitmask.invalid_rle", err, src)
    elif shape == "skeleton":
        seen: set[str] = set()
        by_hash = {h: n for n, h in ont.vertices.items() if h}
        for i, pt in enumerate(g["points"]):
            if not ont.vertices:  # no template to check against (reported once per instance)
                break
            name = pt.get("name")
            if name is None:
                name = by_hash.get(pt["hash"])
            if name is None or name not in ont.vertices:
                label = pt.get("name") or pt.get("hash")
                ctx.add("skeleton.unknown_vertex",
                        f"vertex {label!r} is not in the template of {ont.name!r} "
                        f"({', '.join(ont.vertices) or 'no template'})", src, f"geometry/points/{i}")
                continue
            if "hash" in pt and ont.vertices[name] and pt["hash"] != ont.vertices[name]:
                ctx.add("skeleton.unknown_vertex",
                        f"vertex {name!r} has hash {pt['hash']!r}, the template says {ont.vertices[name]!r}",
                        src, f"geometry/points/{i}")
            if name in seen:
                ctx.add("skeleton.duplicate_vertex", f"vertex {name!r} appears twice", src, f"geometry/points/{i}")
            seen.add(name)
            x, y = pt["x"], pt["y"]
            if not (_isfinite(x) and _isfinite(y)):
                ctx.add("geometry.not_finite", f"vertex {name!r} ({x}, {y}) is not finite", src)
            elif pt.get("visibility") != "invisible" and not (_in(x) and _in(y)):
                ctx.add("geometry.out_of_frame", f"vertex {name!r} ({x}, {y}) is outside the frame", src)


def _check_points(ctx: _Ctx, flat: list[float], minimum: int, what: str, src: Any) -> None:
    if len(flat) % 2:
        ctx.add("geometry.degenerate", f"{what} has an odd number of coordinates ({len(flat)})", src)
        return
    if len(flat) < 2 * minimum:
        ctx.add("geometry.degenerate", f"{what} has {len(flat) // 2} points; at least {minimum} are needed", src)
        return
    if not all(map(_isfinite, flat)):
        ctx.add("geometry.not_finite", f"{what} has a NaN or infinite coordinate", src)
    elif not (min(flat) >= -EPS and max(flat) <= 1.0 + EPS):
        ctx.add("geometry.out_of_frame", f"{what} has coordinates outside the frame [0, 1]", src)


# -- answers -------------------------------------------------------------------------------------------

def _answers(ctx: _Ctx, feature: Feature, pending: list[tuple[dict[str, Any], Any]],
             object_frames: set[int] | None) -> list[RAnswer]:
    """Resolve a flat list of answers of one object or classification (``object_frames`` None = a
    classification: no dynamic answers there)."""
    # pass 1: attributes; a name shared by several attributes is settled after the options are known
    resolved: list[tuple[dict[str, Any], Any, Attribute | list[Attribute]]] = []
    for a, owner_src in pending:
        src = a.get("source") or owner_src
        ref = a["attribute"]
        attr: Attribute | list[Attribute] | None
        if "hash" in ref:
            attr = feature.attributes.get(ref["hash"])
        else:
            cands = feature.attributes_by_name.get(ref.get("name", ""), [])
            attr = cands[0] if len(cands) == 1 else (cands or None)
        if attr is None:
            label = ref.get("name") or ref.get("hash")
            near = ""
            if "name" in ref:
                s = Ontology.suggest(ref["name"], feature.attributes_by_name)
                near = f" (did you mean {s!r}?)" if s else ""
            ctx.add("attribute.unknown", f"attribute {label!r} does not belong to {feature.name!r}{near}", src)
            continue
        if not isinstance(attr, list) and "hash" in ref and "name" in ref and ref["name"] != attr.name:
            ctx.add("class.name_mismatch", f"attribute {ref['hash']!r} is {attr.name!r}, not {ref['name']!r}", src)
        resolved.append((a, src, attr))
    # options selected anywhere in this answer list: a nested answer needs its parent option among them
    selected = {opt.hash for a, _, at in resolved if not isinstance(at, list)
                for opt in _options(at, _answer_refs(a), None)}
    out: list[RAnswer] = []
    answered: dict[str, list[RAnswer]] = {}
    for a, src, at in resolved:
        if isinstance(at, list):
            fitting = [c for c in at if c.parent is None or c.parent.hash in selected]
            if len(fitting) != 1:
                ctx.add("attribute.ambiguous",
                        f"attribute name {at[0].name!r} matches several attributes of {feature.name!r} "
                        f"({', '.join(c.hash for c in at)}); give the feature hash", src)
                continue
            at = fitting[0]
        kind = next(k for k in ("radio", "checklist", "text", "numeric") if k in a)
        if kind != at.type:
            ctx.add("answer.type_mismatch", f"attribute {at.name!r} is {at.type}, the answer is {kind}", src)
            continue
        value: list[Option] | str | float
        if kind in ("radio", "checklist"):
            refs = [a["radio"]] if kind == "radio" else a["checklist"]
            opts = _options(at, refs, None)
            if len(opts) != len(refs):
                known = ", ".join(o.label for o in at.options.values())
                for r in refs:
                    if at.option(r) is None:
                        ctx.add("option.unknown",
                                f"option {r.get('name') or r.get('hash')!r} is not an option of {at.name!r} ({known})",
                                src)
            if len(opts) != len(refs):
                continue
            value = opts
        else:
            value = a[kind]
            if kind == "numeric" and not _isfinite(value):  # type: ignore[arg-type]
                ctx.add("answer.type_mismatch", f"numeric answer {value!r} is not finite", src)
                continue
        ranges = _answer_ranges(ctx, a, at, object_frames, src)
        if ranges is False:
            continue
        if at.parent is not None and at.parent.hash not in selected:
            ctx.add("answer.parent_not_selected",
                    f"{at.name!r} is nested under option {at.parent.label!r} of {at.parent.attribute.name!r}, "
                    "which is not selected", src)
            continue
        ra = RAnswer(at, value, ranges)  # type: ignore[arg-type]
        prev = answered.setdefault(at.hash, [])
        if any(_conflict(p, ra) for p in prev):
            ctx.add("answer.duplicate", f"attribute {at.name!r} is answered more than once"
                    + (" on overlapping frames" if ra.ranges is not None else ""), src)
            continue
        prev.append(ra)
        out.append(ra)
    return out


def _answer_refs(a: dict[str, Any]) -> list[dict[str, str]]:
    if "radio" in a:
        return [a["radio"]]
    return list(a.get("checklist", []))


def _conflict(a: RAnswer, b: RAnswer) -> bool:
    """Two answers to one attribute clash unless they are dynamic on disjoint frames -- or, for a dynamic
    checklist (which Encord writes as one entry per ticked option and its frames), tick different options."""
    if a.ranges is None or b.ranges is None:
        return True
    if not _overlaps(a.ranges, b.ranges):
        return False
    if isinstance(a.value, list) and isinstance(b.value, list) and a.attribute.type == "checklist":
        return bool({o.hash for o in a.value} & {o.hash for o in b.value})
    return True


def _options(attr: Attribute, refs: list[dict[str, str]], on_unknown: Callable[[dict[str, str]], None] | None
             ) -> list[Option]:
    out = []
    for r in refs:
        opt = attr.option(r)
        if opt is None:
            if on_unknown:
                on_unknown(r)
            continue
        out.append(opt)
    return out


def _answer_ranges(ctx: _Ctx, a: dict[str, Any], at: Attribute, object_frames: set[int] | None,
                   src: Any) -> list[tuple[int, int]] | bool | None:
    """None for a static answer, the ranges for a dynamic one, False when it is wrong (reported)."""
    frames = a.get("frames")
    if not at.dynamic or object_frames is None:  # classification attributes are never dynamic
        if frames is not None:
            ctx.add("answer.frames_on_static", f"attribute {at.name!r} is not dynamic but frames are given", src)
            return False
        return None
    if ctx.kind != "video":
        # Encord itself writes these (range [[0, 0]] on an image): kept, but said
        ctx.add("answer.dynamic_on_image",
                f"attribute {at.name!r} is dynamic (per frame) on a still "
                f"{'image' if ctx.kind == 'image' else 'image group'}; kept as a per-frame answer", src,
                severity="warning")
    if frames is None:
        return to_ranges(object_frames)
    ranges = [(int(r[0]), int(r[1])) for r in frames]
    for f0, f1 in ranges:
        if f0 > f1:
            ctx.add("answer.frames_without_object", f"frame range [{f0}, {f1}] is empty", src)
            return False
        missing = [f for f in range(f0, f1 + 1) if f not in object_frames]
        if missing:
            ctx.add("answer.frames_without_object",
                    f"dynamic answer to {at.name!r} on frames without the object ({_few(missing)})", src)
            return False
    return ranges


def _few(values: list[int]) -> str:
    return ", ".join(map(str, values[:5])) + (f" and {len(values) - 5} more" if len(values) > 5 else "")


# -- classifications ----------------------------------------------------------------------------------

def _classifications(ctx: _Ctx, ontology: Ontology, records: list[tuple[int, Any]],
                     rejected: set[tuple[str, int]]) -> list[RClassification]:
    out: list[RClassification] = []
    names = list(ontology.classifications_by_name)
    placed: dict[str, list[list[tuple[int, int]]]] = {}
    for index, c in records:
        src = c.get("source")
        group = record_group(c)
        if group is not None:
            ctx.grouped.append(("classifications", index, group))
        ont = _resolve_feature(ctx, c["class"], ontology.classification, names, "classification",
                               "classification.unknown", src)
        if ont is None:
            rejected.add(("classifications", index))
            continue
        ranges = []
        ok = True
        for r in c["frames"]:
            f0, f1 = int(r[0]), int(r[1])
            if f0 > f1 or not (ctx.frame_ok(f0) and ctx.frame_ok(f1)):
                ctx.add("frame.out_of_range",
                        f"classification frame range [{f0}, {f1}] is outside the data unit ({_frames_text(ctx)})",
                        src, "frames")
                ok = False
            ranges.append((f0, f1))
        conf = c.get("confidence", 1.0)
        if not (_isfinite(conf) and 0.0 <= conf <= 1.0):
            ctx.add("confidence.out_of_range", f"confidence {conf!r} is not in [0, 1]", src, "confidence")
            ok = False
        answers = _answers(ctx, ont, [(a, src) for a in c["answers"]], None)
        if ont.root is None or not any(a.attribute is ont.root for a in answers):
            ctx.add("classification.no_answer", f"classification {ont.name!r} has no answer to {ont.name!r}", src)
            ok = False
        for other in placed.get(ont.hash, []):
            if _overlaps(other, ranges):
                ctx.add("classification.overlap",
                        f"classification {ont.name!r} is already on frames {other} of this data unit", src)
                ok = False
                break
        placed.setdefault(ont.hash, []).append(ranges)
        if ok:
            out.append(RClassification(c["id"], ont, answers, ranges, conf))
        else:
            rejected.add(("classifications", index))
    return out
