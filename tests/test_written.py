"""Files written by the tools users use (globox, supervision, datumaro, labelme, ultralytics, fiftyone, norfair:
scripts/make-writer-data.py), read by predport and parsed back by the encord SDK, against the scene they were
written from: every class, geometry (to the precision each file prints), confidence and track."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import DATA
from predport import plugins
from readers_kit import answers, classifications, convert, view

WRITTEN = DATA / "written"
TRUTH = json.loads((WRITTEN / "truth.json").read_text())
CASES = sorted(p.parent for p in WRITTEN.glob("*/*/written.json"))
SHAPE = {"boxes": "bounding_box", "polygons": "polygon", "rotated": "rotatable_bounding_box",
         "polylines": "polyline", "points": "point", "keypoints": "skeleton", "masks": "bitmask",
         "tracks": "bounding_box"}
VISIBILITY = {2: "visible", 1: "occluded", 0: "invisible"}


def expected(carries: list[str], info: dict[str, Any], case: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What the SDK should see, per data unit title, in readers_kit.view's form."""
    conf = "confidence" in carries
    out: dict[str, list[tuple[Any, ...]]] = {}

    def add(title: str, cls: str, kind: str, g: Any, c: float | None, frame: int = 0) -> None:
        out.setdefault(title, []).append((cls, frame, kind, g, c if conf and c is not None else 1.0))

    for n in TRUTH["images"]:
        if "tracks" not in carries:
            out[n["name"]] = []
    if "boxes" in carries:
        for b in TRUTH["boxes"]:
            x0, y0, x1, y1 = b["box"]
            add(b["image"], b["class"], "BoundingBox", (x0, y0, x1 - x0, y1 - y0), b["confidence"])
    if "polygons" in carries:
        for p in TRUTH["polygons"]:
            add(p["image"], p["class"], "Polygon", [[[tuple(v) for v in p["points"]]]], p["confidence"])
    if "rotated" in carries:
        for r in TRUTH["rotated"]:
            (cx, cy), (w, h) = r["center"], r["size"]
            add(r["image"], r["class"], "RotatableBoundingBox", (cx - w / 2, cy - h / 2, w, h, r["angle"]),
                r["confidence"])
    if "polylines" in carries:
        for p in TRUTH["polylines"]:
            add(p["image"], p["class"], "Polyline", [tuple(v) for v in p["points"]], None)
    if "points" in carries:
        for p in TRUTH["points"]:
            add(p["image"], p["class"], "Point", tuple(p["point"]), None)
    if "keypoints" in carries:
        for k in TRUTH["keypoints"]:
            seen = info.get("visibility") or [VISIBILITY[v] for _, _, v in k["points"]]
            add(k["image"], k["class"], "Skeleton", [(n, x, y, v) for n, (x, y, _), v
                                                     in zip(TRUTH["skeleton"], k["points"], seen, strict=True)],
                k["confidence"])
    if "traced" in carries:  # (polygons the writer traced from masks: the file's own numbers)
        for i in TRUTH["images"]:
            text = (case / "files" / "labels" / (Path(i["name"]).stem + ".txt"))
            for line in text.read_text().splitlines() if text.is_file() else []:
                k, *v = line.split()
                xy = [(float(v[j]) * i["width"], float(v[j + 1]) * i["height"]) for j in range(0, len(v) - 1, 2)]
                add(i["name"], TRUTH["classes"][int(k)], "Polygon", [[xy]], float(v[-1]))
    if "masks" in carries:
        for m in TRUTH["masks"]:
            w, h = next((i["width"], i["height"]) for i in TRUTH["images"] if i["name"] == m["image"])
            a = np.zeros((h, w), bool)
            for y0, y1, x0, x1 in m["rects"]:
                a[y0:y1, x0:x1] = True
            ys, xs = np.nonzero(a)
            add(m["image"], m["class"], "Bitmask", (int(a.sum()), int(xs.min()), int(ys.min()), int(xs.max()),
                                                    int(ys.max())), None)
    if "tracks" in carries:
        v = TRUTH["video"]
        for t in TRUTH["tracks"]:
            for f, (x0, y0, x1, y1) in t["boxes"].items():
                add(v["name"], t["class"], "BoundingBox", (x0, y0, x1 - x0, y1 - y0), t["confidence"], int(f))
    return out


def corners(g: tuple[float, ...]) -> list[tuple[float, float]]:
    """A rotated box's corners, sorted: the same rectangle may be written with w and h swapped, turned 90
    degrees further."""
    x, y, w, h, t = g
    cx, cy, a = x + w / 2, y + h / 2, math.radians(t)
    c, s = math.cos(a), math.sin(a)
    return sorted((round(cx + dx * c - dy * s, 6), round(cy + dx * s + dy * c, 6))
                  for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)))


def same(w: tuple[Any, ...], g: tuple[Any, ...], tol: float) -> bool:
    """One expected annotation and one written: class, frame and kind equal, numbers within ``tol``."""
    if not close(w[:3], g[:3], 0):
        return False
    if w[2] == "RotatableBoundingBox":
        return close(corners(w[3]), corners(g[3]), tol) and close(w[4:], g[4:], tol)
    return close(w[3:], g[3:], tol)


def close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, abs_tol=tol)
    return bool(a == b)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_written_files_convert_exactly(case: Path, tmp_path: Path) -> None:
    info = json.loads((case / "written.json").read_text())
    carries = info["carries"]
    source = case / info["source"]
    assert plugins.load().detect(source).name == info["reader"], "detected as another format"
    objects: dict[str, list[str]] = {c: [] for c in TRUTH["classes"]}  # (each class in the shapes it has)
    for kind in carries:
        for x in (TRUTH[kind] if kind in SHAPE else []):
            if SHAPE[kind] not in objects[x["class"]]:
                objects[x["class"]].append(SHAPE[kind])
    if not info.get("classes", True):
        objects = {"pedestrian": ["bounding_box"]}
    attrs = {c: [{"name": "occluded", "type": "radio", "options": ["yes", "no"]}] for c in ("car", "person")}
    options = {k: str(case / v) if k in ("sequences", "images", "image_map") else v
               for k, v in info["options"].items()}
    tags = {"Time of day": {"type": "radio", "options": ["daytime", "night"]}} if "tags" in carries else None
    if "traced" in carries:
        objects["person"].append("polygon")
        objects["car"].append("polygon")
    report, rows, ont = convert(tmp_path, source, objects, skeletons={"person": TRUTH["skeleton"]},
                                attributes=attrs if "attributes" in carries else None, classifications=tags,
                                **options)
    errors = [str(p) for p in report.problems if p.severity == "error"]
    assert not errors, errors[:5]
    want = expected(carries, info, case)
    got = {title: view(row, ont) for title, row in rows.items()}
    if info.get("rename"):  # (datumaro saves the images as JPEG, and names them so)
        want = {str(Path(t).with_suffix(info["rename"])): v for t, v in want.items()}
    if not info.get("classes", True):  # (tracker results: no classes, every track is a pedestrian)
        want = {t: [("pedestrian", *w[1:]) for w in v] for t, v in want.items()}
    assert sorted(got) == sorted(want), "data units"
    tol = info["tolerance"]
    for title in want:
        left, right = sorted(want[title], key=repr), list(got[title])
        for w in left:  # (each expected annotation matches one written, to the file's precision)
            match = next((g for g in right if same(w, g, tol)), None)
            assert match is not None, f"{title}: {w} not among {right}"
            right.remove(match)
        assert not right, f"{title}: unexpected {right}"
    if "tags" in carries:
        for t in TRUTH["tags"]:
            title = t["image"] if not info.get("rename") else str(Path(t["image"]).with_suffix(info["rename"]))
            assert classifications(rows[title], ont) == [("Time of day", [(0, 0)], [("Time of day", [t["tag"]])])]
    if "attributes" in carries:
        found = Counter((cls, a, repr(v)) for row in rows.values() for cls, a, v, *_ in answers(row, ont))
        want_answers = Counter((b["class"], "occluded", repr(["yes" if b["attributes"]["occluded"] else "no"]))
                               for b in TRUTH["boxes"] if "occluded" in b["attributes"])
        assert found & want_answers == want_answers, found
        # (some writers write the flag for every object: 0 where the scene has none)
        assert all(v == repr(["no"]) for _, _, v in found - want_answers), found
