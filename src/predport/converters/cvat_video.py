"""Reader ``cvat_video``: CVAT for video 1.1 XML (an interpolation task's ``annotations.xml``).

The file is one video, titled by the video file it was made from (``<meta><source>``), else the task's name,
else the file's stem; its frame size is ``original_size``. Frame numbers are the video's own (a task with
``start_frame`` 10 and ``frame_filter`` step=3 lists frames 10, 13, 16). Each ``<track>`` is one object
instance with a geometry on every frame it lists, keyframe or interpolated (``keyframe="0"`` shapes are
converted too); a shape with ``outside="1"`` is where the track leaves the view: it is not an object, also
when it lies past the last frame. Skeleton tracks take their vertices from their nested point tracks.
Attributes answer per frame when the ontology's attribute is dynamic, once otherwise. ``<tag frame=..>`` ->
a classification on that frame (consecutive frames with the same answers merge). Shapes, attributes and what
is not carried: see :mod:`predport.converters._cvat`.
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


class CvatVideoReader(predport.BaseReader):
    name = "cvat_video"
    description = "CVAT for video 1.1 XML: tracks (outside ends them, interpolated frames kept), skeletons, tags"
    capabilities = predport.Capabilities(OBJECT_SHAPES, confidence=True, attributes=True, tracks=True,
                                         classifications=True)
    codes: ClassVar[Mapping[str, str]] = _cvat.codes("cvat_video")

    def detect(self, path: Path) -> predport.Detection:
        found = [_cvat.sniff(f) for f in _cvat.files(path)[:3]]
        if found and all(kind == "video" for kind, _ in found):
            return predport.Detection(0.9, found[0][1])
        return predport.Detection(0, found[0][1] if found else "no .xml file")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        for f in _cvat.files(path):
            unit = _read(f, ctx)
            if unit is not None:
                yield unit


def _read(f: Path, ctx: predport.ReadContext) -> DataUnit | None:
    file = str(f)
    m = _cvat.Meta()
    build = _cvat.Builder(ctx, file, m, "cvat_video")
    unit: dict[str, Any] | None = None
    k = t = 0
    tags: list[dict[str, Any]] = []
    for tag, el in _cvat.stream(f, ctx):
        if tag == "meta":
            m = build.meta = _cvat.meta(el)
            continue
        if tag not in ("track", "tag"):
            continue
        if unit is None:
            title = m.source or m.name or f.stem
            unit = {"title": title, "kind": "video", "width": m.size[0] if m.size else None,
                    "height": m.size[1] if m.size else None, "objects": [], "classifications": [],
                    "source": {"file": file}}
        if tag == "track":
            k += 1
            _track(el, k, build, unit, file)
        elif tag == "tag":
            t += 1
            where = Location(file, record=f"/annotations/tag[{t}]")
            frame = _cvat._int(el.get("frame")) if el.get("frame") != "0" else 0
            if frame is None:
                ctx.report(build.bad, "a <tag> without a frame number", where, group=el.get("label", ""))
                continue
            found = build.tag(el, frame, where, t)
            if found is not None:
                tags.append(found)
    if unit is None:
        return None
    unit["classifications"] = _merge(tags)
    build.finish()
    return unit  # type: ignore[return-value]


def _track(track: Element, k: int, build: _cvat.Builder, unit: dict[str, Any], file: str) -> None:
    label = track.get("label", "")
    base = f"/annotations/track[{k}]"
    first = next((s for s in track if s.tag in _cvat.SHAPES), None)  # (a track keeps one shape)
    target = build.target(label, Location(file, record=base), first)
    if target is None:
        return
    w, h = unit["width"], unit["height"]
    if w is None or h is None:
        build.ctx.report("frame.size_unknown", "the task has no original_size", Location(file, record=base),
                         group=label)
        return
    vertices: dict[str, dict[int, tuple[float, float, str]]] = {}
    for nested in track.findall("track"):  # a skeleton's vertices
        name = nested.get("label", "")
        for p in nested.findall("points"):
            pts = _cvat._points(p.get("points", ""))
            frame = _frame(p)
            if pts and len(pts) == 1 and frame is not None:
                vertices.setdefault(name, {})[frame] = (*pts[0], _cvat._visibility(p.attrib))
    record: dict[str, Any] = {"id": f"track-{track.get('id', k)}", "class": {"hash": target.hash}, "frames": []}
    parts: dict[int, dict[str, Any]] = {}
    seen: Counter[str] = Counter()
    for shape in track:
        if shape.tag == "track" or shape.tag == "attribute":
            continue
        seen[shape.tag] += 1
        where = Location(file, record=f"{base}/{shape.tag}[{seen[shape.tag]}]")
        if shape.tag not in _cvat.SHAPES:
            continue
        frame = _frame(shape)
        if frame is None:
            build.ctx.report(build.bad, "a track's shape without a frame number", where, group=label)
            continue
        if shape.get("outside") == "1":  # (the track has left the view: not an object)
            continue
        g = build.geometry(shape, target, w, h, where, label,
                           lambda name, f=frame: _at(vertices.get(name, {}), f))  # type: ignore[misc]
        for j, geometry in enumerate(g if isinstance(g, list) else [g] if g is not None else []):
            if isinstance(g, list):  # (several points per frame, for a point class: a track per point)
                part = parts.setdefault(j, {**record, "id": f"{record['id']}.{j}", "frames": []})
            else:
                part = record
            part["frames"].append({"frame": frame, "geometry": geometry, "source": _cvat.source(where, label)})
            build.answers(part, target, shape, frame, part["frames"][-1])
    for r in [record, *parts.values()]:
        if r["frames"]:
            unit["objects"].append(r)


def _at(states: dict[int, tuple[float, float, str]], frame: int) -> tuple[float, float, str] | None:
    """A vertex on ``frame``: its latest state listed at or before it (outside stays outside until listed)."""
    listed = [f for f in states if f <= frame]
    return states[max(listed)] if listed else None


def _frame(el: Element) -> int | None:
    v = el.get("frame")
    return 0 if v == "0" else _cvat._int(v)


def _merge(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tags of one classification with the same answers on consecutive frames, as one range."""
    out: list[dict[str, Any]] = []
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for c in sorted(tags, key=lambda c: c["frames"][0][0]):
        key = (c["class"]["hash"], repr(c["answers"]))
        prev = last.get(key)
        if prev is not None and prev["frames"][-1][1] + 1 == c["frames"][0][0]:
            prev["frames"][-1][1] = c["frames"][0][1]
            continue
        last[key] = c
        out.append(c)
    return out


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [CvatVideoReader()]
