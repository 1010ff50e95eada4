"""Instances as COCO annotations (pixel coordinates, what COCO's evaluation reads) and the similarities of
the shapes COCO has none for.

* Bounding boxes, polygons and bitmasks: COCO's IoU, computed by the COCO evaluator itself from these
  annotations (pycocotools' RLE; a crowd truth's IoU is the intersection over the prediction's area).
  Polygons keep every part and subtract their holes; a polygon against a bitmask is a mask IoU.
* Skeletons: COCO's object keypoint similarity (OKS), computed by the evaluator, with COCO's sigmas when the
  template's vertices are COCO's 17 person keypoints and ``oks_sigma`` for every vertex otherwise. The
  object's scale is COCO's ``area`` when the ground truth carries it, else the area of the box around its
  visible vertices.
* Rotatable boxes: the IoU of the two rotated rectangles (shapely), in pixels.
* Points: a one-vertex OKS whose scale is the frame: exp(-d^2 / (2 * frame area * (2 * oks_sigma)^2)).
* Polylines: the IoU of the two lines thickened to bands of half-width 1 % of the frame's diagonal (shapely):
  1 for the same line, falling smoothly as they part, 0 once they are two band-widths apart.

Normalised coordinates become pixels as ``round(v * size, 10)``: exact for coordinates that were written
with up to 10 decimals (COCO's are), so that polygons rasterise exactly as COCO's ``segm`` does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from predport.core.evaluate.instances import Instance

#: COCO's 17 person keypoints and their OKS sigmas (pycocotools' cocoeval)
COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle")
COCO_SIGMAS = (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89)
VISIBILITY = {"invisible": 0, "occluded": 1, "selfOccluded": 1, "visible": 2}
LINE_BAND = 0.01  # the polyline band's half-width, as a share of the frame's diagonal


def px(v: float, size: int) -> float:
    return round(v * size, 10)


def sigmas(vertices: list[str], oks_sigma: float) -> np.ndarray[Any, Any]:
    """OKS sigmas in template order: COCO's for COCO's 17 person keypoints, ``oks_sigma`` otherwise."""
    if sorted(vertices) == sorted(COCO_KEYPOINTS):
        by_name = dict(zip(COCO_KEYPOINTS, COCO_SIGMAS, strict=True))
        return np.array([by_name[v] / 10 for v in vertices])
    return np.full(len(vertices), oks_sigma)


def annotation(inst: Instance, family: str, ident: int, image_id: int, category_id: int,
               truth: bool) -> dict[str, Any]:
    """The COCO annotation (ground truth, or a result for ``loadRes``) of an instance; ``ident``: its position
    in its family's list, plus one (``loadRes`` numbers results so too)."""
    w, h = inst.size
    g = inst.geometry
    ann: dict[str, Any] = {"id": ident, "image_id": image_id, "category_id": category_id}
    coco = inst.coco or {}
    if not truth:
        ann["score"] = inst.confidence
    if family == "bbox":
        ann["bbox"] = [px(g["x"], w), px(g["y"], h), px(g["w"], w), px(g["h"], h)]
        if truth:
            ann["area"] = coco.get("area", ann["bbox"][2] * ann["bbox"][3])
    elif family == "segm":
        rle, polygons = segmentation(inst)
        ann["segmentation"] = polygons if truth and polygons is not None else rle
        if truth:
            from pycocotools import mask as cocomask

            ann["area"] = coco["area"] if "area" in coco else float(cocomask.area(rle))
            ann["bbox"] = list(cocomask.toBbox(rle))
    elif family == "keypoints":
        flat, box = keypoints(inst)
        ann["keypoints"] = flat
        if truth:
            ann["num_keypoints"] = sum(1 for v in flat[2::3] if v > 0)
            ann["bbox"] = list(coco.get("bbox") or box)
            ann["area"] = coco.get("area", box[2] * box[3])
    else:  # rotatable boxes, points, polylines: the evaluator is handed their similarity; it needs a box
        ann["bbox"] = [0.0, 0.0, float(w), float(h)]
        if truth:
            ann["area"] = float(w * h)
    if truth:
        ann["iscrowd"] = int(bool(coco.get("iscrowd", False)))
    return ann


def box_annotations(items: list[Instance], cat_ids: dict[str, int], truth: bool) -> list[dict[str, Any]]:
    """:func:`annotation` for many bounding boxes at once (numpy; the same values)."""
    if not items:
        return []
    geo = np.array([(i.geometry["x"], i.geometry["y"], i.geometry["w"], i.geometry["h"]) for i in items])
    size = np.array([i.size for i in items], dtype=np.float64)
    boxes = np.round(geo * np.concatenate([size, size], axis=1), 10).tolist()
    images = [i.image for i in items]
    cats = [cat_ids[i.cls.name] for i in items]
    if not truth:
        return [{"id": k + 1, "image_id": im, "category_id": c, "bbox": b, "score": i.confidence}
                for k, (i, im, c, b) in enumerate(zip(items, images, cats, boxes, strict=True))]
    out = []
    for k, (i, im, c, b) in enumerate(zip(items, images, cats, boxes, strict=True)):
        coco = i.coco or {}
        out.append({"id": k + 1, "image_id": im, "category_id": c, "bbox": b, "area": coco.get("area", b[2] * b[3]),
                    "iscrowd": int(bool(coco.get("iscrowd", False)))})
    return out


def segmentation(inst: Instance) -> tuple[dict[str, Any], list[list[float]] | None]:
    """The instance's mask as a COCO RLE (column-major, compressed), and -- for a polygon without holes -- its
    rings in pixels, which COCO rasterises itself for ground truth."""
    from pycocotools import mask as cocomask

    w, h = inst.size
    g = inst.geometry
    if g["shape"] == "bitmask":
        from predport.core import rle as rlemod

        mask = rlemod.to_mask(g["rle"], g["width"], g["height"])
        return cocomask.encode(np.asfortranarray(mask.astype(np.uint8))), None
    parts = [[[px(v, w if k % 2 == 0 else h) for k, v in enumerate(ring)] for ring in part]
             for part in g["polygons"]]
    if all(len(part) == 1 for part in parts):
        rings = [part[0] for part in parts]
        return cocomask.merge(cocomask.frPyObjects(rings, h, w)), rings
    from predport.core import trace

    mask = trace.rasterize(parts, h, w)  # (outer rings less their holes, as COCO rasterises rings)
    return cocomask.encode(np.asfortranarray(mask.astype(np.uint8))), None


def keypoints(inst: Instance) -> tuple[list[float], list[float]]:
    """COCO's [x1, y1, v1, ...] in template order (a vertex the instance lacks: v = 0), and the box around
    the visible vertices ([0, 0, 0, 0] when none is)."""
    w, h = inst.size
    names = list(inst.cls.vertices)
    by_hash = {hh: n for n, hh in inst.cls.vertices.items() if hh}
    given = {}
    for p in inst.geometry["points"]:
        name = p.get("name") or by_hash.get(p.get("hash", ""))
        given[name] = p
    flat: list[float] = []
    xs, ys = [], []
    for name in names or [p.get("name") or p.get("hash") for p in inst.geometry["points"]]:
        p = given.get(name)
        if p is None:
            flat += [0.0, 0.0, 0]
            continue
        v = VISIBILITY.get(p.get("visibility", "visible"), 2)
        x, y = px(p["x"], w), px(p["y"], h)
        flat += [x, y, v]
        if v > 0:
            xs.append(x)
            ys.append(y)
    box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] if xs else [0.0, 0.0, 0.0, 0.0]
    return flat, box


def custom(dts: list[Instance], gts: list[Instance], oks_sigma: float) -> np.ndarray[Any, Any]:
    """The similarity matrix (predictions x truths) of rotatable boxes, points or polylines."""
    if not dts or not gts:
        return np.zeros((len(dts), len(gts)))
    shape = dts[0].geometry["shape"]
    if shape == "point":
        d = np.array([[px(i.geometry["x"], i.size[0]), px(i.geometry["y"], i.size[1])] for i in dts])
        g = np.array([[px(i.geometry["x"], i.size[0]), px(i.geometry["y"], i.size[1])] for i in gts])
        scale = np.array([float(i.size[0] * i.size[1]) for i in gts])
        d2 = ((d[:, None, :] - g[None, :, :]) ** 2).sum(axis=2)
        out: np.ndarray[Any, Any] = np.exp(-d2 / (2 * (scale[None, :] + np.spacing(1)) * (2 * oks_sigma) ** 2))
        return out
    import shapely

    a = np.array([_shape(i) for i in dts])[:, None]
    b = np.array([_shape(i) for i in gts])[None, :]
    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(a) + shapely.area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _shape(inst: Instance) -> Any:
    import shapely

    w, h = inst.size
    g = inst.geometry
    if g["shape"] == "rotatable_bounding_box":
        bw, bh = g["w"] * w, g["h"] * h
        cx, cy = g["x"] * w + bw / 2, g["y"] * h + bh / 2
        t = math.radians(g["theta"])  # clockwise on screen (y down): the usual rotation in pixel coordinates
        c, s = math.cos(t), math.sin(t)
        corners = [(cx + c * dx - s * dy, cy + s * dx + c * dy)
                   for dx, dy in ((-bw / 2, -bh / 2), (bw / 2, -bh / 2), (bw / 2, bh / 2), (-bw / 2, bh / 2))]
        return shapely.Polygon(corners)
    pts = g["points"]
    line = shapely.LineString([(pts[k] * w, pts[k + 1] * h) for k in range(0, len(pts), 2)])
    return line.buffer(LINE_BAND * math.hypot(w, h))
