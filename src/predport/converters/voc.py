"""Reader ``voc``: Pascal VOC annotation files (``Annotations/*.xml``, or any folder of them, or one file).

Tags are read by name, never by position (writers order ``xmin xmax ymin ymax`` too); the data unit title is
``<filename>`` (not ``<path>``); the pixel size is ``<size>``, else the image's (``JPEGImages/`` or beside the
file). Coordinates: ``--pixel-origin 0`` (the default, what most writers today mean: xmin..xmax spans
xmax - xmin pixels) or ``1`` (the VOC devkit's own: 1-based and inclusive, xmax - xmin + 1 pixels). A
``<score>`` or ``<confidence>`` (or datumaro's ``<attributes>`` entry ``score``) is the object's confidence; other
``<attributes>`` entries answer attributes of their names. Images that ``ImageSets/Main`` lists without an
annotation file are images without predictions. ``<pose>``, ``<truncated>``, ``<difficult>``,
``<occluded>`` become answers when the class has an attribute of that name, and are listed as not carried
otherwise; ``<part>`` boxes become objects of their own class when the ontology has it; ``<actions>`` become the
checklist ``actions`` (the flags set to 1), or each flag the answer to an attribute of its name. XML is parsed
without resolving entities (defusedxml).
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import predport
from predport.core import answers, xmlio
from predport.core import images as imagemod
from predport.core.model import DataUnit
from predport.core.ontology import OntologyObject
from predport.core.problems import Location

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

#: the shapes a box can become, preferred first (to choose among ontology objects of one name)
BOXES = ("bounding_box", "rotatable_bounding_box", "polygon")

FLAGS = ("pose", "truncated", "difficult", "occluded")


class VocReader(predport.BaseReader):
    name = "voc"
    description = "Pascal VOC XML (Annotations/*.xml): boxes by tag name, --pixel-origin 0|1, flags as attributes"
    capabilities = predport.Capabilities(frozenset({"bounding_box"}), confidence=True, attributes=True)
    codes: ClassVar[Mapping[str, str]] = {
        "voc.not_carried": "VOC fields the ontology has no attribute for (flags, actions, parts of unknown classes)",
        "voc.bad_box": "a bndbox without four numeric coordinates",
    }

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--pixel-origin", type=int, choices=(0, 1), default=0,
                           help="0 (default): xmax - xmin pixels wide; 1: the devkit's 1-based inclusive boxes")

    def detect(self, path: Path) -> predport.Detection:
        files = _files(path, limit=3)
        if not files:
            return predport.Detection(0, "no .xml file")
        verdict = _looks_voc(files[0])
        if verdict is None:
            return predport.Detection(0, "the XML's root is not <annotation>")
        if verdict:
            return predport.Detection(0.9, "<annotation> with <object><bndbox> (Pascal VOC)")
        return predport.Detection(0, "<annotation> without bndbox objects (not Pascal VOC)")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        origin = int(ctx.options.get("pixel_origin") or 0)
        files = _files(path)
        for f in files:
            unit = _file(f, ctx, origin)
            if unit is not None:
                yield unit
        yield from _unannotated(path, {f.stem for f in files}, ctx)


def _looks_voc(f: Path) -> bool | None:
    """Whether an XML file is a VOC annotation -- an <annotation> root with an <object> that has a <bndbox>, or
    with no object but a <size> or <segmented> -- read as a stream up to the first element that decides it (a
    CVAT file of hundreds of MB is refused at its root); None when the root is not <annotation> or the XML
    breaks before anything decides."""
    objects = sized = False
    try:
        with contextlib.closing(xmlio.children(f)) as elements:
            for tag, el in elements:
                if not tag and el.tag != "annotation":
                    return None
                if tag == "object":
                    if el.find("bndbox") is not None:
                        return True
                    objects = True
                sized = sized or tag in ("size", "segmented")
    except (OSError, ValueError):
        return None
    return not objects and sized


def _unannotated(path: Path, annotated: set[str], ctx: predport.ReadContext) -> Iterator[DataUnit]:
    """Images a VOC dataset lists (ImageSets/Main/*.txt) without an annotation file: images without
    predictions (some writers write no file for an image without objects)."""
    sets = path / "ImageSets" / "Main"
    if not path.is_dir() or not sets.is_dir():
        return
    lists = [sets / name for name, is_dir in predport.listing(sets)
             if name.endswith(".txt") and "_" not in name[:-4] and not is_dir]
    listed = sorted({line.split()[0] for f in lists
                     for line in f.read_text("utf-8", "replace").splitlines() if line.strip()} - annotated)
    for stem in listed:
        image = imagemod.find(path / "JPEGImages", stem)
        size = imagemod.size(image) if image is not None else None
        yield {"title": image.name if image is not None else stem, "kind": "image",  # type: ignore[misc]
               "width": size[0] if size else None, "height": size[1] if size else None, "objects": [],
               "classifications": [], "source": {"file": str(sets)}}


def _files(path: Path, limit: int | None = None) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix.lower() == ".xml" else []
    base = path / "Annotations" if (path / "Annotations").is_dir() else path
    return predport.files_under(base, lambda name: name.endswith(".xml"), limit or None)


def _text(node: Element | None, tag: str) -> str | None:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text is not None else None


def _number(node: Element | None, tag: str) -> float | None:
    text = _text(node, tag)
    try:
        v = float(text) if text is not None else None
    except ValueError:
        return None
    return v if v is None or math.isfinite(v) else None


def _file(f: Path, ctx: predport.ReadContext, origin: int) -> DataUnit | None:
    name = str(f)
    root = xmlio.root(f)
    if root is None:
        ctx.report("source.unreadable", "cannot read the XML (not well-formed, or with entities)", Location(name))
        return None
    if root.tag != "annotation":
        ctx.report("source.invalid", f"the root is <{root.tag}>, not <annotation>", Location(name))
        return None
    title = _text(root, "filename") or f.stem
    size = root.find("size")
    width, height = _number(size, "width"), _number(size, "height")
    if not width or not height:
        image = (imagemod.find(f.parent.parent / "JPEGImages", Path(title).stem) if f.parent.name == "Annotations"
                 else None) or imagemod.find(f.parent, Path(title).stem)
        found = imagemod.size(image) if image is not None else None
        width, height = found if found else (None, None)
    unit: dict[str, Any] = {"title": title, "kind": "image", "width": int(width) if width else None,
                            "height": int(height) if height else None, "objects": [], "classifications": [],
                            "source": {"file": name}}
    not_carried: Counter[str] = Counter()
    for k, obj in enumerate(root.findall("object")):
        _object(obj, f"object[{k + 1}]", unit, ctx, name, origin, not_carried, part_of=None)
    if not_carried:
        ctx.report("voc.not_carried", "not carried (the ontology has no attribute or class for them): "
                   + ", ".join(f"{k} x{n}" for k, n in sorted(not_carried.items())), Location(name), "info")
    return unit  # type: ignore[return-value]


def _object(obj: Element, path: str, unit: dict[str, Any], ctx: predport.ReadContext, file: str, origin: int,
            not_carried: Counter[str], part_of: str | None) -> None:
    label = _text(obj, "name") or ""
    where = Location(file, record=path)
    target = ctx.resolve_class(label, shapes=BOXES)
    if part_of is not None and not isinstance(target, OntologyObject):  # (said, not blocking: parts are optional)
        ctx.report("voc.not_carried", f"part {label!r} of a {part_of!r}: {target[1]}", where, "info", group=label,
                   entities=1)
        return
    if not isinstance(target, OntologyObject):
        ctx.report(target[0], target[1], where, group=label)
        return
    box = obj.find("bndbox")
    xmin, ymin, xmax, ymax = (_number(box, t) for t in ("xmin", "ymin", "xmax", "ymax"))
    if xmin is None or ymin is None or xmax is None or ymax is None:
        ctx.report("voc.bad_box", "bndbox needs numeric xmin, ymin, xmax and ymax", where, group=label)
        return
    w, h = unit["width"], unit["height"]
    if not w or not h:
        ctx.report("frame.size_unknown", "the image size is unknown (no <size>, no image found): boxes cannot be "
                   "normalised", where, group=label)
        return
    x0, y0 = xmin - origin, ymin - origin
    bw, bh = xmax - xmin + origin, ymax - ymin + origin
    frame: dict[str, Any] = {"frame": 0, "source": {"file": file, "record": path, "group": label},
                             "geometry": {"shape": "bounding_box", "x": x0 / w, "y": y0 / h, "w": bw / w, "h": bh / h}}
    score = _number(obj, "score") if obj.find("score") is not None else _number(obj, "confidence")
    extra = _extra(obj)  # (datumaro's <attributes>; its "score" is the confidence)
    if score is None and "score" in extra:
        score = _float(extra.pop("score"))
    if score is not None:
        frame["confidence"] = score
    record: dict[str, Any] = {"id": f"{path}", "class": {"hash": target.hash}, "frames": [frame]}
    found = answers.answer_all(target, extra.items(), not_carried, "attribute ")
    found += answers.answer_all(target, ((f, v) for f in FLAGS if (v := _text(obj, f)) is not None), not_carried)
    actions = obj.find("actions")
    if actions is not None:
        found += _actions(actions, target, not_carried)
    if found:
        record["answers"] = found
    unit["objects"].append(record)
    for j, part in enumerate(obj.findall("part")):
        _object(part, f"{path}/part[{j + 1}]", unit, ctx, file, origin, not_carried, part_of=label)


def _extra(obj: Element) -> dict[str, str]:
    """``<attributes><attribute><name>n</name><value>v</value></attribute>...`` (datumaro writes them)."""
    holder = obj.find("attributes")
    if holder is None:
        return {}
    return {(a.findtext("name") or "").strip(): (a.findtext("value") or "").strip()
            for a in holder.findall("attribute") if (a.findtext("name") or "").strip()}


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _actions(actions: Element, target: OntologyObject, not_carried: Counter[str]) -> list[dict[str, Any]]:
    """VOC action flags: the checklist ``actions`` (its options: the actions flagged 1) when the class has one,
    else each flag as the answer to the attribute of its name."""
    flags = {child.tag: (child.text or "").strip() for child in actions}
    if answers.attribute(target, "actions") is not None:
        a = answers.answer(target, "actions", [tag for tag, v in flags.items() if v in ("1", "true", "yes")])
        if isinstance(a, dict):
            return [a]
        not_carried["actions"] += 1
        return []
    return answers.answer_all(target, flags.items(), not_carried, "action ")


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [VocReader()]
