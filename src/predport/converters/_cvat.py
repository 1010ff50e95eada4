"""What the CVAT readers (``cvat_images``, ``cvat_video``) share: CVAT XML 1.1's meta (labels, task name, frame
size) and its shapes, attributes and tags, turned into the internal schema. Not a plugin of its own.

Shapes: ``box`` (``rotation``: degrees clockwise about the centre -> rotatable box), ``polygon``, ``polyline``,
``points`` (one point -> point; several -> a skeleton in the template's vertex order when the class is one,
else one point object each), ``mask`` (CVAT's RLE over the ``left, top, width, height`` box, row by row,
starting with background), ``ellipse`` (-> a 64-vertex polygon; said), ``skeleton`` (its vertices are child
``points`` named after template vertices; ``outside`` = invisible, ``occluded`` = occluded); ``cuboid`` is not
carried (said). ``<attribute name=..>`` answers the class's attribute of that name (per frame when it is dynamic;
``__undefined__`` is no answer); ``score``, where the class has no such attribute, is the confidence (datumaro
writes confidences so); ``occluded="1"`` answers an attribute ``occluded``. ``z_order`` and ``source``
are drawing order and provenance, not carried; ``group_id`` is said to be not carried.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import predport
from predport.core import answers, shapes, xmlio
from predport.core.ontology import OntologyObject
from predport.core.problems import Location

if TYPE_CHECKING:  # (XML's parser loads when a file is read, numpy when a mask appears: not at every start)
    from xml.etree.ElementTree import Element

SHAPES = ("box", "polygon", "polyline", "points", "mask", "ellipse", "skeleton", "cuboid")
UNDEFINED = "__undefined__"
#: the ontology shapes a CVAT shape can become, preferred first (to choose among objects of one name)
PREFERRED = {"box": ("bounding_box", "rotatable_bounding_box", "polygon"),
             "rotated box": ("rotatable_bounding_box", "polygon"), "polygon": ("polygon", "bounding_box"),
             "polyline": ("polyline",), "points": ("point", "skeleton"), "mask": ("bitmask", "polygon"),
             "ellipse": ("polygon",), "skeleton": ("skeleton",)}


@dataclass
class Meta:
    """From ``<meta>``: the task's (or project's) name, the video file, the frame size, the mode, and per label
    its type and parent (a skeleton's vertices are labels whose parent is the skeleton)."""

    name: str | None = None
    source: str | None = None
    size: tuple[int, int] | None = None
    mode: str | None = None
    labels: dict[str, dict[str, str]] = field(default_factory=dict)


def meta(el: Element) -> Meta:
    m = Meta()
    holder = el.find("task") if el.find("task") is not None else el.find("project")
    if holder is not None:
        m.name = (holder.findtext("name") or "").strip() or None
        m.mode = (holder.findtext("mode") or "").strip() or None
        size = holder.find("original_size")
        if size is not None:
            w, h = _int(size.findtext("width")), _int(size.findtext("height"))
            m.size = (w, h) if w and h else None
        for label in holder.iter("label"):
            name = label.findtext("name")
            if name is not None:
                m.labels[name] = {"type": (label.findtext("type") or "").strip(),
                                  "parent": (label.findtext("parent") or "").strip()}
    m.source = (el.findtext("source") or "").strip() or None
    return m


def sniff(path: Path) -> tuple[str | None, str]:
    """("images" / "video" / None, why) from the first elements of a CVAT XML file."""
    if not path.is_file() or path.suffix.lower() != ".xml":
        return None, "not an .xml file"
    try:
        head = predport.file_head(path).decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)
    if "<annotations" not in head:
        return None, "no <annotations> root (CVAT XML)"
    if "<version>" not in head and "<image " not in head and "<track " not in head:
        return None, "an <annotations> root without a <version>, images or tracks"
    if "<image " in head:
        return "images", "CVAT XML with <image> elements (for images)"
    if "<track " in head:
        return "video", "CVAT XML with <track> elements (for video)"
    if "<mode>interpolation</mode>" in head:
        return "video", "CVAT XML of an interpolation task (for video)"
    if "<mode>annotation</mode>" in head:
        return "images", "CVAT XML of an annotation task (for images)"
    return None, "CVAT XML without images or tracks"


def files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    if (path / "annotations.xml").is_file():
        return [path / "annotations.xml"]
    return [path / name for name, is_dir in predport.listing(path) if name.endswith(".xml") and not is_dir]


def stream(path: Path, ctx: predport.ReadContext) -> Iterator[tuple[str, Element]]:
    """The file's top-level elements (``meta`` first), reporting a file that is not well-formed XML."""
    try:
        for tag, el in xmlio.children(path):
            if tag == "" and el.tag != "annotations":
                ctx.report("source.invalid", f"the root is <{el.tag}>, not <annotations>", Location(str(path)))
                return
            if tag:
                yield tag, el
    except ValueError as e:
        ctx.report("source.unreadable", f"cannot read the XML: {e}", Location(str(path)))


class Builder:
    """Turns CVAT shapes of one file into internal geometry and answers, collecting what is not carried."""

    def __init__(self, ctx: predport.ReadContext, file: str, m: Meta, reader: str) -> None:
        self.ctx, self.file, self.meta = ctx, file, m
        self.bad, self.lost = f"{reader}.bad_shape", f"{reader}.not_carried"  # (the reader's own codes)
        self.not_carried: Counter[str] = Counter()
        self.converted: Counter[str] = Counter()
        self._targets: dict[tuple[str, str], Any] = {}

    def target(self, label: str, where: Location, el: Element | None = None) -> OntologyObject | None:
        """The class of ``label`` (for the shape element ``el``: where several ontology objects have the name,
        the one of the element's shape)."""
        kind = el.tag if el is not None else ""
        if kind == "box" and el is not None and float(el.get("rotation", 0) or 0):
            kind = "rotated box"
        found = self._targets.get((label, kind))
        if found is None:
            found = self._targets[(label, kind)] = self.ctx.resolve_class(label, shapes=PREFERRED.get(kind, ()))
        if not isinstance(found, OntologyObject):
            self.ctx.report(found[0], found[1], where, group=label)
            return None
        return found

    def geometry(self, el: Element, target: OntologyObject, w: int, h: int, where: Location,
                 label: str, children: Callable[[str], tuple[float, float, str] | None] | None = None) -> Any:
        """The element's geometry (normalised; fitted to the class's shape where that loses nothing, or
        measurably), a list of them (points as separate objects), or None after reporting why not."""
        kind = el.tag
        a = el.attrib
        try:
            if kind == "box":
                x0, y0, x1, y1 = (float(a[k]) for k in ("xtl", "ytl", "xbr", "ybr"))
                rotation = float(a.get("rotation", 0) or 0)
                if rotation:
                    g = shapes.rotated_box((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, rotation, w, h)
                else:
                    g = shapes.box(x0, y0, x1, y1, w, h)
            elif kind in ("polygon", "polyline", "points"):
                pts = _points(a.get("points", ""))
                if pts is None or not pts:
                    raise ValueError(f"points {a.get('points', '')[:40]!r}")
                flat = [v for p in pts for v in p]
                if kind == "polygon":
                    g = shapes.polygon([[flat]], w, h)
                elif kind == "polyline":
                    g = shapes.polyline(flat, w, h)
                elif len(pts) == 1 and target.shape != "skeleton":
                    g = shapes.point(*pts[0], w, h)
                elif target.shape == "skeleton" and len(target.vertices) == len(pts):
                    g = {"shape": "skeleton", "points": [{"name": n, "x": x / w, "y": y / h} for n, (x, y)
                                                         in zip(target.vertices, pts, strict=True)]}
                else:
                    self.converted[f"a points shape as {len(pts)} point objects"] += 1
                    return [shapes.point(x, y, w, h) for x, y in pts]
            elif kind == "mask":
                g = self._mask(a, w, h)
            elif kind == "ellipse":
                cx, cy, rx, ry = (float(a[k]) for k in ("cx", "cy", "rx", "ry"))
                self.converted["an ellipse as a 64-vertex polygon"] += 1
                g = _ellipse(cx, cy, rx, ry, float(a.get("rotation", 0) or 0), w, h)
            elif kind == "skeleton":
                g = self._skeleton(el, target, w, h, children)
            else:  # cuboid, and shapes CVAT may add
                self.ctx.report(self.lost, f"a {kind} has no Encord shape: not converted", where, "info",
                                group=label, entities=1)
                return None
        except (KeyError, ValueError, OverflowError) as e:
            self.ctx.report(self.bad, f"a {kind} without valid coordinates ({e})", where, group=label)
            return None
        g, note = shapes.fit(g, target.shape, w, h)
        if note:
            self.converted[note] += 1
        return g

    def _mask(self, a: dict[str, str], w: int, h: int) -> dict[str, Any]:
        left, top, mw, mh = (int(float(a[k])) for k in ("left", "top", "width", "height"))
        counts = [int(c) for c in a["rle"].replace(" ", "").split(",") if c]
        if sum(counts) != mw * mh or any(c < 0 for c in counts):
            raise ValueError(f"the RLE covers {sum(counts)} pixels, the mask's box {mw}x{mh}")
        if left < 0 or top < 0 or left + mw > w or top + mh > h:
            raise ValueError(f"the mask's box ({left}, {top}, {mw}x{mh}) reaches outside the {w}x{h} frame")
        import numpy as np

        runs = np.repeat(np.arange(len(counts)) % 2 == 1, counts).reshape(mh, mw)
        full = np.zeros((h, w), dtype=bool)
        full[top:top + mh, left:left + mw] = runs
        return shapes.bitmask(full)

    def _skeleton(self, el: Element, target: OntologyObject, w: int, h: int,
                  children: Callable[[str], tuple[float, float, str] | None] | None) -> dict[str, Any]:
        """Vertices from child ``points`` (images), or from ``children(vertex)`` (video: the nested tracks)."""
        given: dict[str, tuple[float, float, str]] = {}
        for p in el.findall("points"):
            pts = _points(p.get("points", ""))
            if pts and len(pts) == 1:
                given[p.get("label", "")] = (*pts[0], _visibility(p.attrib))
        if children is not None:
            for name in list(target.vertices) or sorted(self._vertex_labels(target.name)):
                found = children(name)
                if found is not None:
                    given[name] = found
        if not given:
            raise ValueError("no vertices")
        return {"shape": "skeleton", "points": [{"name": n, "x": x / w, "y": y / h, "visibility": v}
                                                for n, (x, y, v) in given.items()]}

    def _vertex_labels(self, skeleton: str) -> list[str]:
        return [n for n, spec in self.meta.labels.items() if spec["parent"] == skeleton]

    def answers(self, record: dict[str, Any], target: Any, el: Element, frame: int | None,
                geometry_frame: dict[str, Any] | None = None) -> None:
        """The element's attributes (and its occluded flag) as answers on ``record``; an attribute ``score``
        the class does not have is the confidence of ``geometry_frame`` (datumaro writes confidences so)."""
        for attr in el.findall("attribute"):
            name, value = attr.get("name", ""), (attr.text or "")
            if value == UNDEFINED:
                continue
            if name == "score" and geometry_frame is not None and answers.attribute(target, name) is None:
                try:
                    geometry_frame["confidence"] = float(value)
                    continue
                except ValueError:
                    pass
            answers.put(record, target, name, value, frame, self.not_carried)
        occluded = el.get("occluded")
        if occluded in ("0", "1") and answers.attribute(target, "occluded") is not None:
            answers.put(record, target, "occluded", occluded == "1", frame, self.not_carried)
        elif occluded == "1":
            self.not_carried["occluded"] += 1
        if el.get("group_id") not in (None, "", "0"):
            self.not_carried["group_id"] += 1

    def tag(self, el: Element, frame: int, where: Location, index: int) -> dict[str, Any] | None:
        label = el.get("label", "")
        attrs = [(a.get("name", ""), a.text or "") for a in el.findall("attribute") if (a.text or "") != UNDEFINED]
        found = answers.tag(self.ctx.ontology, label, attrs, self.not_carried)
        if isinstance(found, str):
            self.ctx.report("classification.unknown", found, where, group=label)
            return None
        cls, given = found
        return {"id": f"tag[{index}]", "class": {"hash": cls.hash}, "answers": given, "frames": [[frame, frame]],
                "source": {**_loc(where), "group": label}}

    def finish(self) -> None:
        where = Location(self.file)
        for note, k in sorted(self.converted.items()):
            self.ctx.report("geometry.converted", f"{k} x {note}", where, "info")
        if self.not_carried:
            self.ctx.report(self.lost, "not carried: " + ", ".join(
                f"{k} x{n}" for k, n in sorted(self.not_carried.items())), where, "info")


def _loc(where: Location) -> dict[str, Any]:
    return {k: v for k, v in where.as_dict().items() if k in ("file", "pointer", "record", "line")}


def _visibility(a: Any) -> str:
    if a.get("outside") == "1":
        return "invisible"
    return "occluded" if a.get("occluded") == "1" else "visible"


def _ellipse(cx: float, cy: float, rx: float, ry: float, rotation: float, w: int, h: int) -> dict[str, Any]:
    t = math.radians(rotation)
    ring = []
    for k in range(64):
        a = 2 * math.pi * k / 64
        x, y = rx * math.cos(a), ry * math.sin(a)
        ring += [cx + x * math.cos(t) - y * math.sin(t), cy + x * math.sin(t) + y * math.cos(t)]
    return shapes.polygon([[ring]], w, h)


def _points(text: str) -> list[tuple[float, float]] | None:
    out = []
    for pair in text.split(";"):
        if not pair.strip():
            continue
        xy = pair.split(",")
        if len(xy) != 2:
            return None
        x, y = float(xy[0]), float(xy[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        out.append((x, y))
    return out


def _int(text: str | None) -> int | None:
    try:
        v = int(float((text or "").strip()))
    except (ValueError, OverflowError):
        return None
    return v if 0 < v < 2**31 else None


def codes(what: str) -> dict[str, str]:
    """The problem codes of a CVAT reader named ``what``."""
    return {
        f"{what}.bad_shape": "a CVAT shape without valid coordinates (or a mask whose RLE does not fill its box)",
        f"{what}.not_carried": "CVAT fields with no place in the ontology or in a label row (attributes the class "
                               "lacks, occluded, group_id), and cuboids",
    }


def source(where: Location, label: str) -> dict[str, Any]:
    return {**_loc(where), "group": label}
