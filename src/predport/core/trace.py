"""Mask -> polygons with holes, exactly along pixel edges (no OpenCV).

Every boundary between a foreground and a background pixel becomes a directed unit edge with the
foreground on its right (screen coordinates, y down), so outer boundaries run clockwise on screen and holes
counter-clockwise. Edges are chained into rings, turning right at a vertex where two pixels touch only at a
corner (the foreground is taken 4-connected), collinear vertices are dropped, and each hole is put into the
smallest outer ring that contains it. Vertices are pixel corners: (c, r) is the top-left corner of pixel
(r, c), so the polygon covers exactly the mask's pixel squares.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as cocomask

Ring = list[float]  # flat [x0, y0, x1, y1, ...] in pixel units
_RIGHT = {(1, 0): (0, 1), (0, 1): (-1, 0), (-1, 0): (0, -1), (0, -1): (1, 0)}
_LEFT = {v: k for k, v in _RIGHT.items()}


def _edges(mask: np.ndarray[Any, Any]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    m = np.pad(mask.astype(bool), 1)
    fg = m[1:-1, 1:-1]
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    sides = ((fg & ~m[:-2, 1:-1], (0, 0), (1, 0)),   # top: (c, r) -> (c+1, r)
             (fg & ~m[1:-1, 2:], (1, 0), (1, 1)),    # right
             (fg & ~m[2:, 1:-1], (1, 1), (0, 1)),    # bottom
             (fg & ~m[1:-1, :-2], (0, 1), (0, 0)))   # left
    for side, (sx, sy), (ex, ey) in sides:
        rows, cols = np.nonzero(side)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            out.setdefault((c + sx, r + sy), []).append((c + ex, r + ey))
    return out


def _rings(mask: np.ndarray[Any, Any]) -> list[list[tuple[int, int]]]:
    edges = _edges(mask)
    rings = []
    while edges:
        start = next(iter(edges))
        first = (start, edges[start][0])
        ring = []
        s, t = first
        while True:
            outs = edges[s]
            outs.remove(t)
            if not outs:
                del edges[s]
            ring.append(s)
            d = (t[0] - s[0], t[1] - s[1])
            nxt = edges.get(t)
            if not nxt:
                break
            # prefer a right turn, then straight on, then left
            for turn in (_RIGHT[d], d, _LEFT[d]):
                cand = (t[0] + turn[0], t[1] + turn[1])
                if cand in nxt:
                    break
            s, t = t, cand
        rings.append(_simplify(ring))
    return rings


def _simplify(ring: list[tuple[int, int]]) -> list[tuple[int, int]]:
    n = len(ring)
    keep = []
    for i in range(n):
        a, b, c = ring[i - 1], ring[i], ring[(i + 1) % n]
        if (b[0] - a[0]) * (c[1] - b[1]) != (b[1] - a[1]) * (c[0] - b[0]):
            keep.append(b)
    return keep


def _area(ring: list[tuple[int, int]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)) / 2


def _inside(px: float, py: float, ring: list[tuple[int, int]]) -> bool:
    hit = False
    for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (y0 > py) != (y1 > py) and px < x0 + (py - y0) * (x1 - x0) / (y1 - y0):
            hit = not hit
    return hit


def mask_to_polygons(mask: np.ndarray[Any, Any]) -> list[list[Ring]]:
    """Polygons (each: outer ring, then holes) in pixel units, covering exactly the mask's pixels."""
    outers: list[tuple[float, list[tuple[int, int]], list[Ring]]] = []
    holes = []
    for ring in _rings(mask):
        a = _area(ring)
        if a > 0:
            outers.append((a, ring, [_flat(ring)]))
        else:
            holes.append(ring)
    outers.sort(key=lambda o: o[0])  # smallest first: the innermost outer containing a hole wins
    for hole in holes:
        (x0, y0), (x1, y1) = hole[0], hole[1]
        d = (np.sign(x1 - x0), np.sign(y1 - y0))
        left = (d[1], -d[0])  # the background (hole) side of the edge
        px, py = x0 + d[0] * 0.5 + left[0] * 0.5, y0 + d[1] * 0.5 + left[1] * 0.5
        for _, outer, rings in outers:
            if _inside(px, py, outer):
                rings.append(_flat(hole))
                break
    return [rings for _, _, rings in sorted(outers, key=lambda o: (o[1][0][1], o[1][0][0]))]


def _flat(ring: list[tuple[int, int]]) -> Ring:
    return [float(v) for p in ring for v in p]


def rasterize(polygons: list[list[Ring]], height: int, width: int) -> np.ndarray[Any, Any]:
    """The mask pycocotools draws for polygons with holes (pixel units): outer rings minus holes."""
    out = np.zeros((height, width), dtype=bool)
    for rings in polygons:
        part = _fill([rings[0]], height, width)
        if len(rings) > 1:
            part &= ~_fill(rings[1:], height, width)
        out |= part
    return out


def _fill(rings: list[Ring], height: int, width: int) -> np.ndarray[Any, Any]:
    rles = cocomask.frPyObjects([list(r) for r in rings], height, width)
    return cocomask.decode(cocomask.merge(rles)).astype(bool)  # type: ignore[no-any-return]


def iou(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
