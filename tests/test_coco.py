"""The coco reader on real files: every annotation accounted for, every geometry exact."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as cocomask

import predport
from conftest import DATA, coco_ontology, load
from output_kit import same_but_time
from predport.cli import main
from predport.core import rle, trace
from sdk_oracle import parse, sdk_ontology

COCO = DATA / "coco"
GT = COCO / "instances_val2014_100.json"
BBOX = COCO / "instances_val2014_fakebbox100_results.json"
SEGM = COCO / "instances_val2014_fakesegm100_results.json"
KP = COCO / "person_keypoints_val2014_fakekeypoints100_results.json"
COCO_KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                  "right_knee", "left_ankle", "right_ankle"]


def gt_categories() -> list[dict[str, Any]]:
    return load(GT)["categories"]


def convert(tmp_path: Path, src: Path, ontology: Path, **options: Any) -> tuple[predport.Report, Path]:
    out = tmp_path / "out"
    report = predport.convert([src], ontology, "coco-preds", out, fmt="coco", options=options)
    return report, out


def rows(out: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {u["title"]: json.loads((out / u["file"]).read_text()) for u in manifest["units"]}


def objects_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    [du] = row["data_units"].values()
    return du["labels"]["objects"]


def by_image(anns: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for a in anns:
        out.setdefault(a["image_id"], []).append(a)
    return out


def test_bbox_results_every_box_exact_and_accounted_for(tmp_path: Path) -> None:
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "bounding_box")
    report, out = convert(tmp_path, BBOX, ont, images=str(GT))
    assert report.ok, [str(p) for p in report.problems][:5]
    anns = load(BBOX)
    images = {im["id"]: im for im in load(GT)["images"]}
    cats = {c["id"]: c["name"] for c in gt_categories()}
    written = rows(out)
    assert len(written) == 100  # every image of --images, with or without detections
    assert sum(len(objects_of(r)) for r in written.values()) == len(anns) == 734
    per_cat = Counter(cats[a["category_id"]] for a in anns)
    assert report.per_group() == {c: {"converted": n, "reported": 0} for c, n in per_cat.items()}
    for image_id, group in by_image(anns).items():
        im = images[image_id]
        w, h = im["width"], im["height"]
        expected = sorted((cats[a["category_id"]], a["bbox"][0] / w, a["bbox"][1] / h, a["bbox"][2] / w,
                           a["bbox"][3] / h, a["score"]) for a in group)
        got = sorted((o["name"], o["boundingBox"]["x"], o["boundingBox"]["y"], o["boundingBox"]["w"],
                      o["boundingBox"]["h"], o["confidence"]) for o in objects_of(written[im["file_name"]]))
        assert got == expected  # exactly: the same float division, nothing rounded
    # the real SDK parses every row, with the right classes and confidences
    sdk_ont = sdk_ontology(json.loads(ont.read_text()))
    for title, row in list(written.items())[:25]:
        lr = parse(row, sdk_ont)
        got_sdk = sorted((o.object_name, a.confidence) for o in lr.get_object_instances()
                         for a in o.get_annotations())
        assert got_sdk == sorted((o["name"], o["confidence"]) for o in objects_of(row)), title


def test_bbox_results_read_back_as_the_same_coco_detections(tmp_path: Path) -> None:
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "bounding_box")
    report, out = convert(tmp_path, BBOX, ont, images=str(GT))
    assert report.ok
    images = {im["file_name"]: im for im in load(GT)["images"]}
    cat_ids = {c["name"]: c["id"] for c in gt_categories()}
    ontology = predport.Ontology.load(ont)
    back = []
    for unit in predport.read([out], ontology, fmt="encord"):
        im = images[unit["title"]]
        for obj in unit["objects"]:
            [fr] = obj["frames"]
            g = fr["geometry"]
            name = ontology.objects[obj["class"]["hash"]].name
            back.append((im["id"], cat_ids[name], g["x"] * im["width"], g["y"] * im["height"],
                         g["w"] * im["width"], g["h"] * im["height"], fr["confidence"]))
    src = [(a["image_id"], a["category_id"], *a["bbox"], a["score"]) for a in load(BBOX)]
    assert len(back) == len(src)
    for b, s in zip(sorted(back), sorted(src), strict=True):
        assert b[:2] == s[:2] and b[6] == s[6]
        assert np.allclose(b[2:6], s[2:6], rtol=0, atol=1e-9)


def test_segm_results_as_bitmasks_decode_to_the_same_pixels(tmp_path: Path) -> None:
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "bitmask")
    report, out = convert(tmp_path, SEGM, ont, images=str(GT))
    assert report.ok, [str(p) for p in report.problems][:5]
    images = {im["id"]: im for im in load(GT)["images"]}
    written = rows(out)
    anns = load(SEGM)
    assert sum(len(objects_of(r)) for r in written.values()) == len(anns)
    for image_id, group in by_image(anns).items():
        im = images[image_id]
        expected = sorted((a["score"], cocomask.decode(a["segmentation"]).astype(bool).tobytes()) for a in group)
        got = []
        for o in objects_of(written[im["file_name"]]):
            b = o["bitmask"]
            assert (b["width"], b["height"]) == (im["width"], im["height"])
            got.append((o["confidence"], rle.to_mask(b["rleString"], b["width"], b["height"]).tobytes()))
        assert sorted(got) == expected


def test_segm_results_as_polygons_keep_holes_and_report_iou(tmp_path: Path) -> None:
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "polygon")
    report, out = convert(tmp_path, SEGM, ont, images=str(GT))
    assert report.ok
    traced = [p for p in report.problems if p.code == "coco.traced"]
    assert len(traced) == len(load(SEGM)) and all(p.severity == "info" for p in traced)
    assert all(p.message.endswith("IoU with the mask 1.000000") for p in traced)
    assert {p.location.pointer for p in traced} == {f"/{i}/segmentation" for i in range(len(load(SEGM)))}
    images = {im["file_name"]: im for im in load(GT)["images"]}
    holes = 0
    for title, row in rows(out).items():
        im = images[title]
        for o in objects_of(row):
            polys = [[[v * (im["width"] if k % 2 == 0 else im["height"]) for k, v in enumerate(r)] for r in p]
                     for p in o["polygons"]]
            holes += sum(len(p) - 1 for p in polys)
            assert trace.rasterize(polys, im["height"], im["width"]).any()
    assert holes > 0  # the fake masks do have holes, and they survive as holes


def test_gt_polygons_vertex_for_vertex_and_crowd_rle(tmp_path: Path) -> None:
    gt = load(GT)
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "polygon")
    report, out = convert(tmp_path, GT, ont)
    assert report.ok, [str(p) for p in report.problems][:5]
    assert report.problems.by_code["coco.traced"] == 9  # the iscrowd RLE annotations
    written = rows(out)
    images = {im["id"]: im for im in gt["images"]}
    assert sum(len(objects_of(r)) for r in written.values()) == len(gt["annotations"]) == 839
    for image_id, group in by_image(gt["annotations"]).items():
        im = images[image_id]
        w, h = im["width"], im["height"]
        # every polygon part of every annotation, each vertex divided by the image size
        expected = Counter(json.dumps([[[v / (w if k % 2 == 0 else h) for k, v in enumerate(ring)]]
                                       for ring in a["segmentation"]])
                           for a in group if isinstance(a["segmentation"], list))
        got = Counter(json.dumps(o["polygons"]) for o in objects_of(written[im["file_name"]]))
        crowd = sum(1 for a in group if isinstance(a["segmentation"], dict))
        assert expected <= got and sum((got - expected).values()) == crowd  # the rest: traced crowd masks


def test_keypoints_to_skeleton_with_visibility(tmp_path: Path) -> None:
    person = [c for c in gt_categories() if c["name"] == "person"]
    ont = coco_ontology(tmp_path / "ont.json", person, "skeleton", COCO_KEYPOINTS)
    gt = load(GT)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"images": gt["images"], "categories": [{**person[0], "keypoints": COCO_KEYPOINTS}]}))
    report, out = convert(tmp_path, KP, ont, images=str(meta))
    assert report.ok, [str(p) for p in report.problems][:5]
    anns = load(KP)
    images = {im["id"]: im for im in gt["images"]}
    written = rows(out)
    for image_id, group in by_image(anns).items():
        im = images[image_id]
        w, h = im["width"], im["height"]
        vis = {0: "invisible", 1: "occluded", 2: "visible"}
        expected = sorted(json.dumps([(COCO_KEYPOINTS[k], a["keypoints"][3 * k] / w, a["keypoints"][3 * k + 1] / h,
                                       vis[a["keypoints"][3 * k + 2]]) for k in range(17)]) for a in group)
        got = sorted(json.dumps([(p["name"], p["x"], p["y"], p["visibility"])
                                 for _, p in sorted(o["skeleton"].items(), key=lambda kv: int(kv[0]))])
                     for o in objects_of(written[im["file_name"]]))
        assert got == expected
        for o in objects_of(written[im["file_name"]]):
            assert [p["featureHash"] for _, p in sorted(o["skeleton"].items(), key=lambda kv: int(kv[0]))] == [
                f"kp{k:02d}" for k in range(17)]


def test_keypoint_scores_instead_of_flags(tmp_path: Path) -> None:
    gt = load(COCO / "fce_kp_gt_dataset.json")
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "skeleton", gt["categories"][0]["keypoints"])
    report, out = convert(tmp_path, COCO / "fce_kp_dt_dataset.json", ont, images=str(COCO / "fce_kp_gt_dataset.json"))
    assert report.ok
    [p] = [p for p in report.problems if p.code == "coco.keypoint_scores"]
    assert p.severity == "warning" and "128 annotation(s)" in p.message
    [row] = rows(out).values()
    assert len(objects_of(row)) == 128


def test_keypoints_as_points(tmp_path: Path) -> None:
    person = [c for c in gt_categories() if c["name"] == "person"]
    ont = coco_ontology(tmp_path / "ont.json", person, "point")
    report, out = convert(tmp_path, KP, ont, images=str(GT))
    assert report.ok
    labelled = sum(1 for a in load(KP) for v in a["keypoints"][2::3] if v > 0)
    assert sum(len(objects_of(r)) for r in rows(out).values()) == labelled


def test_loose_real_world_input(tmp_path: Path) -> None:
    # image_id "2299" (string) in images and int 2299 in the predictions
    gt = load(COCO / "fce_gt_ignore_test.json")
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "bounding_box")
    report, out = convert(tmp_path, COCO / "fce_dt_ignore_test.json", ont, images=str(COCO / "fce_gt_ignore_test.json"))
    assert report.ok and sum(len(objects_of(r)) for r in rows(out).values()) == 63
    # "iscrowd": "false" strings, 0-based image ids
    ls = load(COCO / "label_studio_coco_import_input.json")
    ont = coco_ontology(tmp_path / "ont2.json", ls["categories"], "polygon")
    report = predport.convert([COCO / "label_studio_coco_import_input.json"], ont, "b", tmp_path / "o2")
    assert report.ok and [len(o["polygons"]) for r in rows(tmp_path / "o2").values() for o in objects_of(r)] == [1, 2]
    # sparse category ids and an uncompressed-RLE crowd annotation, as a bitmask
    dm = load(COCO / "datumaro_instances_val.json")
    ont = coco_ontology(tmp_path / "ont3.json", dm["categories"], "bitmask")
    report = predport.convert([COCO / "datumaro_instances_val.json"], ont, "b", tmp_path / "o3")
    assert report.ok
    [row] = rows(tmp_path / "o3").values()
    crowd = next(o for o in objects_of(row) if o["name"] == "b")
    mask = rle.to_mask(crowd["bitmask"]["rleString"], 5, 10)
    src = cocomask.decode(cocomask.frPyObjects(dm["annotations"][1]["segmentation"], 10, 5)).astype(bool)
    assert (mask == src).all() and mask.sum() == 20  # counts [0, 20, 30]: 20 foreground pixels


def test_segmentation_empty_list_and_no_names(tmp_path: Path) -> None:
    dm = load(COCO / "datumaro_person_keypoints_train.json")  # segmentation [], keypoints names []
    ont = coco_ontology(tmp_path / "ont.json", dm["categories"], "skeleton", ["p1", "p2", "p3"])
    report = predport.convert([COCO / "datumaro_person_keypoints_train.json"], ont, "b", tmp_path / "o")
    assert report.ok, [str(p) for p in report.problems]
    [row] = rows(tmp_path / "o").values()
    [o] = objects_of(row)
    assert [(p["name"], p["visibility"]) for p in o["skeleton"].values()] == [
        ("p1", "invisible"), ("p2", "occluded"), ("p3", "visible")]


def test_unresolved_images_and_categories_are_located(tmp_path: Path) -> None:
    anns = load(BBOX)
    anns[5] = {**anns[5], "image_id": 999999999999}  # above 2^31 and unknown
    anns[7] = {**anns[7], "category_id": 0}
    anns[9] = {**anns[9], "score": 1.25}
    src = tmp_path / "results.json"
    src.write_text(json.dumps(anns))
    cats = gt_categories()
    ont = coco_ontology(tmp_path / "ont.json", cats, "bounding_box")
    report, out = convert(tmp_path, src, ont, images=str(GT))
    got = sorted((p.code, p.location.pointer) for p in report.problems if p.severity == "error")
    assert got == [("class.unknown", "/7/category_id"), ("coco.image_unresolved", "/5/image_id"),
                   ("confidence.out_of_range", "/9/bbox")]
    assert not out.exists()
    counts = report.per_group()
    assert sum(c["converted"] for c in counts.values()) == 731
    assert sum(c["reported"] for c in counts.values()) == 3


def test_near_miss_category_name(tmp_path: Path) -> None:
    cats = [{**c, "name": c["name"].title() + " "} if c["name"] == "person" else c for c in gt_categories()]
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "bounding_box")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"images": load(GT)["images"], "categories": cats}))
    report, _ = convert(tmp_path, BBOX, ont, images=str(meta))
    unknown = [p for p in report.problems if p.code == "class.unknown"]
    assert unknown and "class 'Person ' is not an ontology object (did you mean 'person'?" in unknown[0].message


def test_class_map_and_image_keys(tmp_path: Path) -> None:
    gt = load(COCO / "fce_gt_dataset.json")
    ont_path = tmp_path / "ont.json"
    ont_path.write_text(json.dumps({"objects": [
        {"id": "1", "name": "Shape", "color": "#000000", "shape": "polygon", "featureNodeHash": "shape001"},
        {"id": "2", "name": "Star", "color": "#000000", "shape": "bounding_box", "featureNodeHash": "star0001"}],
        "classifications": []}))
    names = {c["name"] for c in gt["categories"]}
    cmap = tmp_path / "classes.yaml"
    cmap.write_text("".join(f"{n}: Shape\n" for n in names if n != "star") + "star: star0001\n")
    report, out = convert(tmp_path, COCO / "fce_dt_dataset.json", ont_path, images=str(COCO / "fce_gt_dataset.json"),
                          class_map=str(cmap), image_key="stem")
    assert report.ok, [str(p) for p in report.problems]
    titles = set(rows(out))
    assert titles == {Path(im["file_name"]).stem for im in gt["images"]}
    shapes = Counter(o["shape"] for r in rows(out).values() for o in objects_of(r))
    n_star = sum(1 for a in load(COCO / "fce_dt_dataset.json")
                 if next(c["name"] for c in gt["categories"] if c["id"] == a["category_id"]) == "star")
    assert shapes == {"polygon": 9 - n_star, "bounding_box": n_star}


def test_video_frames_through_an_image_map(tmp_path: Path) -> None:
    gt = load(COCO / "fce_gt_dataset.json")
    imap = tmp_path / "map.yaml"
    imap.write_text("".join(f"{im['id']}: {{title: clip.mp4, frame: {k * 5}}}\n" for k, im in enumerate(gt["images"])))
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "bounding_box")
    report, out = convert(tmp_path, COCO / "fce_dt_dataset.json", ont, images=str(COCO / "fce_gt_dataset.json"),
                          image_map=str(imap))
    assert report.ok
    [row] = rows(out).values()
    assert row["data_type"] == "video"
    [du] = row["data_units"].values()
    assert sorted(map(int, du["labels"])) == sorted({k * 5 for k in range(len(gt["images"]))})
    assert "unit.frame_count_unknown" in report.problems.by_code


def test_results_file_needs_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "bounding_box")
    assert main(["validate", str(BBOX), "--ontology", str(ont)]) == 2
    assert "give --images FILE" in capsys.readouterr().err


def test_cli_detects_coco_and_prints_per_category_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "bounding_box")
    code = main(["convert", str(BBOX), "--images", str(GT), "--ontology", str(ont), "--branch", "b",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0
    person = sum(1 for a in load(BBOX) if a["category_id"] == 1)
    assert f"  person: {person} converted, 0 reported" in err.splitlines()


def test_rle_size_mismatch(tmp_path: Path) -> None:
    anns = load(SEGM)[:3]
    anns[1]["segmentation"]["size"] = anns[1]["segmentation"]["size"][::-1]
    src = tmp_path / "r.json"
    src.write_text(json.dumps(anns))
    ont = coco_ontology(tmp_path / "ont.json", gt_categories(), "bitmask")
    report, _ = convert(tmp_path, src, ont, images=str(GT))
    assert [(p.code, p.location.pointer) for p in report.problems if p.severity == "error"] == [
        ("bitmask.size_mismatch", "/1/segmentation/size")]


def test_unfit_geometry_missing_scores_and_boxes_as_polygons(tmp_path: Path) -> None:
    gt = load(COCO / "fce_gt_ignore_test.json")  # bbox only, no scores, no segmentation
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "polygon")
    report, out = convert(tmp_path, COCO / "fce_gt_ignore_test.json", ont)
    assert report.ok
    assert report.problems.by_code["coco.box_as_polygon"] == len(gt["annotations"])
    [note] = [p for p in report.problems if p.code == "coco.no_scores"]
    assert note.severity == "info" and note.location.file.endswith("fce_gt_ignore_test.json")
    [row] = rows(out).values()
    assert all(o["confidence"] == 1.0 and len(o["polygons"][0][0]) == 8 for o in objects_of(row))
    ont = coco_ontology(tmp_path / "ont2.json", gt["categories"], "bitmask")
    report = predport.convert([COCO / "fce_gt_ignore_test.json"], ont, "b", tmp_path / "o2")
    unfit = [p for p in report.problems if p.code == "coco.geometry_unfit"]
    assert sorted(p.location.pointer for p in unfit) == sorted(f"/annotations/{i}" for i in range(len(unfit)))
    assert len(unfit) == len(gt["annotations"])
    assert "class 'person' is a bitmask" in unfit[0].message


def test_images_without_a_usable_size_are_reported_not_crashed_on(tmp_path: Path) -> None:
    gt = load(COCO / "fce_gt_dataset.json")
    gt["images"][0].pop("width")
    gt["images"][1]["height"] = 0
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"images": gt["images"], "categories": gt["categories"]}))
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "bounding_box")
    report, _ = convert(tmp_path, COCO / "fce_dt_dataset.json", ont, images=str(meta))
    bad = {gt["images"][0]["id"], gt["images"][1]["id"]}
    n_bad = sum(1 for a in load(COCO / "fce_dt_dataset.json") if a["image_id"] in bad)
    sized = [p for p in report.problems if p.code == "frame.size_unknown"]
    assert n_bad > 0 and len(sized) == n_bad
    assert all(p.location.file.endswith("fce_dt_dataset.json") and p.location.pointer for p in sized)


def test_junk_anywhere_is_reported_never_raised_and_every_annotation_accounted_for(tmp_path: Path) -> None:
    """Seeded junk in any field of boxes, masks and keypoints (wrong types, short lists, broken RLE, odd
    polygons, bad rotations): the run finishes, and every annotation is either converted or reported."""
    import copy
    import random

    gt = load(COCO / "instances_val2014_100.json")
    base = (load(COCO / "instances_val2014_fakebbox100_results.json")[:60]
            + load(COCO / "instances_val2014_fakesegm100_results.json")[:8]
            + load(COCO / "person_keypoints_val2014_fakekeypoints100_results.json")[:4])
    shapes = ["bounding_box", "bounding_box", "polygon", "rotatable_bounding_box", "bitmask", "skeleton", "point"]
    ontology = coco_ontology(tmp_path / "ont.json", gt["categories"], lambda i: shapes[i % 7])
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"images": gt["images"], "categories": gt["categories"]}))
    junk: list[Any] = [None, True, 1.5, -3, "x", [], [1, 2], {}, [1, 2, 3, 4], [1, "2", 3, 4], [1, 2, 3, True], 10**6,
                       [[1, 2, 3]], [[1, "a", 3, 4, 5, 6]], [[]], {"size": [1, 2], "counts": "x"},
                       {"size": "a", "counts": 3}, {"size": [480, 640], "counts": None}, [[1, 2, 3, 4, 5, 6], 7],
                       {"rotation": "x"}, {"track_id": []}]
    rng = random.Random(5)
    src = tmp_path / "r.json"
    for _ in range(25):
        anns = copy.deepcopy(base)
        for _ in range(rng.randint(1, 6)):
            k = rng.randrange(len(anns))
            if rng.random() < 0.1:
                anns[k] = copy.deepcopy(rng.choice(junk))
                continue
            field = rng.choice(["image_id", "category_id", "bbox", "score", "id", "attributes", "segmentation",
                                "keypoints"])
            if rng.random() < 0.2:
                anns[k].pop(field, None)
            else:
                anns[k][field] = copy.deepcopy(rng.choice(junk))
        src.write_text(json.dumps(anns))
        report = predport.convert([src], ontology, "b", tmp_path / "out", options={"images": str(images)},
                                  keep_going=True)
        grouped = sum(g["converted"] + g["reported"] for g in report.per_group().values())
        unroutable = {p.location.pointer for p in report.problems if p.message.startswith("annotation without")}
        assert grouped + len(unroutable) == len(anns)


def test_ground_truth_area_and_crowd_are_carried_for_evaluation_not_written(tmp_path: Path) -> None:
    gt = load(GT)
    gt["annotations"][0]["area"] = "big"  # not carried: said
    src = tmp_path / "gt.json"
    src.write_text(json.dumps(gt))
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "bounding_box")
    units = list(predport.read([src], ont))
    tables = [u["boxes"] for u in units if "boxes" in u]
    assert sum(sum(t["iscrowd"]) for t in tables) == sum(a["iscrowd"] for a in gt["annotations"]) == 9
    report, out = convert(tmp_path, src, ont)
    [said] = [p for p in report.problems if p.code == "coco.crowd_area"]
    assert said.severity == "warning" and said.location.pointer == "/annotations/0"
    [dropped] = [p for p in report.problems if p.code == "output.dropped"]
    assert dropped.severity == "info" and dropped.message.startswith(f"{len(gt['annotations']) - 1} object(s)")
    row = next(iter(rows(out).values()))
    assert "area" not in json.dumps(row) and "iscrowd" not in json.dumps(row)


def test_a_large_ground_truth_file_is_recognised_by_its_first_images(tmp_path: Path) -> None:
    """COCO's own files list every image (5,000 in val2017) before the categories and the annotations."""
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in range(3000)]
    src = tmp_path / "big.json"
    src.write_text(json.dumps({"images": images, "categories": [{"id": 1, "name": "person"}], "annotations": []}))
    assert b'"categories"' not in src.read_bytes()[:65536]
    from predport import plugins

    assert plugins.load(entry_points=False).detect(src).name == "coco"


def test_results_decoded_in_parts_in_forked_processes(tmp_path: Path) -> None:
    """With workers, a big results file is decoded in parts at once, each in its own process, cut between
    records; a cut that falls inside a string (an id holding '},{') makes its piece fail, and the whole file is
    then decoded here: either way the records come back whole and in file order."""
    import os

    from predport.converters.coco import PlainResult
    from predport.core.ontology import Ontology
    from predport.core.problems import Problems
    from predport.core.reader import ReadContext

    ctx = ReadContext(Ontology({"objects": [], "classifications": []}), Problems())
    ctx.workers = 3
    for ids, pieces in (([*range(5), "x},{y", *range(6, 300)], 24), ([f"a{k}}},{{b" for k in range(300)], 1)):
        path = tmp_path / "results.json"
        path.write_text(json.dumps([{"image_id": k % 7, "category_id": 1, "bbox": [1, 2, 3, 4], "id": i}
                                    for k, i in enumerate(ids)]))
        parts = ctx.decode_parts(path, list[PlainResult], lambda a: (os.getpid(), [r.id for r in a]), part_bytes=1)
        assert parts is not None and len(parts) == pieces  # (8 pieces a worker, at most)
        assert parts[0][0] == os.getpid() and len({pid for pid, _ in parts}) <= 3  # (taken by 3 processes)
        assert [i for _, got in parts for i in got] == ids
    path.write_text('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}, {"image_id": "1"}]')
    assert ctx.decode_parts(path, list[PlainResult], lambda a: a, part_bytes=1) is None  # (does not fit)


def test_the_command_leaves_the_last_files_records_for_its_exit(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The command (which exits without freeing anything) leaves a decoded file's records for its exit to free,
    one file's at a time: those of the file before are freed when the next is decoded. A library caller's are
    freed as they go."""
    import os

    from predport.converters.coco import PlainResult
    from predport.core import reader
    from predport.core.ontology import Ontology

    monkeypatch.setattr(reader, "_UNFREED", {})
    ctx = reader.ReadContext(Ontology({"objects": [], "classifications": []}))
    files = []
    for n in (3, 50):
        files.append(tmp_path / f"r{n}.json")
        files[-1].write_text(json.dumps([{"image_id": k, "category_id": 1, "bbox": [1, 2, 3, 4]} for k in range(n)]))

    def held() -> list[int]:
        return sorted(r.image_id for records in reader._UNFREED.get(os.getpid(), []) for r in records)

    monkeypatch.setattr(reader, "EXITS_UNFREED", True)
    assert ctx.decode_parts(files[0], list[PlainResult], len) == [3] and held() == [0, 1, 2]
    assert ctx.decode_parts(files[1], list[PlainResult], len) == [50] and held() == list(range(50))
    ctx.workers = 3  # (in pieces: this process's own pieces are held; the others' went with their processes)
    parts = ctx.decode_parts(files[0], list[PlainResult], len, part_bytes=1)
    assert parts is not None and sum(parts) == 3 and held() and set(held()) <= {0, 1, 2}  # (the first piece's)
    monkeypatch.setattr(reader, "EXITS_UNFREED", False)
    assert ctx.decode_parts(files[1], list[PlainResult], len) is not None and held() == []


def test_a_range_of_rows_is_gathered_from_the_parts_as_from_the_whole() -> None:
    """The rows of a range of data units (a worker's own, or the first unit's before the fork), gathered from the
    columns decoded in pieces: the same as from the columns joined, for a few rows (taken piece by piece) and for
    many (joined once); given ids, and scores that are not all floats, follow their rows."""
    from itertools import pairwise

    from predport.converters.coco import _ROUTED, _Plain

    rng = np.random.default_rng(5)
    n = 1000
    whole = {name: rng.random(n) for name in (*_ROUTED[1:], "confidence")}
    whole["class"] = rng.integers(0, 9, n)
    cuts = [0, 3, 3, 400, 401, 999, n]  # (an empty piece, pieces of one row)
    pieces = {name: [col[a:b] for a, b in pairwise(cuts)] for name, col in whole.items()}
    edges = [0, 3, 399, 400, 401, 998, 999]  # (rows at the pieces' edges among the few rows of (10, 30))
    rest = rng.permutation([k for k in range(n) if k not in edges])
    order = np.array([*rest[:10], *edges, *rest[10:]])
    scores = [1 if k % 3 else 0.5 for k in range(n)]
    ids = [f"i{k}" for k in range(n)]
    for lo, hi in ((0, 0), (10, 30), (990, n), (0, n), (500, 990)):
        rows = order[lo:hi]
        plain = _Plain(order=order, bounds=[], entries=[], parts=pieces, scores=[], ids=None, missing=0)
        got = plain.columns(lo, hi)
        assert list(got) == [*_ROUTED[1:], "record", "id", "confidence"]
        for name in (*_ROUTED[1:], "confidence"):
            assert got[name].dtype == whole[name].dtype and got[name].tolist() == whole[name][rows].tolist()
        assert got["record"].tolist() == got["id"].tolist() == rows.tolist()
        plain = _Plain(order=order, bounds=[], entries=[], parts={k: v for k, v in pieces.items() if k != "confidence"},
                       scores=scores, ids=ids, missing=0)
        got = plain.columns(lo, hi)
        assert got["confidence"] == [scores[k] for k in rows] and got["id"] == [ids[k] for k in rows]


def test_a_file_is_cut_from_reads_where_the_cuts_are_and_read_a_piece_at_a_time(tmp_path: Path) -> None:
    """A file cut into pieces from small reads near each cut (split_file) is cut where a read of the whole of it
    would cut it, also when a separator lies across the end of a read; each piece, read alone into a reused
    buffer, is a JSON array of the elements between its cuts, and together they are the file's."""
    import os

    from predport.core import jsonio

    path = tmp_path / "r.json"
    elements = [{"a": k, "pad": "x" * (k * 37 % 300)} for k in range(400)]
    text = b"[" + b" ,\n  ".join(json.dumps(e).encode() for e in elements) + b"]\n"
    path.write_bytes(text)
    with open(path, "rb") as f:
        fd = f.fileno()
        for parts, window in ((3, 1 << 16), (7, 4099), (16, 4097), (400, 5000), (5, 100)):
            cuts = jsonio.split_file(fd, len(text), parts, window)
            assert cuts == jsonio.split_file(fd, len(text), parts, len(text) + 1) and 1 < len(cuts) <= parts
            buffer, got = bytearray(), []
            for k in range(len(cuts)):
                view = jsonio.read_piece(fd, cuts, k, buffer)
                assert view is not None
                got.append(json.loads(bytes(view)))
                view.release()
            assert [x for g in got for x in g] == elements and all(got)
            # (one buffer, as large as the largest piece with its brackets)
            assert len(buffer) == max(b - a + (k > 0) + (k < len(cuts) - 1) for k, (a, b) in enumerate(cuts))
        os.truncate(path, len(text) // 2)  # (a file that shrank: its last piece is no longer there)
        assert jsonio.read_piece(fd, cuts, len(cuts) - 1, bytearray()) is None


def test_sources_after_the_fork_are_not_parsed_in_parts_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With workers, into a directory, the first source is parsed in parts before the fork; every later one is
    parsed by each worker process whole (a process has one core from then on: parts would make twice as many
    processes as cores). Into one file, each source is parsed once, whole, by the process that converts it."""
    import os

    from predport.core.reader import ReadContext

    log = tmp_path / "calls.txt"
    whole = ReadContext.decode_parts

    def logged(self: ReadContext, path: Path, kind: Any, extract: Any, part_bytes: int = 0) -> Any:
        with log.open("a") as f:  # (from every process)
            f.write(f"{path.name} {self.workers} {os.getpid()}\n")
        return whole(self, path, kind, extract, part_bytes=1)  # (cut wherever it can be)

    monkeypatch.setattr(ReadContext, "decode_parts", logged)
    images = [{"id": k, "file_name": f"im{k}.jpg", "width": 64, "height": 48} for k in range(6)]
    categories = [{"id": 1, "name": "c1"}]
    (tmp_path / "images.json").write_text(json.dumps({"images": images, "categories": categories}))
    for s in range(3):
        (tmp_path / f"r{s}.json").write_text(json.dumps(
            [{"image_id": s * 2 + k % 2, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5} for k in range(40)]))
    ontology = coco_ontology(tmp_path / "o.json", categories)
    for out in ("out", "out.jsonl"):
        report = predport.convert([tmp_path / f"r{s}.json" for s in range(3)], ontology, "preds", tmp_path / out,
                                  "coco", {"images": str(tmp_path / "images.json")}, workers=2)
        assert report.ok and report.object_frames == 120, [str(p) for p in report.problems]
        calls = [line.split() for line in log.read_text().splitlines()]
        log.unlink()
        if out == "out":
            assert calls[0][:2] == ["r0.json", "2"]  # (before the fork: in parts)
            later = [c for c in calls if c[0] != "r0.json"]
            assert len(later) == 4 and {c[1] for c in later} == {"1"} and len({c[2] for c in later}) == 2
        else:
            assert sorted(c[:2] for c in calls) == [["r0.json", "1"], ["r1.json", "1"], ["r2.json", "1"]]


def test_fork_map_results_errors_and_deaths() -> None:
    """fork_map: results in order, numpy columns through the shared map or, when they do not fit it, the pipe;
    a child's exception and a child's death are said, never lost."""
    import os
    import signal

    from predport.core.parallel import fork_map
    from predport.core.problems import PredportError

    for room in (0, 64, 1 << 20):  # (none; too small: the pipe; enough: the shared map)
        got = fork_map(lambda n: (os.getpid(), np.arange(n), -np.arange(2 * n, dtype=np.int16)), [3, 500, 7], room)
        assert [(a.tolist(), b.tolist()) for _, a, b in got] == [
            (list(range(n)), [-k for k in range(2 * n)]) for n in (3, 500, 7)]
        assert got[0][0] == os.getpid() and len({pid for pid, _, _ in got}) <= 3
    # items are taken by whichever process is free: while this one sleeps on the first, the other takes the rest
    got = fork_map(lambda k: (os.getpid(), time.sleep(0.5) if k == 0 else None)[0], range(6), 1 << 20, processes=2)
    assert got[0] == os.getpid() and len(set(got[1:])) == 1 and got[1] != os.getpid()
    here = os.getpid()  # (this process is slow on the first item: the other takes the second, and fails)
    with pytest.raises(PredportError, match="ZeroDivisionError"):
        fork_map(lambda x: time.sleep(0.5) if os.getpid() == here else 1 / 0, [0, 1])
    with pytest.raises(PredportError, match="was killed by SIGKILL"):
        fork_map(lambda x: time.sleep(0.5) if os.getpid() == here else os.kill(os.getpid(), signal.SIGKILL), [0, 1])


def test_a_failed_part_names_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked process parsing a piece of the file that fails: said with the file's name."""
    from predport.converters.coco import PlainResult
    from predport.core.ontology import Ontology
    from predport.core.problems import PredportError, Problems
    from predport.core.reader import ReadContext

    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}] * 50))
    ctx = ReadContext(Ontology({"objects": [], "classifications": []}), Problems())
    ctx.workers = 2
    import os

    here = os.getpid()
    with pytest.raises(PredportError, match=f"{path}: parsing part of the input failed: ZeroDivisionError"):
        # (this process slow on its piece: the other takes the next, and fails)
        ctx.decode_parts(path, list[PlainResult], lambda records: time.sleep(0.5) if os.getpid() == here else 1 / 0,
                         part_bytes=1)


def test_a_small_results_file_converts_without_numpy_and_as_with_it(tmp_path: Path) -> None:
    """Plain box results below COLUMNS_FROM annotations go annotation by annotation when numpy is not loaded
    (importing it costs more than columns save), and the rows' CRC-32 is zlib's for a process's first 4 MB:
    such a run imports no numpy, and writes what the column path writes."""
    import subprocess
    import sys

    from output_kit import same_but_time

    meta = load(DATA / "coco" / "instances_val2014_100.json")
    ontology = coco_ontology(tmp_path / "ont.json", meta["categories"])
    args = [str(DATA / "coco" / "instances_val2014_fakebbox100_results.json"),
            str(DATA / "coco" / "instances_val2014_100.json"), str(ontology)]
    code = ("import sys, predport\n{pre}"
            "r = predport.convert([sys.argv[1]], sys.argv[3], 'b', sys.argv[4], options={{'images': sys.argv[2]}})\n"
            "print(r.ok, r.units, sum(r.objects.values()), 'numpy' in sys.modules)")
    seen = []
    for k, pre in enumerate(("", "import numpy\n")):
        out = tmp_path / f"{k}.jsonl"
        run = subprocess.run([sys.executable, "-c", code.format(pre=pre), *args, str(out)], capture_output=True,
                             text=True, check=True)
        seen.append((run.stdout.split(), out.read_bytes()))
    (without, rows), (with_numpy, column_rows) = seen
    assert without == ["True", "100", "734", "False"] and with_numpy == ["True", "100", "734", "True"]
    assert same_but_time(rows, column_rows)


def test_an_images_file_is_indexed_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several results files that share one --images file: it is parsed and indexed once for the run (the
    readers' memo), with workers taking whole sources once per process; a broken entry of it is said once (it
    was said for every source in one process, once with workers); and the output is what indexing it for each
    source gave."""
    import os

    from predport.converters import coco

    log = tmp_path / "calls.txt"
    real = coco._index_images

    def logged(images: Any, meta_file: str, key: str) -> Any:
        with log.open("a") as f:  # (from every process)
            f.write(f"{Path(meta_file).name} {os.getpid()}\n")
        return real(images, meta_file, key)

    images = [{"id": k, "file_name": f"im{k}.jpg", "width": 64, "height": 48} for k in range(8)]
    categories = [{"id": 1, "name": "c1"}]
    (tmp_path / "images.json").write_text(json.dumps({"images": [*images, {"file_name": "no id"}],
                                                      "categories": categories}))
    sources = []
    for s in range(4):
        sources.append(tmp_path / f"r{s}.json")
        sources[-1].write_text(json.dumps(
            [{"image_id": s * 2 + k % 2, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5} for k in range(10)]))
    ontology = coco_ontology(tmp_path / "o.json", categories)
    opts = {"images": str(tmp_path / "images.json")}
    with monkeypatch.context() as m:  # (each source's converter indexing it, as before)
        m.setattr(coco, "_indexed", lambda memo, meta_file, images, key: (real(images, meta_file, key), True))
        before = predport.convert(sources, ontology, "p", tmp_path / "before.jsonl", "coco", opts, keep_going=True)
    monkeypatch.setattr(coco, "_index_images", logged)
    for out, workers in (("one.jsonl", 1), ("two.jsonl", 2)):
        report = predport.convert(sources, ontology, "p", tmp_path / out, "coco", opts, workers=workers,
                                  keep_going=True)
        calls = [line.split() for line in log.read_text().splitlines()]
        log.unlink()
        # (once per process: with 2 workers, both processes take sources unless one takes them all first)
        assert {c[0] for c in calls} == {"images.json"} and 1 <= len(calls) == len({c[1] for c in calls}) <= workers
        assert before.problems.by_code["source.invalid"] == 4 and report.problems.by_code == {
            **before.problems.by_code, "source.invalid": 1}
        assert same_but_time((tmp_path / out).read_bytes(), (tmp_path / "before.jsonl").read_bytes())


def test_columns_pay_for_the_boxes_of_the_whole_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a results file's boxes are read as columns (numpy, imported for them) counts the boxes of the run's
    results files so far, not the file's alone: 10 shards of 50k boxes each took the annotation-at-a-time path,
    every one of them. The report is the same either way."""
    from predport.converters import coco
    from predport.core.reader import ReadContext

    images = [{"id": k, "file_name": f"im{k}.jpg", "width": 64, "height": 48} for k in range(4)]
    categories = [{"id": 1, "name": "c1"}]
    (tmp_path / "images.json").write_text(json.dumps({"images": images, "categories": categories}))
    sources = []
    for s in range(3):
        sources.append(tmp_path / f"r{s}.json")
        sources[-1].write_text(json.dumps([{"image_id": k % 4, "category_id": 1, "bbox": [1.5, 2.25, 3.0, 4.0],
                                            "score": 0.5} for k in range(100)]))
    ontology = coco_ontology(tmp_path / "o.json", categories)
    opts = {"images": str(tmp_path / "images.json")}
    each = predport.validate(sources, ontology, "coco", options=opts)
    calls: list[str] = []
    whole = ReadContext.decode_parts
    monkeypatch.setattr(ReadContext, "decode_parts", lambda self, path, *a, **k: (
        calls.append(path.name), whole(self, path, *a, **k))[1])
    monkeypatch.setattr(coco, "_numpy_loaded", lambda: False)
    per_box = sources[0].stat().st_size // 100
    monkeypatch.setattr(coco, "_BYTES_PER_BOX", per_box)
    monkeypatch.setattr(coco, "COLUMNS_FROM", 150)  # (the first file's 100 boxes: not yet; with the second's, yes)
    report = predport.validate(sources, ontology, "coco", options=opts)
    assert calls == ["r1.json", "r2.json"]
    assert list(report.problems) == list(each.problems) and report.objects == each.objects


def test_maps_leave_plain_boxes_in_their_shared_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A class map the reader applies itself and an image map that renames units leave the units' rows slices of
    the shared table (images merged into a video are made plain tables): the same rows and counts as when every
    unit is made a plain table first, as the maps once did."""
    from predport.core import boxes, pipeline

    gt = load(GT)
    sizes = Counter((im["width"], im["height"]) for im in gt["images"])
    size = next(s for s, n in sizes.items() if n >= 2)
    clip = [im for im in gt["images"] if (im["width"], im["height"]) == size][:2]
    rest = [im for im in gt["images"] if im not in clip]
    cmap = tmp_path / "classes.json"  # (by category id; JSON)
    cmap.write_text(json.dumps({str(c["id"]): c["name"] for c in gt["categories"]}))
    imap = tmp_path / "images.yaml"  # (YAML: titles, ids, and two images of one size sent to frames of a video)
    imap.write_text(f"{clip[0]['id']}: {{title: clip.mp4, frame: 0}}\n{clip[1]['id']}: {{title: clip.mp4, frame: 3}}\n"
                    + "".join(f"{im['file_name']}: renamed/{im['file_name']}\n" for im in rest[:48])
                    + "".join(f"{im['id']}: by-id-{im['id']}\n" for im in rest[48:]))
    ont = coco_ontology(tmp_path / "ont.json", gt["categories"], "bounding_box")
    options = {"images": str(GT), "class_map": str(cmap), "image_map": str(imap)}
    made_plain = Counter[str]()
    table = boxes.BoxSlice.table

    def spy(self: Any, compact: bool = True) -> Any:
        made_plain[str(compact)] += 1
        return table(self, compact)

    monkeypatch.setattr(boxes.BoxSlice, "table", spy)
    report = predport.convert([BBOX], ont, "b", tmp_path / "sliced.jsonl", fmt="coco", options=options)
    assert report.ok, [str(p) for p in report.problems]
    assert made_plain["True"] == 2, made_plain  # (the video's two images only)
    mapped = pipeline._mapped

    def plain_first(stream: Any, *args: Any) -> Any:
        return mapped(((boxes.plain(u), ctx) for u, ctx in stream), *args)

    monkeypatch.setattr(pipeline, "_mapped", plain_first)
    ref = predport.convert([BBOX], ont, "b", tmp_path / "plain.jsonl", fmt="coco", options=options)
    assert made_plain["True"] > 90
    assert same_but_time((tmp_path / "sliced.jsonl").read_bytes(), (tmp_path / "plain.jsonl").read_bytes())
    keys = ("data_units", "objects", "object_frames", "problems", "errors", "per_group")
    assert {k: report.summary()[k] for k in keys} == {k: ref.summary()[k] for k in keys}
    assert report.summary()["data_units"] == 99 and "clip.mp4" in (tmp_path / "sliced.jsonl").read_text()


@pytest.mark.parametrize(("text", "message"), [
    ("a: [b\n", "cannot read --class-map .*classes.yaml: while parsing"), ("[1, 2]", "must be a mapping"),
    ("- a\n", "must be a mapping"),
    (b"\xff\xfe", "cannot read --class-map .*codec")])
def test_a_map_file_that_is_not_a_mapping_is_a_usage_error(tmp_path: Path, text: str | bytes, message: str) -> None:
    """JSON or YAML, read by the first that takes it; anything else says which file it is."""
    from predport.core.maps import ClassMap
    from predport.core.problems import PredportError

    path = tmp_path / "classes.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(PredportError, match=message):
        ClassMap.load(str(path))


def test_a_map_file_means_the_same_in_json_and_yaml(tmp_path: Path) -> None:
    from predport.core.maps import ClassMap

    entries = {"1": "person", "bicycle": "Bike", "2": 3}
    (tmp_path / "a.json").write_text(json.dumps(entries))
    (tmp_path / "a.yaml").write_text("1: person\nbicycle: Bike\n'2': 3\n")
    assert ClassMap.load(str(tmp_path / "a.json")).entries == ClassMap.load(str(tmp_path / "a.yaml")).entries
