"""Object records: class resolved, frames checked, records with one instance id merged into one track, then
the track's answers (once all its frames are known, so that dynamic ranges can be checked)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from predport.core.model import Boxes
from predport.core.ontology import Ontology
from predport.core.problems import Problem
from predport.core.validate.answers import answer_problems
from predport.core.validate.context import UnitContext, collect, resolve_feature
from predport.core.validate.geometry import geometry_problems
from predport.core.validate.resolved import RAnswer, RBoxes, RObject


def resolve_objects(ctx: UnitContext, ontology: Ontology, records: list[tuple[int, Any]],
                    rejected: set[tuple[str, int]], table: Boxes | None, bad_rows: set[int],
                    sink: list[Problem]) -> tuple[list[RObject], RBoxes | None]:
    """The unit's tracks (and the box table's passing rows); every problem to ``sink``, every record with
    an error to ``rejected``."""
    from predport.core.validate.tables import table_rows

    by_id: dict[str, RObject] = {}
    names = list(ontology.objects_by_name)
    for index, obj in records:
        if collect(sink, object_problems(ctx, ontology, obj, names, by_id, ("objects", index))):
            rejected.add(("objects", index))
    rboxes = table_rows(ctx, ontology, table, bad_rows, names, by_id, rejected, sink) if table is not None else None
    out = []
    for robj in by_id.values():
        if len(robj.frames) > 1:
            robj.frames.sort(key=lambda f: f["frame"])
        if robj.pending:
            answers: list[RAnswer] = []
            frames = {f["frame"] for f in robj.frames}
            if collect(sink, answer_problems(ctx, robj.ontology, robj.pending, frames, answers)):
                rejected.update(robj.records)
            robj.pending = []
            robj.static = [a for a in answers if a.ranges is None]
            robj.dynamic = [a for a in answers if a.ranges is not None]
        if robj.frames:
            if robj.ontology.shape == "skeleton" and not robj.ontology.vertices:
                sink.append(ctx.problem("skeleton.no_template", f"class {robj.ontology.name!r} has no skeleton "
                                        "template in the ontology: vertex names are not checked",
                                        robj.frames[0].get("source"), severity="warning"))
            out.append(robj)
    return out, rboxes


def by_shape(found: Any, shape: str | None) -> Any:
    """Several ontology objects of one name: the one whose shape is the geometry's (else all of them, which
    validation reports as ambiguous)."""
    if isinstance(found, list):
        fitting = [o for o in found if o.shape == shape]
        if len(fitting) == 1:
            return fitting[0]
    return found


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


def object_problems(ctx: UnitContext, ontology: Ontology, obj: Any, names: list[str], by_id: dict[str, RObject],
                    index: tuple[str, int]) -> Iterator[Problem]:
    """Check one object record and merge it into its track (``by_id``); yield what is wrong with it.
    (Consume it whole: the merge happens as it goes.)"""
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
        shape = frames[0]["geometry"]["shape"] if frames else None
        ont, found = resolve_feature(ctx, ref, lambda r: by_shape(ontology.object(r), shape), names, "object class",
                                     "class.unknown", src)
        yield from found
        if ont is None:
            return
    oid = obj["id"]
    robj = by_id.get(oid)
    if robj is None:
        robj = by_id[oid] = RObject(oid, ont, [], records=[index])
        seen: set[int] | None = set() if len(frames) > 1 else None
    elif robj.ontology is not ont:
        yield ctx.problem("instance.conflicting_class",
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
            yield ctx.problem("frame.out_of_range", f"frame {n} is outside the data unit ({ctx.frames_text()})",
                              fsrc, f"frames/{i}/frame")
            continue
        if seen is not None:
            if n in seen:
                yield ctx.problem("frame.duplicate", f"instance {oid!r} has two geometries on frame {n}", fsrc)
                continue
            seen.add(n)
        conf = fr.get("confidence", 1.0)
        if not (0.0 <= conf <= 1.0):  # NaN fails this too
            yield ctx.problem("confidence.out_of_range", f"confidence {conf!r} is not in [0, 1]", fsrc,
                              f"frames/{i}/confidence")
        g = fr["geometry"]
        if g["shape"] != shape:
            yield ctx.problem("class.shape_mismatch",
                              f"a {g['shape']} does not fit class {ont.name!r}, whose shape is {shape}", fsrc)
            continue
        if shape == "bounding_box":  # the common case, inline; anything doubtful goes to the full check
            x, y, w, h = g["x"], g["y"], g["w"], g["h"]
            try:
                inside = x >= 0.0 and y >= 0.0 and w > 0.0 and h > 0.0 and x + w <= 1.0 and y + h <= 1.0
            except OverflowError:  # (an integer beyond the float range: geometry.not_finite)
                inside = False
            if not inside:
                yield from geometry_problems(ctx, g, ont, ctx.size(n), fsrc)
        else:
            yield from geometry_problems(ctx, g, ont, ctx.size(n), fsrc)
        robj.frames.append(fr)
    if "answers" in obj:
        robj.pending = [*robj.pending, *((a, src) for a in obj["answers"])]
