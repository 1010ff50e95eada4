"""Seeded synthetic COCO results workloads for the benchmark (written once per seed into bench/work/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as cocomask

W, H = 640, 480
N_CATEGORIES = 80


def categories() -> list[dict[str, Any]]:
    return [{"id": i + 1, "name": f"class_{i + 1:02d}"} for i in range(N_CATEGORIES)]


def ontology(shape: str) -> dict[str, Any]:
    return {"objects": [{"id": str(c["id"]), "name": c["name"], "color": "#D33115", "shape": shape,
                         "featureNodeHash": f"obj{c['id']:05d}"} for c in categories()], "classifications": []}


def images(n: int) -> dict[str, Any]:
    return {"images": [{"id": i + 1, "file_name": f"img_{i + 1:06d}.jpg", "width": W, "height": H}
                       for i in range(n)], "categories": categories()}


def boxes(n: int, n_images: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    image = rng.integers(1, n_images + 1, n)
    cat = rng.integers(1, N_CATEGORIES + 1, n)
    w = rng.uniform(4, W / 3, n)
    h = rng.uniform(4, H / 3, n)
    x = rng.uniform(0, 1, n) * (W - w)
    y = rng.uniform(0, 1, n) * (H - h)
    score = rng.uniform(0.01, 1.0, n)
    return [{"image_id": int(image[i]), "category_id": int(cat[i]), "bbox": [x[i], y[i], w[i], h[i]],
             "score": round(float(score[i]), 5)} for i in range(n)]


def masks(n: int, n_images: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for i in range(n):
        cx, cy = rng.uniform(40, W - 40), rng.uniform(40, H - 40)
        rx, ry = rng.uniform(8, 80), rng.uniform(8, 80)
        m = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        if i % 3 == 0:  # a hole in every third mask
            m &= ((xx - cx) / (rx / 3)) ** 2 + ((yy - cy) / (ry / 3)) ** 2 > 1.0
        rle = cocomask.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append({"image_id": int(rng.integers(1, n_images + 1)),
                    "category_id": int(rng.integers(1, N_CATEGORIES + 1)),
                    "segmentation": {"size": [H, W], "counts": rle["counts"].decode()},
                    "score": round(float(rng.uniform(0.01, 1.0)), 5)})
    return out


def write(work: Path, name: str, n: int, n_images: int, kind: str, seed: int) -> dict[str, Path]:
    """Write (once) the results file, its --images file and an ontology for a workload."""
    work.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{n}-{n_images}-s{seed}"
    paths = {"results": work / f"{stem}.json", "images": work / f"{stem}-images.json",
             "ontology": work / f"{stem}-ontology.json"}
    if not all(p.exists() for p in paths.values()):
        rng = np.random.default_rng(seed)
        data = boxes(n, n_images, rng) if kind == "bounding_box" else masks(n, n_images, rng)
        paths["results"].write_text(json.dumps(data))
        paths["images"].write_text(json.dumps(images(n_images)))
        paths["ontology"].write_text(json.dumps(ontology(kind)))
    return paths


def evaluation(n_preds: int, n_images: int, seed: int, work: Path) -> dict[str, Path]:
    """Ground truth (a fifth as many boxes as predictions, crowds included) and predictions drawn from it:
    jittered copies (most of the right class), and false ones; scores rounded, so there are ties."""
    work.mkdir(parents=True, exist_ok=True)
    stem = f"eval-{n_preds}-{n_images}-s{seed}"
    paths = {"truth": work / f"{stem}-truth.json", "results": work / f"{stem}-results.json",
             "ontology": work / f"{stem}-ontology.json"}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = np.random.default_rng(seed)
    n_gt = n_preds // 5
    gt = boxes(n_gt, n_images, rng)
    anns = []
    for k, b in enumerate(gt):
        x, y, w, h = b["bbox"]
        anns.append({"id": k + 1, "image_id": b["image_id"], "category_id": b["category_id"], "bbox": [x, y, w, h],
                     "area": w * h, "iscrowd": int(rng.random() < 0.01)})
    n_near = n_preds * 4 // 5
    src = rng.integers(0, n_gt, n_near)
    jitter = rng.normal(0, 0.12, (n_near, 4))
    wrong = rng.random(n_near) < 0.1
    other = rng.integers(1, N_CATEGORIES + 1, n_near)
    score = np.round(rng.uniform(0.01, 1.0, n_near), 3)
    preds = []
    for i in range(n_near):
        a = anns[src[i]]
        x, y, w, h = a["bbox"]
        nw, nh = max(2.0, w * (1 + jitter[i, 2])), max(2.0, h * (1 + jitter[i, 3]))
        nx = min(max(0.0, x + w * jitter[i, 0]), W - nw)
        ny = min(max(0.0, y + h * jitter[i, 1]), H - nh)
        preds.append({"image_id": a["image_id"], "category_id": int(other[i]) if wrong[i] else a["category_id"],
                      "bbox": [nx, ny, nw, nh], "score": float(score[i])})
    preds += boxes(n_preds - n_near, n_images, rng)
    paths["truth"].write_text(json.dumps({**images(n_images), "annotations": anns}))
    paths["results"].write_text(json.dumps(preds))
    paths["ontology"].write_text(json.dumps(ontology("bounding_box")))
    return paths


def yolo(work: Path, boxes_paths: dict[str, Path]) -> Path:
    """(Once) the boxes workload as a YOLO dataset in the Ultralytics layout: data.yaml, images/ (blank PNGs of
    the images' size, whose headers predport reads), labels/ with one ``c cx cy w h score`` line per box, the
    numbers as ultralytics' Results.save_txt prints them ("%g")."""
    root = work / (boxes_paths["results"].stem + "-yolo")
    if (root / "done").exists():
        return root
    from PIL import Image

    meta = json.loads(boxes_paths["images"].read_text())
    names = [c["name"] for c in meta["categories"]]
    index = {c["id"]: k for k, c in enumerate(meta["categories"])}
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(f"path: .\ntrain: images\nnames: {json.dumps(names)}\n")
    blank = root / "blank.png"
    Image.new("1", (W, H)).save(blank)
    data = blank.read_bytes()
    lines: dict[int, list[str]] = {im["id"]: [] for im in meta["images"]}
    for a in json.loads(boxes_paths["results"].read_text()):
        x, y, w, h = a["bbox"]
        row = (index[a["category_id"]], (x + w / 2) / W, (y + h / 2) / H, w / W, h / H, a["score"])
        lines[a["image_id"]].append(("%g " * len(row)).rstrip() % row)
    for im in meta["images"]:
        stem = Path(im["file_name"]).stem
        (root / "images" / f"{stem}.png").write_bytes(data)
        (root / "labels" / f"{stem}.txt").write_text("\n".join(lines[im["id"]]) + "\n")
    blank.unlink()
    (root / "done").write_text("")
    return root


def shards(work: Path, boxes_paths: dict[str, Path], n: int) -> list[Path]:
    """(Once) the boxes workload's results as ``n`` results files, split by image (as a detector run on ``n``
    machines writes them), read with the one shared --images file."""
    out = [work / f"{boxes_paths['results'].stem}-shard{k:02d}-of-{n}.json" for k in range(n)]
    if all(p.exists() for p in out):
        return out
    anns = json.loads(boxes_paths["results"].read_text())
    for k, path in enumerate(out):
        path.write_text(json.dumps([a for a in anns if a["image_id"] % n == k]))
    return out
