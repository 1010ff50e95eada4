"""Answers (attributes at any depth, static or dynamic) and classifications, against the ontology."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from predport.core.ontology import Attribute, Feature, Ontology, OntologyClassification, Option
from predport.core.problems import Problem
from predport.core.validate.context import UnitContext, resolve_feature
from predport.core.validate.geometry import finite
from predport.core.validate.resolved import RAnswer, RClassification, overlaps, to_ranges


def answer_problems(ctx: UnitContext, feature: Feature, pending: list[tuple[dict[str, Any], Any]],
                    object_frames: set[int] | None, out: list[RAnswer]) -> Iterator[Problem]:
    """Resolve a flat list of answers of one object or classification into ``out``; yield what is wrong
    (``object_frames`` None: a classification, which has no dynamic answers)."""
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
            yield ctx.problem("attribute.unknown", f"attribute {label!r} does not belong to {feature.name!r}{near}",
                              src)
            continue
        if not isinstance(attr, list) and "hash" in ref and "name" in ref and ref["name"] != attr.name:
            yield ctx.problem("class.name_mismatch", f"attribute {ref['hash']!r} is {attr.name!r}, not "
                              f"{ref['name']!r}", src)
        resolved.append((a, src, attr))
    # options selected anywhere in this answer list: a nested answer needs its parent option among them
    selected = {opt.hash for a, _, at in resolved if not isinstance(at, list) for opt in _options(at, _refs(a))}
    answered: dict[str, list[RAnswer]] = {}
    for a, src, at in resolved:
        if isinstance(at, list):
            fitting = [c for c in at if c.parent is None or c.parent.hash in selected]
            if len(fitting) != 1:
                yield ctx.problem("attribute.ambiguous", f"attribute name {at[0].name!r} matches several attributes "
                                  f"of {feature.name!r} ({', '.join(c.hash for c in at)}); give the feature hash", src)
                continue
            at = fitting[0]
        kind = next(k for k in ("radio", "checklist", "text", "numeric") if k in a)
        if kind != at.type:
            yield ctx.problem("answer.type_mismatch", f"attribute {at.name!r} is {at.type}, the answer is {kind}", src)
            continue
        value: list[Option] | str | float
        if kind in ("radio", "checklist"):
            refs = [a["radio"]] if kind == "radio" else a["checklist"]
            opts = _options(at, refs)
            if len(opts) != len(refs):
                known = ", ".join(o.label for o in at.options.values())
                for r in refs:
                    if at.option(r) is None:
                        yield ctx.problem("option.unknown", f"option {r.get('name') or r.get('hash')!r} is not an "
                                          f"option of {at.name!r} ({known})", src)
                continue
            value = opts
        else:
            value = a[kind]
            if kind == "numeric" and type(value) is int and not -(2 ** 63) <= value < 2 ** 63:
                yield ctx.problem("answer.type_mismatch", f"numeric answer {value} does not fit in 64 bits", src)
                continue
            if kind == "numeric" and not finite((value,)):
                yield ctx.problem("answer.type_mismatch", f"numeric answer {value!r} is not finite", src)
                continue
        ranges: list[tuple[int, int]] | None = None
        if at.dynamic and object_frames is not None:
            said: list[Problem] = []
            ranges = _dynamic_ranges(ctx, a, at, object_frames, src, said)
            yield from said
            if ranges is None:
                continue
        elif a.get("frames") is not None:
            yield ctx.problem("answer.frames_on_static", f"attribute {at.name!r} is not dynamic but frames are "
                              "given", src)
            continue
        if at.parent is not None and at.parent.hash not in selected:
            yield ctx.problem("answer.parent_not_selected", f"{at.name!r} is nested under option "
                              f"{at.parent.label!r} of {at.parent.attribute.name!r}, which is not selected", src)
            continue
        ra = RAnswer(at, value, ranges)
        prev = answered.setdefault(at.hash, [])
        if any(_conflict(p, ra) for p in prev):
            yield ctx.problem("answer.duplicate", f"attribute {at.name!r} is answered more than once"
                              + (" on overlapping frames" if ra.ranges is not None else ""), src)
            continue
        prev.append(ra)
        out.append(ra)


def _refs(a: dict[str, Any]) -> list[dict[str, str]]:
    if "radio" in a:
        return [a["radio"]]
    return list(a.get("checklist", []))


def _options(attr: Attribute, refs: list[dict[str, str]]) -> list[Option]:
    return [opt for r in refs if (opt := attr.option(r)) is not None]


def _conflict(a: RAnswer, b: RAnswer) -> bool:
    """Two answers to one attribute clash unless they are dynamic on disjoint frames -- or, for a dynamic
    checklist (which Encord writes as one entry per ticked option and its frames), tick different options."""
    if a.ranges is None or b.ranges is None:
        return True
    if not overlaps(a.ranges, b.ranges):
        return False
    if isinstance(a.value, list) and isinstance(b.value, list) and a.attribute.type == "checklist":
        return bool({o.hash for o in a.value} & {o.hash for o in b.value})
    return True


def _dynamic_ranges(ctx: UnitContext, a: dict[str, Any], at: Attribute, object_frames: set[int], src: Any,
                    said: list[Problem]) -> list[tuple[int, int]] | None:
    """The frame ranges of a dynamic answer (default: the object's frames), or None when they are wrong; what
    is wrong goes to ``said``."""
    if ctx.kind != "video":
        # Encord itself writes these (range [[0, 0]] on an image): kept, but said
        said.append(ctx.problem("answer.dynamic_on_image", f"attribute {at.name!r} is dynamic (per frame) on a "
                                f"still {'image' if ctx.kind == 'image' else 'image group'}; kept as a per-frame "
                                "answer", src, severity="warning"))
    frames = a.get("frames")
    if frames is None:
        return to_ranges(object_frames)
    ranges = [(int(r[0]), int(r[1])) for r in frames]
    for f0, f1 in ranges:
        if f0 > f1:
            said.append(ctx.problem("answer.frames_without_object", f"frame range [{f0}, {f1}] is empty", src))
            return None
        missing = [f for f in range(f0, f1 + 1) if f not in object_frames]
        if missing:
            said.append(ctx.problem("answer.frames_without_object", f"dynamic answer to {at.name!r} on frames "
                                    f"without the object ({_few(missing)})", src))
            return None
    return ranges


def _few(values: list[int]) -> str:
    return ", ".join(map(str, values[:5])) + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def classification_problems(ctx: UnitContext, ontology: Ontology, index: int, c: dict[str, Any],
                            placed: dict[str, list[list[tuple[int, int]]]],
                            out: list[RClassification]) -> Iterator[Problem]:
    """Check one classification instance; when it has no error, add it to ``out`` (``placed``: the frame
    ranges of each classification so far, for overlaps)."""
    src = c.get("source")
    ont, found = resolve_feature(ctx, c["class"], ontology.classification, ontology.classifications_by_name,
                                 "classification", "classification.unknown", src)
    yield from found
    if not isinstance(ont, OntologyClassification):
        return
    ranges = []
    ok = not any(p.severity == "error" for p in found)
    for r in c["frames"]:
        f0, f1 = int(r[0]), int(r[1])
        if f0 > f1 or not (ctx.frame_ok(f0) and ctx.frame_ok(f1)):
            yield ctx.problem("frame.out_of_range", f"classification frame range [{f0}, {f1}] is outside the data "
                              f"unit ({ctx.frames_text()})", src, "frames")
            ok = False
        ranges.append((f0, f1))
    conf = c.get("confidence", 1.0)
    if not (finite((conf,)) and 0.0 <= conf <= 1.0):
        yield ctx.problem("confidence.out_of_range", f"confidence {conf!r} is not in [0, 1]", src, "confidence")
        ok = False
    answers: list[RAnswer] = []
    for p in answer_problems(ctx, ont, [(a, src) for a in c["answers"]], None, answers):
        ok = ok and p.severity != "error"
        yield p
    if ont.root is None or not any(a.attribute is ont.root for a in answers):
        yield ctx.problem("classification.no_answer", f"classification {ont.name!r} has no answer to {ont.name!r}",
                          src)
        ok = False
    for other in placed.get(ont.hash, []):
        if overlaps(other, ranges):
            yield ctx.problem("classification.overlap", f"classification {ont.name!r} is already on frames {other} "
                              "of this data unit", src)
            ok = False
            break
    placed.setdefault(ont.hash, []).append(ranges)
    if ok:
        out.append(RClassification(c["id"], ont, answers, ranges, conf))
