"""Geometry checks: every shape against its frame (normalised coordinates in [0, 1], finite, not degenerate),
bitmasks against the frame's pixel size, skeleton vertices against the class's template."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from predport.core.ontology import OntologyObject
from predport.core.problems import Problem
from predport.core.validate.context import UnitContext

#: tolerance for "inside the frame", in normalised units (far below a pixel of any real image)
EPS = 1e-9


def finite(values: Iterable[Any]) -> bool:
    """Every value is finite as a 64-bit float. An integer beyond that range is not: it is infinite as a float,
    as the JSON readers parse such a literal, and ``math.isfinite`` raises for it (a plugin reader or the Python
    API can hand one over)."""
    try:
        return all(map(math.isfinite, values))
    except OverflowError:
        return False


def in_frame(v: float) -> bool:
    return -EPS <= v <= 1.0 + EPS


def geometry_problems(ctx: UnitContext, g: dict[str, Any], ont: OntologyObject,
                      size: tuple[int | None, int | None], src: Any) -> Iterator[Problem]:
    """Everything wrong with one geometry of class ``ont`` on a frame of pixel ``size``."""
    shape = g["shape"]
    if shape in ("bounding_box", "rotatable_bounding_box"):
        x, y, w, h = g["x"], g["y"], g["w"], g["h"]
        vals = (x, y, w, h, g["theta"]) if shape == "rotatable_bounding_box" else (x, y, w, h)
        if not finite(vals):
            yield ctx.problem("geometry.not_finite", f"{shape} has a NaN or infinite value: {list(vals)}", src)
        elif w <= 0 or h <= 0:
            yield ctx.problem("geometry.degenerate", f"{shape} has zero or negative size (w={w}, h={h})", src)
        elif shape == "bounding_box":
            if not (in_frame(x) and in_frame(y) and in_frame(x + w) and in_frame(y + h)):
                yield ctx.problem("geometry.out_of_frame",
                                  f"box x={x}, y={y}, w={w}, h={h} reaches outside the frame [0, 1]", src)
        elif not (in_frame(x + w / 2) and in_frame(y + h / 2)):
            yield ctx.problem("geometry.out_of_frame",
                              f"rotated box centre ({x + w / 2}, {y + h / 2}) is outside the frame", src)
    elif shape == "polygon":
        for p, part in enumerate(g["polygons"]):
            for r, ring in enumerate(part):
                what = f"polygon {p} {'outer ring' if r == 0 else f'hole {r}'}"
                yield from _points(ctx, ring, 3, what, src)
    elif shape == "polyline":
        yield from _points(ctx, g["points"], 2, "polyline", src)
    elif shape == "point":
        x, y = g["x"], g["y"]
        if not finite((x, y)):
            yield ctx.problem("geometry.not_finite", f"point ({x}, {y}) is not finite", src)
        elif not (in_frame(x) and in_frame(y)):
            yield ctx.problem("geometry.out_of_frame", f"point ({x}, {y}) is outside the frame", src)
    elif shape == "bitmask":
        yield from _bitmask(ctx, g, size, src)
    elif shape == "skeleton":
        yield from _skeleton(ctx, g, ont, src)


def _bitmask(ctx: UnitContext, g: dict[str, Any], size: tuple[int | None, int | None], src: Any) -> Iterator[Problem]:
    fw, fh = size
    g["width"], g["height"] = int(g["width"]), int(g["height"])  # (1.0 passed the schema as an integer)
    if fw is None or fh is None:
        yield ctx.problem("frame.size_unknown", "a bitmask needs the frame's pixel size, which is unknown", src)
    elif (g["width"], g["height"]) != (fw, fh):
        yield ctx.problem("bitmask.size_mismatch", f"bitmask is {g['width']}x{g['height']} but the frame is "
                          f"{fw}x{fh}", src)
    else:
        from predport.core import rle as rlemod  # numpy & pycocotools load only when masks appear

        err = rlemod.check(g["rle"], g["width"], g["height"])
        if err:
            yield ctx.problem("bitmask.invalid_rle", err, src)


def _skeleton(ctx: UnitContext, g: dict[str, Any], ont: OntologyObject, src: Any) -> Iterator[Problem]:
    if not ont.vertices:  # no template to check against (reported once per instance, by the caller)
        return
    seen: set[str] = set()
    by_hash = {h: n for n, h in ont.vertices.items() if h}
    for i, pt in enumerate(g["points"]):
        name = pt.get("name")
        if name is None:
            name = by_hash.get(pt["hash"])
        where = f"geometry/points/{i}"
        if name is None or name not in ont.vertices:
            label = pt.get("name") or pt.get("hash")
            yield ctx.problem("skeleton.unknown_vertex", f"vertex {label!r} is not in the template of {ont.name!r} "
                              f"({', '.join(ont.vertices) or 'no template'})", src, where)
            continue
        if "hash" in pt and ont.vertices[name] and pt["hash"] != ont.vertices[name]:
            yield ctx.problem("skeleton.unknown_vertex", f"vertex {name!r} has hash {pt['hash']!r}, the template "
                              f"says {ont.vertices[name]!r}", src, where)
        if name in seen:
            yield ctx.problem("skeleton.duplicate_vertex", f"vertex {name!r} appears twice", src, where)
        seen.add(name)
        x, y = pt["x"], pt["y"]
        if not finite((x, y)):
            yield ctx.problem("geometry.not_finite", f"vertex {name!r} ({x}, {y}) is not finite", src)
        elif pt.get("visibility") != "invisible" and not (in_frame(x) and in_frame(y)):
            yield ctx.problem("geometry.out_of_frame", f"vertex {name!r} ({x}, {y}) is outside the frame", src)


def _points(ctx: UnitContext, flat: list[float], minimum: int, what: str, src: Any) -> Iterator[Problem]:
    if len(flat) % 2:
        yield ctx.problem("geometry.degenerate", f"{what} has an odd number of coordinates ({len(flat)})", src)
    elif len(flat) < 2 * minimum:
        yield ctx.problem("geometry.degenerate", f"{what} has {len(flat) // 2} points; at least {minimum} are needed",
                          src)
    elif not finite(flat):
        yield ctx.problem("geometry.not_finite", f"{what} has a NaN or infinite coordinate", src)
    elif not (min(flat) >= -EPS and max(flat) <= 1.0 + EPS):
        yield ctx.problem("geometry.out_of_frame", f"{what} has coordinates outside the frame [0, 1]", src)
