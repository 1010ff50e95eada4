"""An input's attribute, given by name and value (a CVAT attribute, a VOC flag, a COCO export's
classification), as an answer to the ontology attribute of that name.

Names match exactly, else case-insensitively when that is unique. Values: a radio takes the option whose label
(or value) is the value -- booleans and "true" / "false" / "1" / "0" also match options labelled yes / no,
true / false, 1 / 0 --, a checklist takes a list of labels or a comma / newline separated string, a text
attribute the string, a numeric one the number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from predport.core.ontology import Attribute, Feature, Ontology, OntologyClassification, Option

_YES = {"true", "yes", "1", "y", "on"}
_NO = {"false", "no", "0", "n", "off"}


def attribute(feature: Feature, name: str) -> Attribute | None:
    found = feature.attributes_by_name.get(name)
    if found and len(found) == 1:
        return found[0]
    folded = [a for a in feature.attributes.values() if a.name.lower() == name.strip().lower()]
    return folded[0] if len(folded) == 1 else None


def answer(feature: Feature, name: str, value: Any) -> dict[str, Any] | str:
    """The internal answer of ``feature``'s attribute ``name`` to ``value``, or why there is none."""
    attr = attribute(feature, name)
    if attr is None:
        return f"{feature.name!r} has no attribute {name!r}"
    ref = {"hash": attr.hash}
    if attr.type == "text":
        return {"attribute": ref, "text": str(value)}
    if attr.type == "numeric":
        try:
            return {"attribute": ref, "numeric": float(value)}
        except (TypeError, ValueError):
            return f"{value!r} is not a number, which {attr.name!r} needs"
    if attr.type == "radio":
        opt = option(attr, value)
        return {"attribute": ref, "radio": {"hash": opt.hash}} if opt else \
            f"{value!r} is not an option of {attr.name!r} ({', '.join(o.label for o in attr.options.values())})"
    values = value if isinstance(value, list) else [v for v in str(value).replace("\n", ",").split(",") if v.strip()]
    opts = [option(attr, v) for v in values]
    if any(o is None for o in opts):
        return f"{value!r} are not options of {attr.name!r} ({', '.join(o.label for o in attr.options.values())})"
    return {"attribute": ref, "checklist": [{"hash": o.hash} for o in opts if o is not None]}


def answer_all(feature: Feature, given: Iterable[tuple[str, Any]], lost: Counter[str], prefix: str = "") -> list[
        dict[str, Any]]:
    """The answers of ``feature``'s attributes to (name, value) pairs; each pair that answers none is counted in
    ``lost`` under its name (after ``prefix``)."""
    out = []
    for name, value in given:
        a = answer(feature, name, value)
        if isinstance(a, dict):
            out.append(a)
        else:
            lost[prefix + name] += 1
    return out


def option(attr: Attribute, value: Any) -> Option | None:
    text = str(value).strip() if not isinstance(value, bool) else ("true" if value else "false")
    for o in attr.options.values():
        if text in (o.label, o.value):
            return o
    folded = [o for o in attr.options.values() if text.lower() in (o.label.lower(), o.value.lower())]
    if len(folded) == 1:
        return folded[0]
    for group in (_YES, _NO):  # a flag, against options named like one
        if text.lower() in group:
            same = [o for o in attr.options.values() if o.label.lower() in group]
            if len(same) == 1:
                return same[0]
    return None


def put(record: dict[str, Any], feature: Feature, name: str, value: Any, frame: int | None = None,
        lost: Counter[str] | None = None) -> bool:
    """Answer ``feature``'s attribute ``name`` with ``value`` on ``record`` (an object or classification record of
    the internal schema). A dynamic attribute on a ``frame`` is answered for that frame (the same value on the
    next frame extends the range); a static one once (a later, different value is counted in ``lost``, as is a
    value with no attribute to answer). True when the value was carried."""
    a = answer(feature, name, value)
    if not isinstance(a, dict):
        if lost is not None:
            lost[a] += 1
        return False
    given = record.setdefault("answers", [])
    attr = feature.attributes[a["attribute"]["hash"]]
    if attr.dynamic and frame is not None:
        for prev in reversed(given):  # (this attribute's latest range)
            if prev["attribute"] == a["attribute"]:
                same = {**prev, "frames": None} == {**a, "frames": None}
                if same and prev["frames"][-1][1] == frame - 1:
                    prev["frames"][-1][1] = frame
                    return True
                break
        given.append({**a, "frames": [[frame, frame]]})
        return True
    first = next((x for x in given if x["attribute"] == a["attribute"]), None)
    if first is None:
        given.append(a)
        return True
    if {**first, "frames": None} != {**a, "frames": None} and lost is not None:
        lost[f"{attr.name!r} changes along the track but is not dynamic: the first value is kept"] += 1
    return False


def tag(ontology: Ontology, label: str, attrs: Sequence[tuple[str, Any]] = (),
        lost: Counter[str] | None = None) -> tuple[OntologyClassification, list[dict[str, Any]]] | str:
    """A frame-level tag (a CVAT tag, a LabelMe image flag) as a classification and its answers, or why there is
    none. The classification named ``label``, answered by the tag's attributes (with none, "yes" or true); else
    the one classification with an option labelled ``label`` (a "Rainy" tag for a Weather classification)."""
    named = ontology.classifications_by_name.get(label, [])
    if len(named) == 1:
        cls = named[0]
        given = []
        for name, value in attrs:
            a = answer(cls, name, value)
            if isinstance(a, dict):
                given.append(a)
            elif lost is not None:
                lost[a] += 1
        if not any(a["attribute"]["hash"] == (cls.root.hash if cls.root else "") for a in given):
            a = answer(cls, cls.root.name if cls.root else label, True)
            if not isinstance(a, dict):
                return f"tag {label!r}: {a}"
            given.insert(0, a)
        return cls, given
    if len(named) > 1:
        return f"several classifications are named {label!r}"
    found = [(c, o) for c in ontology.classifications.values() if c.root and c.root.type in ("radio", "checklist")
             for o in [option(c.root, label)] if o is not None]
    if len(found) == 1:
        cls, opt = found[0]
        root = opt.attribute
        picked: dict[str, Any] = {"attribute": {"hash": root.hash}}
        if root.type == "radio":
            picked["radio"] = {"hash": opt.hash}
        else:
            picked["checklist"] = [{"hash": opt.hash}]
        return cls, [picked]
    return f"no classification is named {label!r} or has an option {label!r}" if not found else \
        f"several classifications have an option {label!r}"
