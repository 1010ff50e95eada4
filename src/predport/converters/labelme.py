"""Reader ``labelme``: LabelMe annotations, both kinds that go by that name.

**LabelMe JSON** (wkentaro/labelme, one ``.json`` per image): ``imageWidth`` / ``imageHeight`` give the size,
``imagePath``'s file name the title. Shapes: ``rectangle`` (two corners) -> box; ``polygon`` -> polygon (shapes
of one label sharing a ``group_id`` are one object with several parts); ``point`` -> point; ``line`` /
``linestrip`` -> polyline; ``circle`` (centre and a point on it) -> a 64-vertex polygon (Encord has no circle;
said); ``oriented_rectangle`` (four corners) -> rotatable box; ``mask`` (a base64 PNG over the two corners'
box) -> bitmask; ``points`` -> a skeleton in the template's vertex order, or one point object per point. Shape
``flags`` and a ``description`` answer the class's attributes of those names; image ``flags`` answer the
classifications of their names. A ``score`` (AnyLabeling writes one) is the confidence.

**LabelMe XML** (MIT CSAIL, ``Annotations/<folder>/*.xml``): size from ``imagesize/nrows, ncols`` (wherever it
is in the file), title ``<filename>``. ``<polygon>`` -> polygon, or a box when ``<type>bounding_box</type>``
and its four points are one; ``<segm>`` -> bitmask from ``Masks/<folder>/<mask>`` (pixels with alpha, or
value, above 0). ``<deleted>1</deleted>`` objects are not converted (said). ``<occluded>`` and the free-text
``<attributes>`` (``a=b, c``) answer attributes of those names; part links (``hasparts`` / ``ispartof``) are not
carried (said).
"""

from __future__ import annotations

import base64
import io
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import predport
from predport.core import answers, shapes, xmlio
from predport.core import images as imagemod
from predport.core.model import DataUnit
from predport.core.ontology import OBJECT_SHAPES, OntologyObject
from predport.core.problems import Location

if TYPE_CHECKING:  # (numpy loads when a mask appears, XML's parser when XML does: not at every start)
    from xml.etree.ElementTree import Element

    import numpy as np

#: the ontology shapes a LabelMe shape can become, preferred first (to choose among objects of one name)
PREFERRED = {"rectangle": ("bounding_box", "rotatable_bounding_box", "polygon"), "polygon": ("polygon", "bounding_box"),
             "point": ("point",), "line": ("polyline",), "linestrip": ("polyline",), "circle": ("polygon",),
             "oriented_rectangle": ("rotatable_bounding_box", "polygon"), "mask": ("bitmask", "polygon"),
             "points": ("skeleton", "point")}
KINDS = ("rectangle", "polygon", "point", "line", "linestrip", "circle", "oriented_rectangle", "mask", "points")


class LabelMeReader(predport.BaseReader):
    name = "labelme"
    description = "LabelMe: wkentaro JSON (one .json per image) and MIT LabelMe XML (Annotations/, Masks/)"
    capabilities = predport.Capabilities(OBJECT_SHAPES, confidence=True, attributes=True, classifications=True)
    codes: ClassVar[Mapping[str, str]] = {
        "labelme.bad_shape": "a shape whose points do not make its shape_type (or of an unknown shape_type)",
        "labelme.not_carried": "LabelMe fields with no place in the ontology or in a label row (flags, "
                               "descriptions, attributes, part links), and deleted objects",
    }

    def detect(self, path: Path) -> predport.Detection:
        files = _files(path, limit=5)
        if not files:
            return predport.Detection(0, "no LabelMe .json or .xml files")
        kinds = {_kind(f) for f in files}
        if kinds == {None}:
            return predport.Detection(0, "neither LabelMe JSON (shapes, imagePath) nor LabelMe XML (polygon / segm "
                                      "objects)")
        if None in kinds:
            return predport.Detection(0.3, "some files are LabelMe")
        return predport.Detection(0.9, "LabelMe " + " and ".join(sorted(k for k in kinds if k)))

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        for f in _files(path):
            reader = _Json(f, ctx) if f.suffix == ".json" else _Xml(f, ctx)
            unit = reader.unit()
            if unit is not None:
                yield unit


def _labelme_name(name: str) -> bool:
    return name.endswith((".json", ".xml")) and name not in (".json", ".xml")  # (Path.suffix: ".json" has none)


def _files(path: Path, limit: int | None = None) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix in (".json", ".xml") else []
    if not path.is_dir():
        return []
    base = path / "Annotations" if (path / "Annotations").is_dir() else path
    return predport.files_under(base, _labelme_name, limit or None)


def _kind(f: Path) -> str | None:
    try:
        head = predport.file_head(f, 4096).decode("utf-8", "replace")
    except OSError:
        return None
    if f.suffix == ".json":
        return "JSON" if '"shapes"' in head and ('"imagePath"' in head or '"shape_type"' in head) else None
    # MIT XML: objects drawn as <polygon><pt> or <segm>, never VOC's <bndbox>
    if "<annotation" in head and ("<pt>" in head or "<segm>" in head or "<imagesize>" in head) \
            and "<bndbox>" not in head:
        return "XML"
    return None


class _Unit:
    """What both kinds share: the unit being built, classes, attribute answers, notes."""

    def __init__(self, f: Path, ctx: predport.ReadContext) -> None:
        self.f, self.ctx, self.file = f, ctx, str(f)
        self.not_carried: Counter[str] = Counter()
        self.converted: Counter[str] = Counter()
        self.du: dict[str, Any] = {}

    def start(self, title: str, width: int | None, height: int | None) -> None:
        self.du = {"title": title, "kind": "image", "width": width, "height": height, "objects": [],
                     "classifications": [], "source": {"file": self.file}}

    def target(self, label: str, where: Location, kind: str = "") -> OntologyObject | None:
        """The class of ``label``; where several ontology objects have the name, the one of the shape a LabelMe
        shape of ``kind`` becomes."""
        found = self.ctx.resolve_class(label, shapes=PREFERRED.get(kind, ()))
        if not isinstance(found, OntologyObject):
            self.ctx.report(found[0], found[1], where, group=label)
            return None
        return found

    def add(self, key: str, target: OntologyObject, geometry: dict[str, Any], where: Location, label: str,
            answers_: list[dict[str, Any]], confidence: float | None = None) -> None:
        w, h = self.du["width"], self.du["height"]
        geometry, note = shapes.fit(geometry, target.shape, w, h)
        if note:
            self.converted[note] += 1
        frame: dict[str, Any] = {"frame": 0, "geometry": geometry, "source": {**_where(where), "group": label}}
        if confidence is not None:
            frame["confidence"] = confidence
        record: dict[str, Any] = {"id": key, "class": {"hash": target.hash}, "frames": [frame]}
        if answers_:
            record["answers"] = answers_
        self.du["objects"].append(record)

    def answer(self, target: OntologyObject, name: str, value: Any, what: str) -> list[dict[str, Any]]:
        a = answers.answer(target, name, value)
        if isinstance(a, dict):
            return [a]
        self.not_carried[what] += 1
        return []

    def sized(self, where: Location, label: str) -> bool:
        if self.du["width"] and self.du["height"]:
            return True
        self.ctx.report("frame.size_unknown", "the image size is unknown: coordinates cannot be normalised", where,
                        group=label)
        return False

    def finish(self) -> DataUnit:
        where = Location(self.file)
        for note, k in sorted(self.converted.items()):
            self.ctx.report("geometry.converted", f"{k} x {note}", where, "info")
        if self.not_carried:
            self.ctx.report("labelme.not_carried", "not carried: " + ", ".join(
                f"{k} x{n}" for k, n in sorted(self.not_carried.items())), where, "info")
        return self.du  # type: ignore[return-value]


def _where(loc: Location) -> dict[str, Any]:
    return {k: v for k, v in loc.as_dict().items() if k in ("file", "pointer", "record", "line")}


class _Json(_Unit):
    def unit(self) -> DataUnit | None:
        ok, doc = self.ctx.load_json(self.f)
        if not ok:
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
            self.ctx.report("source.invalid", "not a LabelMe file: no list of shapes", Location(self.file))
            return None
        path = doc.get("imagePath")
        title = Path(str(path).replace("\\", "/")).name if isinstance(path, str) and path else self.f.stem
        if not self.ctx.mine(title):
            return None
        width, height = _dimension(doc.get("imageWidth")), _dimension(doc.get("imageHeight"))
        if width is None or height is None:
            found = imagemod.size(self.f.parent / str(path)) if isinstance(path, str) and path else None
            width, height = found if found else (None, None)
        self.start(title, width, height)
        groups: dict[tuple[str, int], dict[str, Any]] = {}
        for k, shape in enumerate(doc["shapes"]):
            self.shape(shape, k, groups)
        self.flags(doc.get("flags"))
        return self.finish()

    def shape(self, shape: Any, k: int, groups: dict[tuple[str, int], dict[str, Any]]) -> None:
        where = Location(self.file, f"/shapes/{k}")
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            self.ctx.report("source.invalid", "a shape needs a label and points", where)
            return
        label = shape["label"]
        kind = shape.get("shape_type") or "polygon"  # (old files have none: polygons)
        pts = _points(shape.get("points"))
        if kind not in KINDS or pts is None:
            self.ctx.report("labelme.bad_shape", f"shape_type {kind!r} with points {str(shape.get('points'))[:60]}"
                            if kind in KINDS else f"unknown shape_type {kind!r}", where, group=label)
            return
        target = self.target(label, where, kind)
        if target is None or not self.sized(where, label):
            return
        geometry = self.geometry(kind, pts, shape, target, where, label)
        if geometry is None:
            return
        given = []
        flags = shape.get("flags")
        for name, value in (flags.items() if isinstance(flags, dict) else ()):
            given += self.answer(target, name, value, f"shape flag {name!r}")
        description = shape.get("description")
        if isinstance(description, str) and description.strip():
            given += self.answer(target, "description", description, "description")
        score = shape.get("score")
        confidence = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None
        group_id = shape.get("group_id")
        if isinstance(geometry, list):  # (points, one object each)
            for j, g in enumerate(geometry):
                self.add(f"shape[{k}].{j}", target, g, where, label, given, confidence)
            self.converted[f"a points shape as {len(geometry)} point objects"] += 1
            return
        if geometry["shape"] == "polygon" and isinstance(group_id, int) and not isinstance(group_id, bool):
            same = groups.get((label, group_id))
            if same is not None:  # another part of the same instance
                same["frames"][0]["geometry"]["polygons"] += geometry["polygons"]
                return
            self.add(f"group[{label}/{group_id}]", target, geometry, where, label, given, confidence)
            groups[(label, group_id)] = self.du["objects"][-1]
            return
        self.add(f"shape[{k}]", target, geometry, where, label, given, confidence)

    def geometry(self, kind: str, pts: list[tuple[float, float]], shape: dict[str, Any], target: OntologyObject,
                 where: Location, label: str) -> Any:
        w, h = self.du["width"], self.du["height"]
        need = {"rectangle": 2, "circle": 2, "line": 2, "point": 1, "oriented_rectangle": 4, "mask": 2}
        if (kind in need and len(pts) != need[kind]) or (kind in ("polygon", "linestrip", "points") and not pts):
            self.ctx.report("labelme.bad_shape", f"a {kind} with {len(pts)} point(s)", where, group=label)
            return None
        flat = [v for p in pts for v in p]
        if kind == "rectangle":
            return shapes.box(*pts[0], *pts[1], w, h)
        if kind == "polygon":
            return shapes.polygon([[flat]], w, h)
        if kind == "point":
            return shapes.point(*pts[0], w, h)
        if kind in ("line", "linestrip"):
            return shapes.polyline(flat, w, h)
        if kind == "circle":
            (cx, cy), (px, py) = pts
            self.converted["a circle as a 64-vertex polygon"] += 1
            return shapes.circle(cx, cy, math.hypot(px - cx, py - cy), w, h)
        if kind == "oriented_rectangle":
            found = shapes.quad(pts, w, h)
            if isinstance(found, str):
                self.ctx.report("labelme.bad_shape", found, where, group=label)
                return None
            return found
        if kind == "mask":
            return self.mask(pts, shape.get("mask"), where, label)
        # points: a skeleton in template order, else one point each
        if target.shape == "skeleton" and len(target.vertices) == len(pts):
            return {"shape": "skeleton", "points": [{"name": n, "x": x / w, "y": y / h}
                                                    for n, (x, y) in zip(target.vertices, pts, strict=True)]}
        return [shapes.point(x, y, w, h) for x, y in pts]

    def mask(self, pts: list[tuple[float, float]], data: Any, where: Location, label: str) -> dict[str, Any] | None:
        w, h = self.du["width"], self.du["height"]
        try:
            from PIL import Image

            crop = _binary(Image.open(io.BytesIO(base64.b64decode(str(data), validate=True))))
        except Exception as e:  # (Pillow and base64 raise many kinds for bad data)
            self.ctx.report("labelme.bad_shape", f"the mask is not a base64 PNG: {type(e).__name__}", where,
                            group=label)
            return None
        x0, y0 = int(pts[0][0]), int(pts[0][1])
        import numpy as np

        full = np.zeros((h, w), dtype=bool)
        ch, cw = crop.shape
        if x0 < 0 or y0 < 0 or x0 + cw > w or y0 + ch > h:
            self.ctx.report("geometry.out_of_frame", f"the {cw}x{ch} mask at ({x0}, {y0}) reaches outside the "
                            f"{w}x{h} image", where, group=label)
            return None
        full[y0:y0 + ch, x0:x0 + cw] = crop
        return shapes.bitmask(full)

    def flags(self, flags: Any) -> None:
        """Image flags that are set, as tags (see :func:`predport.core.answers.tag`)."""
        if not isinstance(flags, dict):
            return
        for name, value in flags.items():
            if value is not True:
                continue
            found = answers.tag(self.ctx.ontology, name, (), self.not_carried)
            if isinstance(found, str):
                self.not_carried[f"image flag {name!r}"] += 1
                continue
            cls, given = found
            self.du["classifications"].append({
                "id": f"flag[{name}]", "class": {"hash": cls.hash}, "answers": given, "frames": [[0, 0]],
                "source": {"file": self.file, "pointer": f"/flags/{_escape(name)}", "group": name}})


class _Xml(_Unit):
    def unit(self) -> DataUnit | None:
        root = xmlio.root(self.f)
        if root is None:
            self.ctx.report("source.unreadable", "cannot read the XML (not well-formed, or with entities)",
                            Location(self.file))
            return None
        if root.tag != "annotation":
            self.ctx.report("source.invalid", f"the root is <{root.tag}>, not <annotation>", Location(self.file))
            return None
        title = (root.findtext("filename") or "").strip() or self.f.stem
        if not self.ctx.mine(title):
            return None
        size = root.find("imagesize")
        width = _dimension(_number(size.findtext("ncols") if size is not None else None))
        height = _dimension(_number(size.findtext("nrows") if size is not None else None))
        self.start(title, width, height)
        folder = (root.findtext("folder") or "").strip()
        for k, obj in enumerate(root.findall("object")):
            self.object(obj, k, folder)
        return self.finish()

    def object(self, obj: Element, k: int, folder: str) -> None:
        where = Location(self.file, record=f"object[{k + 1}]")
        label = (obj.findtext("name") or "").strip()
        if (obj.findtext("deleted") or "0").strip() == "1":
            self.ctx.report("labelme.not_carried", f"object {label!r} is marked deleted: not converted", where, "info",
                            group=label, entities=1)
            return
        polygon, segm = obj.find("polygon"), obj.find("segm")
        kind = "mask" if segm is not None and polygon is None else (
            "rectangle" if (obj.findtext("type") or "").strip() == "bounding_box" else "polygon")
        target = self.target(label, where, kind)
        if target is None or not self.sized(where, label):
            return
        w, h = self.du["width"], self.du["height"]
        geometry: dict[str, Any] | None = None
        if polygon is not None:
            pts = [(_number(p.findtext("x")), _number(p.findtext("y"))) for p in polygon.findall("pt")]
            if len(pts) < 1 or any(x is None or y is None for x, y in pts):
                self.ctx.report("labelme.bad_shape", "a polygon needs points with numeric x and y", where, group=label)
                return
            flat = [float(v) for p in pts for v in p]  # type: ignore[arg-type]
            geometry = shapes.polygon([[flat]], w, h)
            if (obj.findtext("type") or "").strip() == "bounding_box":
                box = shapes._axis_box(geometry, w, h)
                geometry = box or geometry
        elif segm is not None:
            geometry = self.segm(segm, folder, where, label)
            if geometry is None:
                return
        else:
            self.ctx.report("labelme.bad_shape", "an object with neither <polygon> nor <segm>", where, group=label)
            return
        given = []
        occluded = (obj.findtext("occluded") or "").strip()
        if occluded == "yes" or (occluded and answers.attribute(target, "occluded")):  # ("no", no attribute: none lost)
            given += self.answer(target, "occluded", occluded, "occluded")
        for name, value in _attributes(obj.findtext("attributes") or ""):
            given += self.answer(target, name, value, f"attribute {name!r}")
        parts = obj.find("parts")
        if parts is not None and any((parts.findtext(t) or "").strip() for t in ("hasparts", "ispartof")):
            self.not_carried["part links"] += 1
        self.add(f"object[{k + 1}]", target, geometry, where, label, given)

    def segm(self, segm: Element, folder: str, where: Location, label: str) -> dict[str, Any] | None:
        name = (segm.findtext("mask") or "").strip()
        places = []
        for parent in [self.f.parent, *self.f.parents]:
            if parent.name == "Annotations":
                places.append(parent.parent / "Masks" / folder / name)
                break
        places.append(self.f.parent / name)
        path = next((p for p in places if name and imagemod.is_file(p)), None)
        if path is None:
            self.ctx.report("labelme.bad_shape", f"mask {name!r} not found (Masks/{folder}/ or beside the file)",
                            where, group=label)
            return None
        try:
            from PIL import Image

            with Image.open(path) as im:
                mask = _binary(im)
        except Exception as e:  # (Pillow raises many kinds)
            self.ctx.report("labelme.bad_shape", f"cannot read mask {name!r}: {type(e).__name__}", where, group=label)
            return None
        if mask.shape != (self.du["height"], self.du["width"]):
            self.ctx.report("bitmask.size_mismatch", f"mask {name!r} is {mask.shape[1]}x{mask.shape[0]}, the image "
                            f"{self.du['width']}x{self.du['height']}", where, group=label)
            return None
        return shapes.bitmask(mask)


def _binary(im: Any) -> np.ndarray[Any, Any]:
    """A mask image's foreground: alpha above 0 where there is alpha, else any value above 0."""
    import numpy as np

    if im.mode in ("RGBA", "LA", "PA"):
        return np.asarray(im.getchannel("A")) > 0
    a = np.asarray(im.convert("L") if im.mode not in ("1", "L", "I", "I;16") else im)
    return a > 0


def _attributes(text: str) -> list[tuple[str, Any]]:
    """LabelMe XML's free-text attributes: ``a=b, c`` -> [(a, b), (c, True)]."""
    out: list[tuple[str, Any]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        out.append((name.strip(), value.strip() if eq else True))
    return out


def _points(value: Any) -> list[tuple[float, float]] | None:
    if not isinstance(value, list):
        return None
    out = []
    for p in value:
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                             and math.isfinite(v) for v in p)):
            return None
        out.append((float(p[0]), float(p[1])))
    return out


def _dimension(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return int(v) if v == int(v) and 0 < v < 2**31 else None


def _number(text: str | None) -> float | None:
    try:
        v = float((text or "").strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [LabelMeReader()]
