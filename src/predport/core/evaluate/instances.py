"""What evaluation compares: data units paired across the two sides (by data hash, else by title), every
object instance on every frame, and every classification on every frame, each with the attribute answers it
has on that frame."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from predport.core.ontology import OntologyClassification, OntologyObject
from predport.core.validate import RAnswer, ResolvedUnit

#: shape -> the family whose members are compared with each other (and the COCO iouType, where there is one)
FAMILY = {"bounding_box": "bbox", "rotatable_bounding_box": "rbox", "polygon": "segm", "bitmask": "segm",
          "skeleton": "keypoints", "point": "point", "polyline": "line"}


@dataclass(slots=True, eq=False)
class Instance:
    """One object instance on one frame."""

    index: int  # in its side's list: its annotation id in the COCO datasets is index + 1
    pair: int  # the paired data unit
    frame: int
    cls: OntologyObject
    ident: str  # the instance id (shared by the frames of a track)
    geometry: dict[str, Any]  # the internal schema's geometry (normalised coordinates)
    confidence: float
    attrs: dict[str, Any]  # attribute feature hash -> value on this frame
    size: tuple[int, int]  # the frame's pixel size
    coco: dict[str, Any] | None = None  # COCO ground truth's area / iscrowd / bbox, when carried
    image: int = 0  # its image in the COCO datasets (set by the evaluation)


@dataclass(slots=True, eq=False)
class Classified:
    """One classification instance on one frame: its root answer and the nested ones, flattened."""

    pair: int
    frame: int
    cls: OntologyClassification
    ident: str
    confidence: float
    attrs: dict[str, Any]


@dataclass
class Pair:
    """Two data units, one per side (either may be missing), and the frames seen on either."""

    truth: ResolvedUnit | None
    pred: ResolvedUnit | None

    @property
    def title(self) -> str:
        unit = (self.truth or self.pred).unit  # type: ignore[union-attr]
        return str(unit["title"])


@dataclass
class Sides:
    pairs: list[Pair] = field(default_factory=list)
    truth: list[Instance] = field(default_factory=list)
    pred: list[Instance] = field(default_factory=list)
    truth_classifications: list[Classified] = field(default_factory=list)
    pred_classifications: list[Classified] = field(default_factory=list)


def _hash(ru: ResolvedUnit) -> str | None:
    h = ru.unit.get("data_hash")
    return h if isinstance(h, str) and h.strip("0-") else None  # (all zeros: written without a known hash)


def pair_units(truth: list[ResolvedUnit], pred: list[ResolvedUnit]) -> list[Pair]:
    """Pairs by data hash where both sides know it, else by title; a unit of one side only is a pair too."""
    by_hash = {h: ru for ru in truth if (h := _hash(ru))}
    by_title = {ru.unit["title"]: ru for ru in truth}
    taken: set[int] = set()
    pairs = []
    for p in pred:
        h = _hash(p)
        t = by_hash.get(h) if h else None
        if t is None:
            t = by_title.get(p.unit["title"])
        if t is not None and id(t) in taken:
            t = None
        if t is not None:
            taken.add(id(t))
        pairs.append(Pair(t, p))
    pairs.extend(Pair(t, None) for t in truth if id(t) not in taken)
    return pairs


def build(truth: list[ResolvedUnit], pred: list[ResolvedUnit]) -> Sides:
    sides = Sides(pair_units(truth, pred))
    for k, pair in enumerate(sides.pairs):
        if pair.truth is not None:
            _instances(pair.truth, k, sides.truth)
            _classifications(pair.truth, k, sides.truth_classifications)
        if pair.pred is not None:
            _instances(pair.pred, k, sides.pred)
            _classifications(pair.pred, k, sides.pred_classifications)
    return sides


def _size(ru: ResolvedUnit, frame: int) -> tuple[int, int]:
    sizes = ru.sizes
    w, h = sizes[frame] if ru.unit["kind"] == "image_group" and 0 <= frame < len(sizes) else sizes[0]
    return int(w or 0), int(h or 0)


def _instances(ru: ResolvedUnit, pair: int, out: list[Instance]) -> None:
    for o in ru.objects:
        answers = [*o.static, *o.dynamic]
        static = answers_on(o.static, 0) if not o.dynamic else None  # (the same on every frame)
        for fr in o.frames:
            f = fr["frame"]
            out.append(Instance(len(out), pair, f, o.ontology, o.id, fr["geometry"], fr.get("confidence", 1.0),
                                static if static is not None else answers_on(answers, f), _size(ru, f),
                                fr.get("coco")))
    rb = ru.boxes
    if rb is None:
        return
    t = rb.table
    rows: Iterable[int] = range(len(t["class"])) if rb.rows is None else rb.rows
    conf, frames, area, crowd = t.get("confidence"), t.get("frame"), t.get("area"), t.get("iscrowd")
    xs, ys, ws, hs, cls, ids = t["x"], t["y"], t["w"], t["h"], t["class"], t["id"]
    classes = rb.classes
    size0 = _size(ru, 0)
    none: dict[str, Any] = {}  # (shared, never changed: rows of a table have no answers)
    new, n = Instance, len(out)
    append = out.append
    for k in rows:  # (a plain loop: this runs for every row of every table)
        f = frames[k] if frames is not None else 0
        coco = None
        if area is not None or crowd is not None:
            coco = {"area": area[k]} if area is not None else {}
            if crowd is not None:
                coco["iscrowd"] = crowd[k]
        append(new(n, pair, f, classes[cls[k]], ids[k],  # type: ignore[arg-type]
                   {"shape": "bounding_box", "x": xs[k], "y": ys[k], "w": ws[k], "h": hs[k]},
                   conf[k] if conf is not None else 1.0, none, size0 if f == 0 else _size(ru, f), coco))
        n += 1


def _classifications(ru: ResolvedUnit, pair: int, out: list[Classified]) -> None:
    for c in ru.classifications:
        attrs = answers_on(c.answers, 0)
        for f0, f1 in c.ranges:
            for f in range(f0, f1 + 1):
                out.append(Classified(pair, f, c.ontology, c.id, c.confidence, attrs))


def answers_on(answers: list[RAnswer], frame: int) -> dict[str, Any]:
    """The answers in force on ``frame`` (static ones, and dynamic ones whose ranges hold it), by attribute
    feature hash: radio -> the option's hash, checklist -> the set of option hashes, text -> the string,
    numeric -> the number. A nested answer counts only while the option it is nested under is chosen."""
    out: dict[str, Any] = {}
    chosen: set[str] = set()
    for a in sorted((a for a in answers if a.ranges is None or any(f0 <= frame <= f1 for f0, f1 in a.ranges)),
                    key=lambda a: _depth(a)):  # (shallowest first: a parent's option is known before its child)
        parent = a.attribute.parent
        if parent is not None and parent.hash not in chosen:
            continue
        key = a.attribute.hash
        v = a.value
        if isinstance(v, list):
            hashes = frozenset(o.hash for o in v)
            chosen |= hashes
            # radio: the option; checklist: the set (a dynamic one is one entry per ticked option: the union)
            out[key] = v[0].hash if a.attribute.type == "radio" else hashes | out.get(key, frozenset())
        else:
            out[key] = v
    return out


def _depth(a: RAnswer) -> int:
    n, option = 0, a.attribute.parent
    while option is not None:
        n += 1
        option = option.attribute.parent
    return n


def differing(pred: dict[str, Any], truth: dict[str, Any], mode: str) -> list[str]:
    """The attribute keys on which two answer sets disagree under ``mode``: strict over the union of their
    keys, partial over the prediction's keys only, geometry over none."""
    if mode == "geometry":
        return []
    keys = pred.keys() | truth.keys() if mode == "strict" else pred.keys()
    missing = object()
    return sorted(k for k in keys if pred.get(k, missing) != truth.get(k, missing))
