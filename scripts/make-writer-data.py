#!/usr/bin/env python3
"""Dev only: write the readers' test inputs with the writers users use, from one scene, into
tests/data/written/<writer>/<format>/ (each with written.json: the writer and its version, the reader and options
predport needs, and what the files carry), plus tests/data/written/truth.json (the scene). tests/test_written.py
converts every one of them and compares with the scene.

Each writer lives in its own environment; run the script with each environment's Python, and it writes what
the writers importable there write (nothing is formatted by hand: the files are the writers' own output):

    /tmp/writers/bin/python scripts/make-writer-data.py   # globox, supervision  (pip install globox supervision)
    /tmp/dm/bin/python scripts/make-writer-data.py        # datumaro, norfair    (pip install datumaro norfair)
    /tmp/lmenv/bin/python scripts/make-writer-data.py     # labelme              (pip install labelme)
    /tmp/ul/bin/python scripts/make-writer-data.py        # ultralytics (with torch from the CPU index)
    /tmp/fo/bin/python scripts/make-writer-data.py        # fiftyone             (pip install fiftyone)

Only class-name lists (classes.txt, labels.txt) and the blank images the writers need are made here.
"""

from __future__ import annotations

import importlib
import json
import math
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent / "tests" / "data" / "written"

IMAGES = [("a.png", 640, 480), ("b.png", 320, 240), ("c.png", 500, 375)]  # c.png: no predictions
CLASSES = ["car", "person", "dog", "traffic_light", "road"]
# boxes: image, class, x0, y0, x1, y1 (pixels), confidence, attributes
BOXES = [
    ("a.png", "car", 10, 20, 110, 80, 0.9, {"occluded": True}),
    ("a.png", "person", 200, 100, 260, 300, 0.75, {"occluded": False}),
    ("a.png", "dog", 300.5, 310.25, 420, 400, 0.625, {}),
    ("b.png", "car", 0, 0, 50, 40, 0.95, {}),
    ("b.png", "traffic_light", 100, 50, 120, 110, 0.5, {}),
]
POLYGONS = [
    ("a.png", "person", [(200, 100), (260, 100), (255, 300), (205, 290)], 0.8),
    ("b.png", "car", [(5, 5), (45, 8), (40, 35), (10, 30), (8, 20)], 0.7),
]
# rotated boxes: image, class, cx, cy, w, h, degrees clockwise on screen
ROTATED = [("a.png", "car", 320, 240, 100, 40, 30.0, 0.85)]
POLYLINES = [("a.png", "road", [(0, 470), (320, 400), (630, 470)])]
POINTS = [("b.png", "dog", (160, 120))]
SKELETON = ["nose", "left_eye", "right_eye"]
# keypoints: image, class, box, [(x, y, visibility 0/1/2)]
KEYPOINTS = [("a.png", "person", (200, 100, 260, 300), [(230, 120, 2), (225, 115, 2), (235, 115, 1)], 0.9)]
# keypoint scores a model writes for the flags above (ultralytics): visible 0.9, occluded 0.3 (below 0.5)
SCORES = {2: 0.9, 1: 0.3, 0: 0.1}
TAGS = [("a.png", "daytime"), ("b.png", "night")]
# a mask: image, class, the pixels (rows, columns) set, as rectangles y0, y1, x0, x1 (end exclusive)
MASKS = [("b.png", "dog", [(100, 140, 150, 200), (120, 160, 190, 230)])]
# a video: 8 frames of 640 x 480 at 10 fps; tracks: id, class, {frame: box ltrb}, confidence
VIDEO = ("clip", 640, 480, 8, 10.0)
TRACKS = [
    (1, "car", {f: (10 + 10 * f, 20, 110 + 10 * f, 80) for f in range(0, 5)}, 0.9),
    (2, "person", {f: (200, 100 + 5 * f, 260, 300 + 5 * f) for f in range(2, 7)}, 0.8),
]


def mask_array(rects: list[tuple[int, int, int, int]], w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    for y0, y1, x0, x1 in rects:
        m[y0:y1, x0:x1] = True
    return m


def size(image: str) -> tuple[int, int]:
    return next((w, h) for n, w, h in IMAGES if n == image)


def truth() -> dict[str, Any]:
    return {
        "images": [{"name": n, "width": w, "height": h} for n, w, h in IMAGES],
        "classes": CLASSES, "skeleton": SKELETON,
        "boxes": [{"image": i, "class": c, "box": [x0, y0, x1, y1], "confidence": s, "attributes": a}
                  for i, c, x0, y0, x1, y1, s, a in BOXES],
        "polygons": [{"image": i, "class": c, "points": p, "confidence": s} for i, c, p, s in POLYGONS],
        "rotated": [{"image": i, "class": c, "center": [cx, cy], "size": [w, h], "angle": t, "confidence": s}
                    for i, c, cx, cy, w, h, t, s in ROTATED],
        "polylines": [{"image": i, "class": c, "points": p} for i, c, p in POLYLINES],
        "points": [{"image": i, "class": c, "point": p} for i, c, p in POINTS],
        "keypoints": [{"image": i, "class": c, "box": b, "points": p, "confidence": s}
                      for i, c, b, p, s in KEYPOINTS],
        "masks": [{"image": i, "class": c, "rects": r} for i, c, r in MASKS],
        "tags": [{"image": i, "tag": t} for i, t in TAGS],
        "video": {"name": VIDEO[0], "width": VIDEO[1], "height": VIDEO[2], "frames": VIDEO[3], "fps": VIDEO[4]},
        "tracks": [{"id": t, "class": c, "boxes": {str(f): b for f, b in boxes.items()}, "confidence": s}
                   for t, c, boxes, s in TRACKS],
    }


def out_dir(writer: str, fmt: str) -> Path:
    """The directory the writer writes into: ``files/`` of the case (written.json sits beside it)."""
    d = ROOT / writer / fmt
    if d.exists():
        shutil.rmtree(d)
    (d / "files").mkdir(parents=True)
    return d / "files"


def note(d: Path, writer: str, reader: str, carries: list[str], tolerance: float, source: str = "files",
         **options: Any) -> None:
    """written.json: who wrote the files, how predport reads them, what they carry, and to what precision
    (``tolerance``: pixels, the most the printed numbers may differ from the scene's)."""
    dist = {"fiftyone": "fiftyone", "ultralytics": "ultralytics"}.get(writer, writer)
    (d.parent / "written.json").write_text(json.dumps({
        "writer": writer, "version": metadata.version(dist), "reader": reader, "source": source,
        "options": options, "carries": carries, "tolerance": tolerance}, indent=1) + "\n")


def _amend(d: Path, **more: Any) -> None:
    info = d.parent / "written.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), **more}, indent=1) + "\n")


def blank_images(d: Path, names: list[tuple[str, int, int]] | None = None) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for n, w, h in names or IMAGES:
        Image.new("1", (w, h)).save(d / n)  # (a blank 1-bit image: the files stay small)


def rgb(w: int, h: int) -> np.ndarray:
    return np.full((h, w, 3), 90, dtype=np.uint8)


# -- globox ------------------------------------------------------------------------------------------------------

def globox() -> None:
    from globox import Annotation, AnnotationSet, BoundingBox

    def dataset(conf: bool) -> AnnotationSet:
        return AnnotationSet([Annotation(image_id=n, image_size=(w, h), boxes=[
            BoundingBox.create(label=c, coords=(x0, y0, x1, y1), confidence=s if conf else None)
            for i, c, x0, y0, x1, y1, s, _ in BOXES if i == n]) for n, w, h in IMAGES])

    ids = {c: k for k, c in enumerate(CLASSES)}
    for fmt, conf_first in (("yolo_darknet", True), ("yolo_v5", False)):
        d = out_dir("globox", fmt)
        blank_images(d)
        (d / "classes.txt").write_text("\n".join(CLASSES) + "\n")
        getattr(dataset(True), f"save_{fmt}")(d, label_to_id=ids)
        note(d, "globox", "yolo", ["boxes", "confidence"], 1e-3, confidence_column="first" if conf_first else "last")
    d = out_dir("globox", "voc")
    dataset(False).save_pascal_voc(d)
    note(d, "globox", "voc", ["boxes"], 1e-9)
    d = out_dir("globox", "labelme")
    dataset(False).save_labelme(d)
    note(d, "globox", "labelme", ["boxes"], 1e-9)
    d = out_dir("globox", "cvat")
    dataset(False).save_cvat(d / "annotations.xml")
    note(d, "globox", "cvat_images", ["boxes"], 1e-9)


# -- supervision ---------------------------------------------------------------------------------------------------

def supervision() -> None:
    import supervision as sv

    ids = {c: k for k, c in enumerate(CLASSES)}

    def detections(n: str) -> sv.Detections:
        rows = [b for b in BOXES if b[0] == n]
        if not rows:
            return sv.Detections.empty()
        return sv.Detections(xyxy=np.array([[x0, y0, x1, y1] for _, _, x0, y0, x1, y1, _, _ in rows], float),
                             class_id=np.array([ids[c] for _, c, *_ in rows]),
                             confidence=np.array([s for *_, s, _ in rows]))

    def obb(n: str) -> sv.Detections:
        rows = [r for r in ROTATED if r[0] == n]
        if not rows:
            return sv.Detections.empty()
        corners = np.array([_corners(cx, cy, w, h, t) for _, _, cx, cy, w, h, t, _ in rows])
        det = sv.Detections(xyxy=np.concatenate([corners.min(1), corners.max(1)], axis=1),
                            class_id=np.array([ids[c] for _, c, *_ in rows]))
        det.data["xyxyxyxy"] = corners
        return det

    images = {n: rgb(w, h) for n, w, h in IMAGES}
    for fmt, make, kwargs, carries in (("yolo", detections, {}, ["boxes"]), ("yolo_obb", obb, {"is_obb": True},
                                                                                ["rotated"])):
        d = out_dir("supervision", fmt)
        ds = sv.DetectionDataset(classes=CLASSES, images=images, annotations={n: make(n) for n in images})
        ds.as_yolo(images_directory_path=str(d / "images"), annotations_directory_path=str(d / "labels"),
                   data_yaml_path=str(d / "data.yaml"), **kwargs)
        note(d, "supervision", "yolo", carries, 5e-3)  # (5 decimals of the image's size)
    d = out_dir("supervision", "voc")
    ds = sv.DetectionDataset(classes=CLASSES, images=images, annotations={n: detections(n) for n in images})
    ds.as_pascal_voc(images_directory_path=str(d / "JPEGImages"), annotations_directory_path=str(d / "Annotations"))
    # (supervision writes the devkit's 1-based, inclusive boxes, and whole pixels)
    note(d, "supervision", "voc", ["boxes"], 1.0, pixel_origin=1)


def _corners(cx: float, cy: float, w: float, h: float, t: float) -> list[list[float]]:
    """Corners of a box turned t degrees clockwise on screen, from its top-left corner, clockwise."""
    a = math.radians(t)
    out = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        out.append([cx + dx * math.cos(a) - dy * math.sin(a), cy + dx * math.sin(a) + dy * math.cos(a)])
    return out


# -- datumaro -------------------------------------------------------------------------------------------------------

def datumaro() -> None:
    import datumaro as dm
    from datumaro.components.annotation import (
        AnnotationType,
        Bbox,
        LabelCategories,
        Mask,
        Points,
        Polygon,
        PolyLine,
        RotatedBbox,
    )
    from datumaro.components.media import Image as DmImage

    ids = {c: k for k, c in enumerate(CLASSES)}
    categories = {AnnotationType.label: LabelCategories.from_iterable([(c, "", {"score", "occluded"})
                                                                       for c in CLASSES])}

    def dataset(kinds: set[str]) -> Any:
        items = []
        for n, w, h in IMAGES:
            anns: list[Any] = []
            if "boxes" in kinds:
                anns += [Bbox(x0, y0, x1 - x0, y1 - y0, label=ids[c],
                              attributes={"score": s, **({"occluded": a["occluded"]} if "occluded" in a else {})})
                         for i, c, x0, y0, x1, y1, s, a in BOXES if i == n]
            if "polygons" in kinds:
                anns += [Polygon([v for p in pts for v in p], label=ids[c], attributes={"score": s})
                         for i, c, pts, s in POLYGONS if i == n]
            if "rotated" in kinds:
                anns += [RotatedBbox(cx, cy, bw, bh, t, label=ids[c], attributes={"score": s})
                         for i, c, cx, cy, bw, bh, t, s in ROTATED if i == n]
            if "polylines" in kinds:
                anns += [PolyLine([v for p in pts for v in p], label=ids[c]) for i, c, pts in POLYLINES if i == n]
            if "points" in kinds:
                anns += [Points(list(p), label=ids[c]) for i, c, p in POINTS if i == n]
            if "masks" in kinds:
                anns += [Mask(mask_array(r, w, h).astype(np.uint8), label=ids[c]) for i, c, r in MASKS if i == n]
            subset = "val" if n == "c.png" else "train"
            items.append(dm.DatasetItem(id=Path(n).stem, subset=subset, media=DmImage.from_numpy(rgb(w, h)),
                                        annotations=anns))
        return dm.Dataset.from_iterable(items, categories=categories)

    for fmt, export, reader, kinds, carries, tol, opts in (
            ("yolo", "yolo", "yolo", {"boxes"}, ["boxes"], 5e-3, {}),
            ("yolo_ultralytics", "yolo_ultralytics", "yolo", {"boxes"}, ["boxes"], 5e-3, {}),
            ("voc", "voc_detection", "voc", {"boxes"}, ["boxes", "confidence", "attributes"], 1e-9, {}),
            ("kitti", "kitti_detection", "kitti", {"boxes"}, ["boxes", "confidence", "attributes"], 1e-9, {}),
            ("label_me", "label_me", "labelme", {"polygons", "masks"}, ["polygons", "masks"], 1e-9, {}),
            # (CVAT exports COCO through datumaro: per-annotation "attributes", score among them)
            ("coco", "coco_instances", "coco", {"boxes", "polygons"}, ["boxes", "confidence", "polygons",
                                                                        "attributes"], 1e-9, {}),
            ("cvat", "cvat", "cvat_images", {"boxes", "polygons", "rotated", "polylines", "points", "masks"},
             ["boxes", "confidence", "polygons", "rotated", "polylines", "points", "masks", "attributes"], 5e-3,
             {})):
        d = out_dir("datumaro", fmt)
        dataset(kinds).export(str(d), export, save_media=True)
        note(d, "datumaro", reader, carries, tol, **opts)
        if fmt != "kitti":  # (datumaro saves the images as JPEG, and names them so, except for KITTI)
            _amend(d, rename=".jpg")
    # a video: MOT ground truth, one item per frame (ids are the 1-based frame numbers MOT uses)
    name, w, h, count, _ = VIDEO
    items = []
    for f in range(count):
        anns = [Bbox(b[f][0], b[f][1], b[f][2] - b[f][0], b[f][3] - b[f][1], label=ids[c],
                     attributes={"track_id": t, "occluded": False}) for t, c, b, _ in TRACKS if f in b]
        items.append(dm.DatasetItem(id=str(f + 1), media=DmImage.from_numpy(rgb(w, h)), annotations=anns))
    d = out_dir("datumaro", "mot_seq_gt")
    dm.Dataset.from_iterable(items, categories=categories).export(str(d / name), "mot_seq_gt", save_media=True)
    note(d, "datumaro", "mot", ["tracks"], 1e-9, source=f"files/{name}")


# -- norfair -------------------------------------------------------------------------------------------------------

def norfair() -> None:
    """Tracker results, as norfair's PredictionsTextFile writes them for MOTChallenge (confidence -1)."""
    from norfair import Detection, Tracker
    from norfair.metrics import InformationFile, PredictionsTextFile

    name, w, h, count, fps = VIDEO
    d = out_dir("norfair", "mot")
    seq = d / "sequences" / name
    seq.mkdir(parents=True)
    blank_images(seq / "img1", [(f"{f + 1:06d}.jpg", w, h) for f in range(count)])
    # (the sequence's description, as MOTChallenge ships it and norfair's InformationFile reads it)
    import configparser

    ini = configparser.ConfigParser()
    ini.optionxform = str  # type: ignore[assignment,method-assign]
    ini["Sequence"] = {"name": name, "imDir": "img1", "frameRate": str(int(fps)), "seqLength": str(count),
                       "imWidth": str(w), "imHeight": str(h), "imExt": ".jpg"}
    with open(seq / "seqinfo.ini", "w") as f:
        ini.write(f, space_around_delimiters=False)
    out = PredictionsTextFile(input_path=str(seq), save_path=str(d), information_file=InformationFile(
        str(seq / "seqinfo.ini")))

    class Tracked:  # (what PredictionsTextFile reads of norfair's TrackedObject: an id and a 2 x 2 estimate)
        def __init__(self, ident: int, box: tuple[float, ...]) -> None:
            self.id = ident
            self.estimate = np.array([[box[0], box[1]], [box[2], box[3]]], float)

    del Detection, Tracker
    for f in range(count):
        out.update([Tracked(t, b[f]) for t, _, b, _ in TRACKS if f in b], frame_number=f + 1)
    note(d, "norfair", "mot", ["tracks"], 1e-9, source="files/predictions", sequences="files/sequences")
    _amend(d, classes=False)  # (tracker results have no classes: predport reads pedestrians)


# -- labelme -------------------------------------------------------------------------------------------------------

def labelme() -> None:
    """LabelMe JSON, saved by labelme's LabelFile; shapes formatted as the labelme app formats them (a mask as
    labelme.utils.img_arr_to_b64 of its crop)."""
    from labelme import LabelFile, utils

    d = out_dir("labelme", "json")
    blank_images(d)
    for n, w, h in IMAGES:
        shapes: list[dict[str, Any]] = []

        def shape(label: str, points: list[Any], kind: str, flags: dict[str, bool] | None = None,
                  mask: Any = None, score: float | None = None, shapes: list[dict[str, Any]] = shapes) -> None:
            shapes.append({"label": label, "points": [[float(x), float(y)] for x, y in points], "group_id": None,
                           "description": "", "shape_type": kind, "flags": flags or {},
                           "mask": None if mask is None else utils.img_arr_to_b64(mask.astype(np.uint8)),
                           # (a model's score, as X-AnyLabeling keeps it beside labelme's own keys)
                           **({"score": score} if score is not None else {})})

        for i, c, x0, y0, x1, y1, s, a in BOXES:
            if i == n:
                shape(c, [(x0, y0), (x1, y1)], "rectangle", {k: bool(v) for k, v in a.items()}, score=s)
        for i, c, pts, s in POLYGONS:
            if i == n:
                shape(c, pts, "polygon", score=s)
        for i, c, cx, cy, bw, bh, t, s in ROTATED:
            if i == n:
                shape(c, _corners(cx, cy, bw, bh, t), "oriented_rectangle", score=s)
        for i, c, pts in POLYLINES:
            if i == n:
                shape(c, pts, "linestrip")
        for i, c, p in POINTS:
            if i == n:
                shape(c, [p], "point")
        for i, c, _, pts, s in KEYPOINTS:  # (a points shape: the vertices in template order, no visibility)
            if i == n:
                shape(c, [(x, y) for x, y, _ in pts], "points", score=s)
        for i, c, rects in MASKS:
            if i == n:
                m = mask_array(rects, w, h)
                ys, xs = np.nonzero(m)
                x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
                shape(c, [(x0, y0), (x1, y1)], "mask", mask=m[y0:y1 + 1, x0:x1 + 1])
        flags = {t: True for i, t in TAGS if i == n}
        LabelFile().save(str(d / (Path(n).stem + ".json")), shapes, n, h, w, flags=flags)
    note(d, "labelme", "labelme", ["boxes", "confidence", "polygons", "rotated", "polylines", "points", "keypoints",
                                   "masks", "attributes", "tags"], 1e-6)
    _amend(d, visibility=[None] * len(SKELETON))  # (LabelMe has no visibility)


# -- ultralytics ----------------------------------------------------------------------------------------------------

def ultralytics() -> None:
    """Results.save_txt(save_conf=True), as ``predict(save_txt=True, save_conf=True)`` writes predictions."""
    import torch
    from ultralytics.engine.results import Results

    names = dict(enumerate(CLASSES))
    ids = {c: k for k, c in enumerate(CLASSES)}
    for task in ("detect", "obb", "pose", "segment"):
        d = out_dir("ultralytics", task)
        blank_images(d / "images")
        (d / "data.yaml").write_text(f"names: {json.dumps(CLASSES)}\n"
                                     + (f"kpt_shape: [{len(SKELETON)}, 3]\n" if task == "pose" else ""))
        for n, w, h in IMAGES:
            kwargs: dict[str, Any] = {}
            if task == "detect":
                rows = [[x0, y0, x1, y1, s, ids[c]] for i, c, x0, y0, x1, y1, s, _ in BOXES if i == n]
                kwargs["boxes"] = torch.tensor(rows or np.zeros((0, 6)), dtype=torch.float64)
            elif task == "obb":
                rows = [[cx, cy, bw, bh, math.radians(t), s, ids[c]] for i, c, cx, cy, bw, bh, t, s in ROTATED
                        if i == n]
                kwargs["obb"] = torch.tensor(rows or np.zeros((0, 7)), dtype=torch.float64)
            elif task == "pose":
                found = [k for k in KEYPOINTS if k[0] == n]
                kwargs["boxes"] = torch.tensor([[*b, s, ids[c]] for _, c, b, _, s in found] or np.zeros((0, 6)),
                                               dtype=torch.float64)
                kwargs["keypoints"] = torch.tensor([[[x, y, SCORES[v]] for x, y, v in p] for _, _, _, p, _ in found]
                                                   or np.zeros((0, len(SKELETON), 3)), dtype=torch.float64)
            else:  # segment: masks of the polygons (ultralytics traces their contours)
                found = [p for p in POLYGONS if p[0] == n]
                masks = [_fill(pts, w, h) for _, _, pts, _ in found]
                boxes = [[*np.min(pts, 0), *np.max(pts, 0), s, ids[c]] for _, c, pts, s in found]
                kwargs["boxes"] = torch.tensor(boxes or np.zeros((0, 6)), dtype=torch.float64)
                if masks:
                    kwargs["masks"] = torch.tensor(np.stack(masks), dtype=torch.float32)
            r = Results(orig_img=rgb(w, h), path=n, names=names, **kwargs)
            r.save_txt(d / "labels" / (Path(n).stem + ".txt"), save_conf=True)
        carries = {"detect": ["boxes"], "obb": ["rotated"], "pose": ["keypoints"], "segment": ["traced"]}[task]
        note(d, "ultralytics", "yolo", [*carries, "confidence"], 5e-3)
        if task == "pose":  # (ultralytics writes keypoint scores, not flags: visible when above 0.5)
            _amend(d, visibility=["visible", "visible", "invisible"])
    ultralytics_track()


def _fill(points: list[tuple[float, float]], w: int, h: int) -> np.ndarray:
    from PIL import ImageDraw

    im = Image.new("1", (w, h))
    ImageDraw.Draw(im).polygon([tuple(p) for p in points], fill=1)
    return np.asarray(im, dtype=np.uint8)


def ultralytics_track() -> None:
    """A tracker's results (``track(save_txt=True, save_conf=True)``): per frame image, ``c cx cy w h conf id``;
    the frames are made one video by an --image-map."""
    import torch
    from ultralytics.engine.results import Results

    name, w, h, count, _ = VIDEO
    ids = {c: k for k, c in enumerate(CLASSES)}
    d = out_dir("ultralytics", "track")
    frames = [(f"{name}_{f:06d}.png", w, h) for f in range(count)]
    blank_images(d / "images", frames)
    (d / "data.yaml").write_text(f"names: {json.dumps(CLASSES)}\n")
    for f, (n, _, _) in enumerate(frames):
        rows = [[*b[f], t, s, ids[c]] for t, c, b, s in TRACKS if f in b]
        r = Results(orig_img=rgb(w, h), path=n, names=dict(enumerate(CLASSES)),
                    boxes=torch.tensor(rows or np.zeros((0, 7)), dtype=torch.float64))
        r.save_txt(d / "labels" / (Path(n).stem + ".txt"), save_conf=True)
    # (the map from the frame images to the video: a configuration file, not the writer's output)
    (d.parent / "image-map.json").write_text(json.dumps({n: {"title": name, "frame": f}
                                                         for f, (n, _, _) in enumerate(frames)}, indent=1) + "\n")
    note(d, "ultralytics", "yolo", ["tracks", "confidence"], 5e-3, image_map="image-map.json")


# -- fiftyone -------------------------------------------------------------------------------------------------------

def fiftyone() -> None:
    """FiftyOne's KITTI and CVAT (image and video) annotation writers, from FiftyOne labels (relative
    coordinates, as FiftyOne holds them)."""
    import fiftyone.core.labels as fol
    import fiftyone.core.metadata as fom
    import fiftyone.utils.cvat as fouc
    import fiftyone.utils.kitti as fouk

    def detections(n: str, w: int, h: int) -> Any:
        return fol.Detections(detections=[
            fol.Detection(label=c, bounding_box=[x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h], confidence=s)
            for i, c, x0, y0, x1, y1, s, _ in BOXES if i == n])

    d = out_dir("fiftyone", "kitti")
    blank_images(d / "data")
    for n, w, h in IMAGES:
        (d / "labels").mkdir(exist_ok=True)
        fouk.KITTIAnnotationWriter().write(detections(n, w, h), fom.ImageMetadata(width=w, height=h),
                                           str(d / "labels" / (Path(n).stem + ".txt")))
    note(d, "fiftyone", "kitti", ["boxes", "confidence"], 1.0)  # (FiftyOne writes whole pixels)

    d = out_dir("fiftyone", "cvat_image")
    blank_images(d / "data")
    images = []
    for k, (n, w, h) in enumerate(IMAGES):
        labels = {"detections": detections(n, w, h),
                  "polygons": fol.Polylines(polylines=[
                      fol.Polyline(label=c, points=[[(x / w, y / h) for x, y in pts]], closed=True, filled=True)
                      for i, c, pts, _ in POLYGONS if i == n] + [
                      fol.Polyline(label=c, points=[[(x / w, y / h) for x, y in pts]], closed=False, filled=False)
                      for i, c, pts in POLYLINES if i == n]),
                  "points": fol.Keypoints(keypoints=[fol.Keypoint(label=c, points=[(p[0] / w, p[1] / h)])
                                                     for i, c, p in POINTS if i == n]),
                  "tags": fol.Classifications(classifications=[fol.Classification(label=t) for i, t in TAGS
                                                               if i == n])}
        image = fouc.CVATImage.from_labels(labels, fom.ImageMetadata(width=w, height=h))
        image.id, image.name = k, n
        images.append(image)
    fouc.CVATImageAnnotationWriter().write(fouc.CVATTaskLabels.from_cvat_images(images), images,
                                           str(d / "annotations.xml"), id=1, name="scene")
    note(d, "fiftyone", "cvat_images", ["boxes", "polygons", "polylines", "points", "tags"], 1.0,
         source="files/annotations.xml")

    d = out_dir("fiftyone", "cvat_video")
    name, w, h, count, fps = VIDEO
    tracks = [fouc.CVATTrack.from_labels(t, {f + 1: fol.Detection(label=c, bounding_box=[
        b[0] / w, b[1] / h, (b[2] - b[0]) / w, (b[3] - b[1]) / h]) for f, b in boxes.items()}, (w, h))
              for t, c, boxes, _ in TRACKS]
    fouc.CVATVideoAnnotationWriter().write(
        fouc.CVATTaskLabels.from_cvat_tracks(tracks), tracks,
        fom.VideoMetadata(total_frame_count=count, frame_width=w, frame_height=h, frame_rate=fps),
        str(d / "annotations.xml"), id=1, name=name)
    note(d, "fiftyone", "cvat_video", ["tracks"], 1.0, source="files/annotations.xml")


WRITERS = {"globox": globox, "supervision": supervision, "datumaro": datumaro, "norfair": norfair,
           "labelme": labelme, "ultralytics": ultralytics, "fiftyone": fiftyone}


def main() -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT / "truth.json").write_text(json.dumps(truth(), indent=1) + "\n")
    wrote = []
    for name, make in WRITERS.items():
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        make()
        wrote.append(name)
    print("wrote:", ", ".join(wrote) or "nothing (no writer importable here)", file=sys.stderr)


if __name__ == "__main__":
    main()
