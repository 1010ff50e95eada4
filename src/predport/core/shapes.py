"""Pixel geometry -> the internal schema's normalised geometry, for readers of pixel-based formats (LabelMe, CVAT,
...), and :func:`fit`: an input shape given to a class of another shape, converted where that loses nothing or
where the loss is measured (a box as its polygon, a mask traced to polygons), otherwise left for validation to
report as ``class.shape_mismatch``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (numpy loads when a mask appears: not at every start)
    import numpy as np

Geometry = dict[str, Any]


def box(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> Geometry:
    """The axis-aligned box between two corners (in any order), in pixels."""
    left, right = min(x0, x1), max(x0, x1)
    top, bottom = min(y0, y1), max(y0, y1)
    return {"shape": "bounding_box", "x": left / w, "y": top / h, "w": (right - left) / w, "h": (bottom - top) / h}


def rotated_box(cx: float, cy: float, bw: float, bh: float, theta: float, w: int, h: int) -> Geometry:
    """A box of size bw x bh about its centre (cx, cy), turned ``theta`` degrees clockwise on screen."""
    return {"shape": "rotatable_bounding_box", "x": (cx - bw / 2) / w, "y": (cy - bh / 2) / h, "w": bw / w,
            "h": bh / h, "theta": theta % 360}


def quad(pts: Sequence[tuple[float, float]], w: int, h: int) -> Geometry | str:
    """Four corners in pixels (a YOLO OBB, a LabelMe oriented rectangle) -> the rotated rectangle they are: its
    centre, the length of its first edge (the box's w) and second (h), and the first edge's angle (clockwise on
    screen); or why they are not a rectangle. Sides must agree, and corners be right angles, to what the files
    print (about 6 digits)."""
    edges = [(pts[(k + 1) % 4][0] - pts[k][0], pts[(k + 1) % 4][1] - pts[k][1]) for k in range(4)]
    lengths = [math.hypot(*e) for e in edges]
    bw, bh = (lengths[0] + lengths[2]) / 2, (lengths[1] + lengths[3]) / 2
    tolerance = 1e-3 * max(bw, bh) + 1e-6 * max(w, h)
    square = abs(edges[0][0] * edges[1][0] + edges[0][1] * edges[1][1]) / max(lengths[0] * lengths[1], 1e-12)
    if (min(lengths) <= 0 or abs(lengths[0] - lengths[2]) > tolerance or abs(lengths[1] - lengths[3]) > tolerance
            or square > 1e-3):
        return (f"the four corners are not a rectangle (sides {lengths[0]:.4g}, {lengths[1]:.4g}, {lengths[2]:.4g}, "
                f"{lengths[3]:.4g} px)")
    cx, cy = sum(p[0] for p in pts) / 4, sum(p[1] for p in pts) / 4
    theta = math.degrees(math.atan2(edges[0][1], edges[0][0]))
    return {"shape": "rotatable_bounding_box", "x": (cx - bw / 2) / w, "y": (cy - bh / 2) / h, "w": bw / w,
            "h": bh / h, "theta": theta}


def polygon(parts: Sequence[Sequence[Sequence[float]]], w: int, h: int) -> Geometry:
    """Parts, each a list of rings (outer first, then holes), each ring flat [x0, y0, x1, y1, ...] in pixels."""
    return {"shape": "polygon", "polygons": [[_flat(ring, w, h) for ring in part] for part in parts]}


def polyline(points: Sequence[float], w: int, h: int) -> Geometry:
    return {"shape": "polyline", "points": _flat(points, w, h)}


def point(x: float, y: float, w: int, h: int) -> Geometry:
    return {"shape": "point", "x": x / w, "y": y / h}


def bitmask(mask: np.ndarray[Any, Any]) -> Geometry:
    """A full-frame mask (H x W, anything truthy is foreground)."""
    from predport.core import rle

    height, width = mask.shape[:2]
    return {"shape": "bitmask", "width": int(width), "height": int(height), "rle": rle.from_mask(mask)}


def circle(cx: float, cy: float, r: float, w: int, h: int, vertices: int = 64) -> Geometry:
    """A circle as the polygon of ``vertices`` points on it (Encord has no circle)."""
    ring = []
    for k in range(vertices):
        a = 2 * math.pi * k / vertices
        ring += [cx + r * math.cos(a), cy + r * math.sin(a)]
    return polygon([[ring]], w, h)


def _flat(values: Sequence[float], w: int, h: int) -> list[float]:
    return [v / (h if k % 2 else w) for k, v in enumerate(values)]


def corners(g: Geometry, w: int, h: int) -> list[float]:
    """The four corners of a box or rotated box, clockwise on screen from the top-left, in pixels."""
    x, y, bw, bh = g["x"] * w, g["y"] * h, g["w"] * w, g["h"] * h
    pts = [(x, y), (x + bw, y), (x + bw, y + bh), (x, y + bh)]
    theta = math.radians(g.get("theta", 0.0))
    if theta:
        cx, cy = x + bw / 2, y + bh / 2
        c, s = math.cos(theta), math.sin(theta)  # clockwise on screen (y down) is a positive rotation here
        pts = [(cx + (px - cx) * c - (py - cy) * s, cy + (px - cx) * s + (py - cy) * c) for px, py in pts]
    return [v for p in pts for v in p]


def fit(g: Geometry, target: str, w: int | None, h: int | None) -> tuple[Geometry, str | None]:
    """``g`` as a geometry of shape ``target`` where it can be one, and a note saying how (None: nothing was
    lost, or nothing could be done -- validation then reports the mismatch)."""
    shape = g.get("shape")
    if shape == target or w is None or h is None:
        return g, None
    if shape == "bounding_box" and target == "rotatable_bounding_box":
        return {**g, "shape": target, "theta": 0.0}, None
    if shape in ("bounding_box", "rotatable_bounding_box") and target == "polygon":
        return polygon([[corners(g, w, h)]], w, h), f"a {shape.replace('_', ' ')} as its 4-corner polygon"
    if shape == "polygon" and target == "bounding_box":
        found = _axis_box(g, w, h)
        return (found, None) if found else (g, None)
    if shape == "bitmask" and target == "polygon":
        from predport.core import rle, trace

        mask = rle.runs_to_mask(rle.counts(g["rle"]), g["height"], g["width"])  # type: ignore[arg-type]
        parts = trace.mask_to_polygons(mask)
        if not parts:
            return g, None
        score = trace.iou(trace.rasterize(parts, g["height"], g["width"]), mask)
        return polygon(parts, g["width"], g["height"]), f"a mask traced to {len(parts)} polygon(s) (IoU {score:.4f})"
    return g, None


def _axis_box(g: Geometry, w: int, h: int) -> Geometry | None:
    """The box a polygon is, when it is one ring of four axis-aligned corners."""
    if len(g["polygons"]) != 1 or len(g["polygons"][0]) != 1 or len(g["polygons"][0][0]) != 8:
        return None
    ring = g["polygons"][0][0]
    xs, ys = sorted(set(ring[0::2])), sorted(set(ring[1::2]))
    if len(xs) != 2 or len(ys) != 2:
        return None
    pts = list(zip(ring[0::2], ring[1::2], strict=True))
    if set(pts) != {(x, y) for x in xs for y in ys}:
        return None
    if any((a[0] == b[0]) == (a[1] == b[1]) for a, b in zip(pts, pts[1:] + pts[:1], strict=True)):
        return None  # (a bow tie: sides must run along the axes)
    return {"shape": "bounding_box", "x": xs[0], "y": ys[0], "w": xs[1] - xs[0], "h": ys[1] - ys[0]}
