"""Reader ``cvat_images``: CVAT for images 1.1 XML (a task's or a project's ``annotations.xml``).

Each ``<image>`` is a data unit titled by its ``name``, sized by its ``width`` / ``height``; a project export that
repeats a name in several subsets titles those images ``<subset>/<name>``. Shapes, attributes and what is not
carried: see :mod:`predport.converters._cvat`. ``<tag>`` -> a classification: the one named like the tag's label
(answered by the tag's attributes), or the one with an option of that name. The file streams: elements are
cleared once read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import predport
from predport.converters import _cvat
from predport.core.model import DataUnit
from predport.core.ontology import OBJECT_SHAPES
from predport.core.problems import Location

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


class CvatImagesReader(predport.BaseReader):
    name = "cvat_images"
    description = "CVAT for images 1.1 XML: boxes (rotated), polygons, polylines, points, masks, skeletons, tags"
    capabilities = predport.Capabilities(OBJECT_SHAPES, confidence=True, attributes=True, classifications=True)
    codes: ClassVar[Mapping[str, str]] = _cvat.codes("cvat_images")

    def detect(self, path: Path) -> predport.Detection:
        found = [_cvat.sniff(f) for f in _cvat.files(path)[:3]]
        if found and all(kind == "images" for kind, _ in found):
            return predport.Detection(0.9, found[0][1])
        return predport.Detection(0, found[0][1] if found else "no .xml file")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        for f in _cvat.files(path):
            yield from _read(f, ctx)


def _read(f: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
    file = str(f)
    m = _cvat.Meta()
    build = _cvat.Builder(ctx, file, m, "cvat_images")
    units: list[tuple[dict[str, Any], str]] = []
    k = 0
    for tag, el in _cvat.stream(f, ctx):
        if tag == "meta":
            m = _cvat.meta(el)
            build.meta = m
        elif tag == "image":
            k += 1
            units.append((_unit(el, k, build, file), el.get("subset", "")))
    names = Counter(u["title"] for u, _ in units)
    for unit, subset in units:
        if names[unit["title"]] > 1 and subset:  # (a project export repeats names across subsets)
            unit["title"] = f"{subset}/{unit['title']}"
    build.finish()
    for unit, _ in units:
        yield unit  # type: ignore[misc]


def _unit(image: Element, k: int, build: _cvat.Builder, file: str) -> dict[str, Any]:
    w, h = _cvat._int(image.get("width")), _cvat._int(image.get("height"))
    title = image.get("name") or f"image {image.get('id', k)}"
    unit: dict[str, Any] = {"title": title, "kind": "image", "width": w, "height": h, "objects": [],
                            "classifications": [], "source": {"file": file, "record": f"/annotations/image[{k}]"}}
    seen: Counter[str] = Counter()
    for child in image:
        seen[child.tag] += 1
        path = f"/annotations/image[{k}]/{child.tag}[{seen[child.tag]}]"
        where = Location(file, record=path)
        label = child.get("label", "")
        if child.tag == "tag":
            found = build.tag(child, 0, where, len(unit["classifications"]))
            if found is not None:
                unit["classifications"].append(found)
            continue
        if child.tag not in _cvat.SHAPES:
            continue
        target = build.target(label, where, child)
        if target is None:
            continue
        if w is None or h is None:
            build.ctx.report("frame.size_unknown", "the <image> has no width and height", where, group=label)
            continue
        g = build.geometry(child, target, w, h, where, label)
        for j, geometry in enumerate(g if isinstance(g, list) else [g] if g is not None else []):
            record: dict[str, Any] = {"id": path + (f"/{j}" if isinstance(g, list) else ""),
                                      "class": {"hash": target.hash},
                                      "frames": [{"frame": 0, "geometry": geometry,
                                                  "source": _cvat.source(where, label)}]}
            build.answers(record, target, child, None, record["frames"][0])
            if not record.get("answers"):
                record.pop("answers", None)
            unit["objects"].append(record)
    return unit


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [CvatImagesReader()]
