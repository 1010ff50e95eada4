"""Writes the end-to-end notebook's data (run once; the files are committed): 25 images of COCO val2014 from
tests/data/coco (ground truth: boxes, crowds left out; predictions: pycocotools' fake box results for them), an
ontology of the 80 COCO categories as bounding boxes, and two attributes added, deterministically, to show strict and
partial matching: person "pose" (standing / sitting / lying) and car "parked" (yes / no). The ground truth answers
both on every person and car; of the predictions that overlap a true person or car most (IoU >= 0.5), a third
answer correctly, a third wrongly and a third not at all.

    .venv/bin/python examples/end-to-end/make_data.py
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
COCO = HERE.parent.parent / "tests" / "data" / "coco"
ATTRS = {"person": ("pose", ["standing", "sitting", "lying"]), "car": ("parked", ["yes", "no"])}


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def main() -> None:
    gt = json.loads((COCO / "instances_val2014_100.json").read_text())
    results = json.loads((COCO / "instances_val2014_fakebbox100_results.json").read_text())
    images = sorted(gt["images"], key=lambda im: im["id"])[:25]
    ids = {im["id"] for im in images}
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    truth = []
    for a in gt["annotations"]:
        if a["image_id"] in ids and not a.get("iscrowd"):
            ann = {k: a[k] for k in ("id", "image_id", "category_id", "bbox", "area")} | {"iscrowd": 0}
            if cats[a["category_id"]] in ATTRS:
                name, options = ATTRS[cats[a["category_id"]]]
                ann["attributes"] = {name: options[a["id"] % len(options)]}
            truth.append(ann)
    preds = []
    for i, r in enumerate(r for r in results if r["image_id"] in ids):
        p = {k: r[k] for k in ("image_id", "category_id", "bbox", "score")}
        if cats[r["category_id"]] in ATTRS:
            name, options = ATTRS[cats[r["category_id"]]]
            same = [t for t in truth if t["image_id"] == r["image_id"] and t["category_id"] == r["category_id"]]
            best = max(same, key=lambda t: iou(t["bbox"], r["bbox"]), default=None)
            if best is not None and iou(best["bbox"], r["bbox"]) >= 0.5:
                right = best["attributes"][name]
                if i % 3 == 0:
                    p["attributes"] = {name: right}
                elif i % 3 == 1:
                    p["attributes"] = {name: next(o for o in options if o != right)}
        preds.append(p)
    (HERE / "ground-truth.json").write_text(json.dumps(
        {"images": images, "categories": gt["categories"], "annotations": truth}, indent=1) + "\n")
    (HERE / "predictions.json").write_text(json.dumps(preds, indent=1) + "\n")
    objects = []
    for c in gt["categories"]:
        obj = {"id": str(c["id"]), "name": c["name"], "color": "#D33115", "shape": "bounding_box",
               "featureNodeHash": f"coco{c['id']:04d}", "required": False, "archived": False, "attributes": []}
        if c["name"] in ATTRS:
            name, options = ATTRS[c["name"]]
            obj["attributes"] = [{"id": f"{c['id']}.1", "name": name, "type": "radio", "required": False,
                                  "featureNodeHash": f"att{c['id']:05d}", "archived": False, "dynamic": False,
                                  "options": [{"id": f"{c['id']}.1.{k + 1}", "label": o, "value": o,
                                               "featureNodeHash": f"o{c['id']:03d}{k:04d}", "archived": False}
                                              for k, o in enumerate(options)]}]
        objects.append(obj)
    (HERE / "ontology.json").write_text(json.dumps({"objects": objects, "classifications": []}, indent=1) + "\n")
    print(f"{len(images)} images, {len(truth)} truths, {len(preds)} predictions "
          f"({sum('attributes' in p for p in preds)} with an attribute)")


if __name__ == "__main__":
    main()
