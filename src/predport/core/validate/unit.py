"""One data unit, validated: the schema first, then objects (and the box table), then classifications."""

from __future__ import annotations

from typing import Any

from predport.core import boxes as boxmod
from predport.core import schema
from predport.core.boxes import BoxSlice
from predport.core.jsonio import json_values
from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.problems import Problem, Problems
from predport.core.validate.answers import classification_problems
from predport.core.validate.context import UnitContext, collect
from predport.core.validate.objects import record_group, resolve_objects
from predport.core.validate.resolved import RBoxes, RClassification, ResolvedUnit
from predport.core.validate.schema_errors import Rejected, schema_problems


def check_unit(unit: DataUnit, ontology: Ontology) -> tuple[ResolvedUnit | None, list[Problem]]:
    """The resolved unit and every problem of it. The resolved unit comes back even when the unit has errors
    (so that callers can count what it holds); None when it is too malformed to resolve at all."""
    found: list[Problem] = []
    bad = Rejected()
    sliced, classes = None, None
    if type(unit) is dict and type(table := unit.get("boxes")) is BoxSlice:
        # rows of a shared table: checked once for the whole table; a unit whose rows do not all clear the bulk
        # checks, or with objects whose ids the rows could share, is checked as the table it stands for
        classes = table.shared.clean(ontology, table.start, table.stop)
        if classes is None or unit.get("objects"):
            unit = boxmod.plain(unit)
        else:
            sliced, unit = table, {k: v for k, v in unit.items() if k != "boxes"}  # type: ignore[assignment]
    if not schema.compiled()(unit):  # (once: valid, the usual answer, is the schema's whole verdict)
        unit = json_values(unit)  # numpy values, tuples, subclasses: the JSON values they stand for
        found.extend(schema_problems(unit, bad))
    if bad.whole:
        return None, found
    _integral(unit)
    ctx = UnitContext(unit)
    if unit["kind"] == "video" and ctx.count is None:
        found.append(ctx.problem("unit.frame_count_unknown", f"video {unit['title']!r} has no frame count", None,
                                 severity="warning"))
    rejected = {("objects", i) for i in bad.objects} | {("classifications", i) for i in bad.classifications}
    for kind, index in sorted(rejected):  # records the schema rejected still count, as reported, in their group
        group = record_group(unit[kind][index])  # type: ignore[literal-required]
        if group is not None:
            ctx.grouped.append((kind, index, group))
    objects, rboxes = resolve_objects(
        ctx, ontology, [(i, o) for i, o in enumerate(unit["objects"]) if i not in bad.objects], rejected,
        unit.get("boxes"), bad.rows, found)  # type: ignore[arg-type]  # (a slice was made plain or taken out)
    classifications: list[RClassification] = []
    placed: dict[str, list[list[tuple[int, int]]]] = {}
    for index, c in enumerate(unit["classifications"]):
        if index in bad.classifications:
            continue
        group = record_group(c)
        if group is not None:
            ctx.grouped.append(("classifications", index, group))
        if collect(found, classification_problems(ctx, ontology, index, c, placed, classifications)):  # type: ignore[arg-type]
            rejected.add(("classifications", index))
    if sliced is not None:
        rboxes = RBoxes(None, classes, None, sliced)  # type: ignore[arg-type]
    return ResolvedUnit(unit, ctx.sizes, objects, classifications, rejected, ctx.grouped, rboxes), found


def validate_unit(unit: DataUnit, ontology: Ontology, problems: Problems) -> ResolvedUnit | None:
    """:func:`check_unit`, its problems added to ``problems``."""
    resolved, found = check_unit(unit, ontology)
    problems.extend(found)
    return resolved


def _integral(unit: DataUnit) -> None:
    """JSON Schema's "integer" admits 1.0: make the unit's sizes and frame count ints, so that the label row
    says 640, not 640.0 (frame numbers are made ints where they are checked)."""
    holders: list[Any] = [unit, *unit.get("images", ())]
    for holder in holders:
        for key in ("width", "height", "frame_count"):
            v = holder.get(key)
            if type(v) is float:
                holder[key] = int(v)
