"""Top-level classifications, scored per frame.

On every frame of a paired data unit, each ontology classification has at most one answer per side (the
instance whose ranges hold the frame). Radio: per option, a true positive when both chose it and (under the
match mode) the answers nested under it agree; otherwise the prediction's option is a false positive and the
truth's a false negative. Checklist: the same per ticked option. Text: the string, compared whole (the
"option" is ``text``). Accuracy: the share of frames, among those where either side answers, on which the
whole answers agree under the mode. A data unit or frame on one side only counts for that side.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from predport.core.evaluate.instances import Classified, differing
from predport.core.ontology import Attribute, OntologyClassification


def score(truth: list[Classified], pred: list[Classified], mode: str, confidence: float) -> dict[str, Any]:
    """{classification name: {option label: {tp, fp, fn}, "accuracy": share or None}}."""
    sides: dict[tuple[int, int, str], list[Classified | None]] = defaultdict(lambda: [None, None])
    for c in truth:
        sides[(c.pair, c.frame, c.cls.hash)][0] = c
    for c in pred:
        if c.confidence >= confidence:
            sides[(c.pair, c.frame, c.cls.hash)][1] = c
    out: dict[str, Any] = {}
    classes: dict[str, OntologyClassification] = {}
    counts: dict[str, dict[str, dict[str, int]]] = {}
    agree: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (_, _, h), (t, p) in sides.items():
        cls = (t or p).cls  # type: ignore[union-attr]
        classes[h] = cls
        per = counts.setdefault(h, {})
        root = cls.root
        if root is None:
            continue
        tv = t.attrs.get(root.hash) if t else None
        pv = p.attrs.get(root.hash) if p else None
        for label, kind in _options(root, tv, pv, t, p, mode):
            per.setdefault(label, {"tp": 0, "fp": 0, "fn": 0})[kind] += 1
        agree[h][1] += 1
        if t is not None and p is not None and tv == pv and not differing(p.attrs, t.attrs, _nested(mode)):
            agree[h][0] += 1
    for h, cls in classes.items():
        name = cls.name
        labels = {o.hash: o.label for o in cls.root.options.values()} if cls.root is not None else {}
        result: dict[str, Any] = {labels.get(k, k): v for k, v in sorted(counts.get(h, {}).items())}
        correct, seen = agree[h]
        result["accuracy"] = correct / seen if seen else None
        out[name] = result
    return out


def _nested(mode: str) -> str:
    return "strict" if mode == "strict" else ("partial" if mode == "partial" else "geometry")


def _options(root: Attribute, tv: Any, pv: Any, t: Classified | None, p: Classified | None,
             mode: str) -> list[tuple[str, str]]:
    """(option hash or "text", tp | fp | fn) for one frame's answers to the root attribute."""
    if root.type == "text" or root.type == "numeric":
        if tv is not None and pv is not None and tv == pv:
            return [("text", "tp")]
        return ([("text", "fp")] if pv is not None else []) + ([("text", "fn")] if tv is not None else [])
    tset = set(tv) if isinstance(tv, frozenset) else ({tv} if tv is not None else set())
    pset = set(pv) if isinstance(pv, frozenset) else ({pv} if pv is not None else set())
    out = []
    for o in sorted(tset | pset):
        if o in tset and o in pset:
            same = t is not None and p is not None and not differing(_under(p.attrs, root, o), _under(t.attrs, root, o),
                                                                     _nested(mode))
            out += [(o, "tp")] if same else [(o, "fp"), (o, "fn")]
        elif o in pset:
            out.append((o, "fp"))
        else:
            out.append((o, "fn"))
    return out


def _under(attrs: dict[str, Any], root: Attribute, option: str) -> dict[str, Any]:
    """The answers nested (at any depth) under one option of the root attribute."""
    opt = root.options.get(option)
    if opt is None:
        return {}
    keys: set[str] = set()
    stack = list(opt.nested)
    while stack:
        a = stack.pop()
        keys.add(a.hash)
        for o in a.options.values():
            stack.extend(o.nested)
    return {k: v for k, v in attrs.items() if k in keys}
