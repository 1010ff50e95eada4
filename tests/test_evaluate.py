"""predport evaluate: COCO's numbers exactly (the cocoapi oracles and seeded random data against pycocotools run
here), strict / partial / geometry matching on hand-made cases, every false positive's reason, classifications,
the outputs, and MAIN against a branch of a live project (the stand-in) without a single write."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from pycocotools import mask as cocomask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import predport
from conftest import DATA, coco_ontology
from predport.cli import main
from predport.core.evaluate import Evaluation, evaluate

COCO_DIR = DATA / "coco"
GT = COCO_DIR / "instances_val2014_100.json"
SCHEMA = json.loads((Path(predport.__file__).parent / "schemas" / "evaluation.schema.json").read_text())
PERSON = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
          "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
          "right_ankle"]


def pycocotools(gt: Path, res: Path, iou_type: str, encord: bool = False) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(str(gt))
        e = COCOeval(g, g.loadRes(str(res)), iou_type)
        if encord:  # the encord protocol's parameters: one area range, every prediction
            e.params.areaRng, e.params.areaRngLbl, e.params.maxDets = [[0, 1e30]], ["all"], [10 ** 9]
        e.evaluate()
        e.accumulate()
        if not encord:
            e.summarize()
    return e


def per_class_ap(e: COCOeval, cat: int, thresholds: slice) -> float | None:
    k = e.params.catIds.index(cat)
    p = e.eval["precision"][thresholds, :, k, 0, -1]
    return float(np.mean([row[row > -1].mean() for row in p])) if (p > -1).any() else None


# -- COCO's oracles ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("iou_type", "shape", "results", "known"), [
    ("bbox", "bounding_box", "instances_val2014_fakebbox100_results.json",
     {0: 0.5045806987, 1: 0.6969727247, 8: 0.5953529829}),
    ("segm", "bitmask", "instances_val2014_fakesegm100_results.json", {0: 0.3195452759}),
])
def test_coco_protocol_gives_cocoevals_twelve_numbers(tmp_path: Path, iou_type: str, shape: str, results: str,
                                                      known: dict[int, float]) -> None:
    ont = coco_ontology(tmp_path / "o.json", json.loads(GT.read_text())["categories"], shape)
    ev = predport.evaluate([COCO_DIR / results], [GT], ont, protocol="coco", match="geometry")  # (no --images)
    assert ev.ok, [str(p) for p in ev.problems]
    ours = list(ev.coco.values())  # type: ignore[union-attr]
    theirs = pycocotools(GT, COCO_DIR / results, iou_type).stats
    assert len(ours) == 12 and np.allclose(ours, theirs, atol=1e-6, rtol=0)
    for k, value in known.items():
        assert abs(ours[k] - value) < 1e-9


def test_coco_protocol_gives_cocoevals_keypoint_numbers(tmp_path: Path) -> None:
    gt = COCO_DIR / "fce_kp_gt_dataset.json"
    cats = json.loads(gt.read_text())["categories"]
    ont = coco_ontology(tmp_path / "o.json", cats, "skeleton", cats[0]["keypoints"])
    ev = evaluate([COCO_DIR / "fce_kp_dt_dataset.json"], [gt], ont, protocol="coco")
    assert ev.ok
    ours = list(ev.coco.values())  # type: ignore[union-attr]
    assert len(ours) == 10 and np.allclose(ours, pycocotools(gt, COCO_DIR / "fce_kp_dt_dataset.json",
                                                             "keypoints").stats, atol=1e-6, rtol=0)


# -- differential tests on seeded random data -------------------------------------------------------------

def random_coco(rng: np.random.Generator, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth (crowds included) and results that jitter it, miss some of it and add false ones; scores
    with ties. kind: bbox | polygon | mask | keypoints."""
    cats = [{"id": 1, "name": "person"}] if kind == "keypoints" else [{"id": c, "name": f"c{c}"} for c in (1, 3, 7)]
    if kind == "keypoints":
        cats[0]["keypoints"] = PERSON
    images = [{"id": 100 + i, "file_name": f"im{i}.jpg", "width": int(rng.integers(60, 120)),
               "height": int(rng.integers(50, 100))} for i in range(12)]
    anns, res = [], []
    for im in images:
        w, h = im["width"], im["height"]
        for _ in range(int(rng.integers(0, 5))):
            cat = int(rng.choice([c["id"] for c in cats]))
            bw, bh = float(rng.uniform(4, w / 2)), float(rng.uniform(4, h / 2))
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            crowd = int(kind != "keypoints" and rng.random() < 0.1)
            ann = {"id": len(anns) + 1, "image_id": im["id"], "category_id": cat, "bbox": [x, y, bw, bh],
                   "iscrowd": crowd, "area": bw * bh}
            if kind in ("polygon", "mask") or crowd:
                poly = [x, y, x + bw, y + bh * 0.2, x + bw * 0.7, y + bh, x + bw * 0.1, y + bh * 0.8]
                rle = cocomask.merge(cocomask.frPyObjects([poly], h, w))
                ann["area"] = float(cocomask.area(rle))
                if kind == "mask" or crowd:
                    ann["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
                else:
                    ann["segmentation"] = [poly]
            if kind == "keypoints":
                kps = []
                for _ in PERSON:
                    v = int(rng.choice([0, 1, 2], p=[0.2, 0.2, 0.6]))
                    kps += [float(rng.uniform(x, x + bw)) if v else 0, float(rng.uniform(y, y + bh)) if v else 0, v]
                ann["keypoints"], ann["num_keypoints"] = kps, sum(1 for v in kps[2::3] if v)
            anns.append(ann)
            for _ in range(int(rng.integers(0, 3))):  # predictions near it
                score = float(rng.choice([0.9, 0.5, round(float(rng.random()), 2)]))
                jx, jy = float(rng.normal(0, bw * 0.15)), float(rng.normal(0, bh * 0.15))
                wrong = rng.random() > 0.85 and len(cats) > 1  # (now and then the wrong class)
                res.append(_result(kind, im, 3 if wrong else cat, x + jx, y + jy, bw, bh, score, ann, rng))
        for _ in range(int(rng.integers(0, 2))):  # and far from anything
            bw, bh = float(rng.uniform(3, w / 3)), float(rng.uniform(3, h / 3))
            res.append(_result(kind, im, int(rng.choice([c["id"] for c in cats])), float(rng.uniform(0, w - bw)),
                               float(rng.uniform(0, h - bh)), bw, bh, float(rng.random()), None, rng))
    return {"images": images, "categories": cats, "annotations": anns}, res


def _result(kind: str, im: dict[str, Any], cat: int, x: float, y: float, bw: float, bh: float, score: float,
            near: dict[str, Any] | None, rng: np.random.Generator) -> dict[str, Any]:
    w, h = im["width"], im["height"]
    x, y = min(max(x, 0), w - bw), min(max(y, 0), h - bh)
    out: dict[str, Any] = {"image_id": im["id"], "category_id": cat, "score": score}
    if kind == "bbox":
        out["bbox"] = [x, y, bw, bh]
    elif kind in ("polygon", "mask"):
        poly = [x, y, x + bw, y, x + bw * 0.8, y + bh, x, y + bh * 0.9]
        rle = cocomask.merge(cocomask.frPyObjects([poly], h, w))
        out["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
    else:
        kps = []
        for k in range(len(PERSON)):
            if near is not None:
                gx, gy = near["keypoints"][3 * k], near["keypoints"][3 * k + 1]
                jx, jy = float(rng.normal(0, 2)), float(rng.normal(0, 2))
                kps += [min(max(gx + jx, 0), w - 1), min(max(gy + jy, 0), h - 1), 2]
            else:
                kps += [float(rng.uniform(x, x + bw)), float(rng.uniform(y, y + bh)), 2]
        out["keypoints"] = kps
    return out


@pytest.mark.parametrize("kind", ["bbox", "polygon", "mask", "keypoints"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_data_gives_pycocotools_numbers_under_both_protocols(tmp_path: Path, kind: str, seed: int) -> None:
    gt, res = random_coco(np.random.default_rng(seed), kind)
    gt_path, res_path = tmp_path / "gt.json", tmp_path / "res.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(res))
    shape = {"bbox": "bounding_box", "polygon": "polygon", "mask": "bitmask", "keypoints": "skeleton"}[kind]
    ont = coco_ontology(tmp_path / "o.json", gt["categories"], shape, PERSON if kind == "keypoints" else None)
    iou_type = {"bbox": "bbox", "keypoints": "keypoints"}.get(kind, "segm")
    coco = evaluate([res_path], [gt_path], ont, protocol="coco", match="geometry")
    assert coco.ok, [str(p) for p in coco.problems]
    assert np.allclose(list(coco.coco.values()), pycocotools(gt_path, res_path, iou_type).stats,  # type: ignore[union-attr]
                       atol=1e-6, rtol=0)
    # the encord protocol (one area range, every prediction) has per-class APs that COCOeval gives with those
    # parameters
    ours = evaluate([res_path], [gt_path], ont, match="geometry")
    theirs = pycocotools(gt_path, res_path, iou_type, encord=True)
    for c in gt["categories"]:
        m = ours.objects.get(c["name"])
        if m is None:
            assert per_class_ap(theirs, c["id"], slice(0, 1)) is None
            continue
        assert m.ap == pytest.approx(per_class_ap(theirs, c["id"], slice(0, 1)), abs=1e-9)
        assert m.ap_50_95 == pytest.approx(per_class_ap(theirs, c["id"], slice(None)), abs=1e-9)


# -- attribute matching on hand-made cases ----------------------------------------------------------------

def _attr(name: str, kind: str, options: list[Any] | None = None, dynamic: bool = False) -> dict[str, Any]:
    a: dict[str, Any] = {"id": name, "name": name, "type": kind, "featureNodeHash": f"a-{name}", "required": False,
                         "dynamic": dynamic}
    if options is not None:
        a["options"] = [{"id": label, "label": label, "value": label, "featureNodeHash": f"o-{label}",
                         **({"options": nested} if nested else {})} for label, nested in options]
    return a


def attribute_ontology(path: Path) -> Path:
    severity = _attr("severity", "radio", [("low", None), ("high", None)])
    car = {"id": "1", "name": "car", "color": "#000000", "shape": "bounding_box", "featureNodeHash": "car00001",
           "attributes": [_attr("colour", "radio", [("red", None), ("blue", None)]),
                          _attr("damage", "checklist", [("dent", [severity]), ("scratch", None)]),
                          _attr("moving", "radio", [("yes", None), ("no", None)], dynamic=True),
                          _attr("plate", "text")]}
    person = {"id": "2", "name": "person", "color": "#000000", "shape": "bounding_box", "featureNodeHash": "per00001"}
    weather = {"id": "c1", "featureNodeHash": "cls-weather", "attributes": [
        _attr("weather", "radio", [("sunny", None), ("rainy", [_attr("intensity", "radio",
                                                                     [("light", None), ("heavy", None)])])])]}
    tags = {"id": "c2", "featureNodeHash": "cls-tags", "attributes": [_attr("tags", "checklist",
                                                                            [("night", None), ("urban", None)])]}
    caption = {"id": "c3", "featureNodeHash": "cls-caption", "attributes": [_attr("caption", "text")]}
    path.write_text(json.dumps({"objects": [car, person], "classifications": [weather, tags, caption]}))
    return path


BOX = {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.3, "h": 0.3}


def obj(ident: str, answers: list[dict[str, Any]], box: dict[str, Any] = BOX, cls: str = "car", conf: float = 0.9,
        frames: tuple[int, ...] = (0,)) -> dict[str, Any]:
    return {"id": ident, "class": {"name": cls}, "answers": answers,
            "frames": [{"frame": f, "geometry": box, "confidence": conf} for f in frames]}


def radio(attr: str, option: str, frames: list[list[int]] | None = None) -> dict[str, Any]:
    return {"attribute": {"name": attr}, "radio": {"name": option}, **({"frames": frames} if frames else {})}


def checklist(attr: str, *options: str) -> dict[str, Any]:
    return {"attribute": {"name": attr}, "checklist": [{"name": o} for o in options]}


def image(objects: list[dict[str, Any]], classifications: list[dict[str, Any]] | None = None,
          title: str = "a.jpg") -> dict[str, Any]:
    return {"title": title, "kind": "image", "width": 100, "height": 100, "objects": objects,
            "classifications": classifications or []}


def run(tmp_path: Path, truth: list[dict[str, Any]], pred: list[dict[str, Any]], **kw: Any) -> Evaluation:
    t, p = tmp_path / "truth.json", tmp_path / "pred.json"
    t.write_text(json.dumps(truth))
    p.write_text(json.dumps(pred))
    ev = evaluate([p], [t], attribute_ontology(tmp_path / "ont.json"), fmt="predport", truth_fmt="predport", **kw)
    assert ev.ok, [str(x) for x in ev.problems]
    return ev


def outcome(ev: Evaluation) -> list[tuple[str, str, str, list[str]]]:
    return sorted((m.instance, m.kind, m.reason, m.attributes) for m in ev.matches)


@pytest.mark.parametrize(("truth", "pred", "strict", "partial"), [
    # a nested radio under a checklist option: it counts only while that option is ticked
    ([checklist("damage", "dent"), radio("severity", "high")], [checklist("damage", "dent"), radio("severity", "low")],
     ["a-severity"], ["a-severity"]),
    ([checklist("damage", "dent"), radio("severity", "high")], [checklist("damage", "dent")], ["a-severity"], []),
    # an attribute missing on either side
    ([radio("colour", "red"), {"attribute": {"name": "plate"}, "text": "AB"}], [radio("colour", "red")],
     ["a-plate"], []),
    ([radio("colour", "red")], [radio("colour", "red"), {"attribute": {"name": "plate"}, "text": "AB"}],
     ["a-plate"], ["a-plate"]),
    # a checklist that differs by one option
    ([checklist("damage", "scratch")], [checklist("damage", "scratch", "dent")], ["a-damage"], ["a-damage"]),
    ([checklist("damage", "scratch", "dent")], [checklist("damage", "dent", "scratch")], [], []),
])
def test_strict_and_partial_attribute_matching(tmp_path: Path, truth: list[dict[str, Any]],
                                               pred: list[dict[str, Any]], strict: list[str],
                                               partial: list[str]) -> None:
    for mode, differ in (("strict", strict), ("partial", partial), ("geometry", [])):
        ev = run(tmp_path, [image([obj("t", truth)])], [image([obj("p", pred)])], match=mode)
        expected = [("p", "tp", "", [])] if not differ else [("p", "fp", "attributes", differ), ("t", "fn", "", [])]
        assert outcome(ev) == expected, mode
        car = ev.objects["car"]
        assert (car.tp, car.fp, car.fn) == ((1, 0, 0) if not differ else (0, 1, 1))


def test_dynamic_attributes_are_compared_on_each_frame(tmp_path: Path) -> None:
    def video(moving: list[dict[str, Any]]) -> dict[str, Any]:
        return {"title": "v.mp4", "kind": "video", "width": 100, "height": 100, "frame_count": 3,
                "objects": [obj("t" if len(moving) == 2 else "p", moving, frames=(0, 1, 2))], "classifications": []}

    truth = video([radio("moving", "yes", [[0, 1]]), radio("moving", "no", [[2, 2]])])
    pred = video([radio("moving", "yes", [[0, 2]])])
    ev = run(tmp_path, [truth], [pred])
    got = sorted((m.frame, m.kind, m.reason) for m in ev.matches)
    assert got == [(0, "tp", ""), (1, "tp", ""), (2, "fn", ""), (2, "fp", "attributes")]


def test_every_false_positive_says_why(tmp_path: Path) -> None:
    far = {"shape": "bounding_box", "x": 0.7, "y": 0.7, "w": 0.2, "h": 0.2}
    near = {"shape": "bounding_box", "x": 0.11, "y": 0.1, "w": 0.3, "h": 0.3}
    small = {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.1, "h": 0.1}
    truth = [image([obj("t1", [radio("colour", "red")]), obj("t2", [], box=far, cls="person")])]
    pred = [image([obj("best", [radio("colour", "red")], conf=0.9),
                   obj("dup", [radio("colour", "red")], box=near, conf=0.8),
                   obj("small", [radio("colour", "red")], box=small, conf=0.7),
                   obj("blue", [radio("colour", "blue")], box=near, conf=0.6),
                   obj("wrong-class", [], box=far, conf=0.5),
                   obj("alone", [], box=far, cls="person", conf=0.4, frames=(0,))])]
    pred[0]["objects"][-1]["frames"][0]["geometry"] = {"shape": "bounding_box", "x": 0.5, "y": 0.0, "w": 0.1, "h": 0.1}
    ev = run(tmp_path, truth, pred)
    why = {m.instance: (m.kind, m.reason) for m in ev.matches if m.kind != "fn"}
    # ("blue" overlaps t1 as well as "dup" does, but its colour differs: it does not fit t1, taken or not)
    assert why == {"best": ("tp", ""), "dup": ("fp", "duplicate"), "small": ("fp", "iou"),
                   "blue": ("fp", "attributes"), "wrong-class": ("fp", "class"), "alone": ("fp", "iou")}
    small_iou = next(m.similarity for m in ev.matches if m.instance == "small")
    assert small_iou == pytest.approx(1 / 9)
    # and alone, "blue" is still the one that fits t1 but for its colour
    ev = run(tmp_path, truth, [image([obj("blue", [radio("colour", "blue")], box=near)])])
    [m] = [m for m in ev.matches if m.instance == "blue"]
    assert (m.kind, m.reason, m.truth, m.attributes) == ("fp", "attributes", "t1", ["a-colour"])
    ev = run(tmp_path, [image([])], [image([obj("x", [])])])
    assert [(m.kind, m.reason) for m in ev.matches] == [("fp", "no_truth")]
    assert ev.objects == {} and ev.without_truth["car"].fp == 1 and ev.map is None


def test_confidence_threshold_counts_but_ap_uses_every_prediction(tmp_path: Path) -> None:
    truth = [image([obj("t1", []), obj("t2", [], box={"shape": "bounding_box", "x": 0.6, "y": 0.6, "w": 0.3,
                                                      "h": 0.3})])]
    pred = [image([obj("hi", [], conf=0.9), obj("lo", [], box=truth[0]["objects"][1]["frames"][0]["geometry"],
                                                  conf=0.2)])]
    ev = run(tmp_path, truth, pred, confidence=0.5)
    car = ev.objects["car"]
    assert (car.tp, car.fp, car.fn, car.recall, car.ap) == (1, 0, 1, 0.5, 1.0)
    assert sorted((m.instance, m.kind) for m in ev.matches) == [("hi", "tp"), ("lo", "below_confidence"),
                                                                ("t2", "fn")]


def test_units_and_frames_on_one_side_only_are_scored_and_counted(tmp_path: Path) -> None:
    truth = [image([obj("t", [])], title="both.jpg"), image([obj("u", [])], title="truth-only.jpg")]
    pred = [image([obj("p", [])], title="both.jpg"), image([obj("q", [])], title="pred-only.jpg")]
    ev = run(tmp_path, truth, pred)
    assert ev.summary["data_units"] == {"paired": 1, "prediction_only": 1, "truth_only": 1}
    assert ev.summary["frames_one_side"] == {"prediction_only": 1, "truth_only": 1} and ev.summary["frames"] == 3
    assert sorted((m.unit, m.kind) for m in ev.matches) == [("both.jpg", "tp"), ("pred-only.jpg", "fp"),
                                                            ("truth-only.jpg", "fn")]


def test_classifications_per_option_and_accuracy(tmp_path: Path) -> None:
    def cls(name: str, answers: list[dict[str, Any]], ident: str = "c") -> dict[str, Any]:
        return {"id": ident + name, "class": {"name": name}, "frames": [[0, 0]], "answers": answers}

    truth = [image([], [cls("weather", [radio("weather", "rainy"), radio("intensity", "heavy")]),
                        cls("tags", [checklist("tags", "night", "urban")]),
                        cls("caption", [{"attribute": {"name": "caption"}, "text": "a street"}])])]
    pred = [image([], [cls("weather", [radio("weather", "rainy"), radio("intensity", "light")]),
                       cls("tags", [checklist("tags", "night")]),
                       cls("caption", [{"attribute": {"name": "caption"}, "text": "a street"}])])]
    strict = run(tmp_path, truth, pred).classifications
    assert strict["weather"] == {"rainy": {"tp": 0, "fp": 1, "fn": 1}, "accuracy": 0.0}
    assert strict["tags"] == {"night": {"tp": 1, "fp": 0, "fn": 0}, "urban": {"tp": 0, "fp": 0, "fn": 1},
                              "accuracy": 0.0}
    assert strict["caption"] == {"text": {"tp": 1, "fp": 0, "fn": 0}, "accuracy": 1.0}
    geometry = run(tmp_path, truth, pred, match="geometry").classifications
    assert geometry["weather"] == {"rainy": {"tp": 1, "fp": 0, "fn": 0}, "accuracy": 1.0}


# -- SDK-made label rows, outputs, the CLI, the live project ----------------------------------------------

def test_label_rows_against_themselves_score_perfectly(tmp_path: Path) -> None:
    rows = DATA / "encord" / "reference"
    files = [p for p in sorted(rows.glob("*.json")) if p.name != "ontology.json"]
    ev = evaluate(files, files, rows / "ontology.json", fmt="encord", truth_fmt="encord")
    assert ev.ok
    assert ev.objects and all(m.fp == 0 and m.fn == 0 and m.ap == 1.0 for m in ev.objects.values())
    assert all(r["accuracy"] == 1.0 for r in ev.classifications.values())
    shapes = {json.loads(p.read_text())["data_units"] and p.stem for p in files}
    assert len(shapes) == len(files)  # every shape's reference row took part


def test_json_document_csv_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ont = coco_ontology(tmp_path / "o.json", json.loads(GT.read_text())["categories"], "bounding_box")
    out = tmp_path / "eval"
    args = ["evaluate", str(COCO_DIR / "instances_val2014_fakebbox100_results.json"), "--truth", str(GT),
            "--ontology", str(ont), "--format", "json", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    assert json.loads((out / "evaluation.json").read_text())["objects"] == doc["objects"]
    with (out / "matches.csv").open() as f:
        rows = list(csv.DictReader(f))
    n_fn = sum(c["fn"] for c in doc["objects"].values())
    assert len(rows) == doc["summary"]["predictions"] + n_fn
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG" and (out / "pr-person.png").is_file()
    assert main(args[:-2]) == 0  # (and again without --out: one JSON document)
    jsonschema.validate(json.loads(capsys.readouterr().out), SCHEMA)


def test_broken_input_is_located_and_nothing_is_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ont = coco_ontology(tmp_path / "o.json", json.loads(GT.read_text())["categories"], "bounding_box")
    results = json.loads((COCO_DIR / "instances_val2014_fakebbox100_results.json").read_text())
    results[3]["bbox"] = [1, 2, "x", 4]
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(results))
    assert main(["evaluate", str(bad), "--truth", str(GT), "--ontology", str(ont), "--out", str(tmp_path / "e")]) == 1
    captured = capsys.readouterr()
    assert f"{bad}#/3" in captured.out and "nothing evaluated" in captured.err
    assert not (tmp_path / "e").exists()


def test_live_project_main_against_a_branch_sends_no_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from encord_stub import PROJECT, Server, State
    from test_upload import ONT, UNITS, predictions

    state = State(json.loads(ONT.read_text()), list(UNITS))
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(predictions()))
    server = Server(state)
    try:
        token = tmp_path / "token"
        token.write_text(state.token)
        remote = ["--project", PROJECT, "--domain", server.url, "--token-file", str(token)]
        # MAIN gets the predictions as its ground truth; the branch gets them with one box moved away
        truth = tmp_path / "truth.json"
        units = predictions()
        truth.write_text(json.dumps(units))
        assert main(["convert", str(truth), "--from", "predport", "--branch", "seed", *remote]) == 0
        for key in [k for k in state.rows if k[1] == "seed"]:
            state.rows[(key[0], "main")] = {**state.rows.pop(key), "branch_name": "main"}
        units[0]["objects"][0]["frames"][0]["geometry"] = {"shape": "bounding_box", "x": 0.6, "y": 0.6, "w": 0.2,
                                                           "h": 0.2}
        preds.write_text(json.dumps(units))
        assert main(["convert", str(preds), "--from", "predport", "--branch", "model-v1", *remote]) == 0
        capsys.readouterr()
        before = len(state.writes())
        assert main(["evaluate", "--branch", "model-v1", "--format", "json", *remote]) == 0
        assert len(state.writes()) == before  # not one write request
        doc = json.loads(capsys.readouterr().out)
        assert doc["summary"]["data_units"]["paired"] == 3
        assert doc["objects"]["Car"]["fp"] == 1 and doc["objects"]["Car"]["fn"] == 1
    finally:
        server.close()


# -- the other shapes -------------------------------------------------------------------------------------

def shapes_ontology(path: Path) -> Path:
    def o(i: int, name: str, shape: str, h: str) -> dict[str, Any]:
        return {"id": str(i), "name": name, "color": "#000000", "shape": shape, "featureNodeHash": h}

    data = {"objects": [o(1, "boat", "rotatable_bounding_box", "boat0001"), o(2, "edge", "polyline", "edge0001"),
                        o(3, "tip", "point", "tip00001"), o(4, "pose", "skeleton", "pose0001"),
                        o(5, "lake", "polygon", "lakepoly"), o(6, "lake", "bitmask", "lakemask")],
            "classifications": [],
            "skeleton_templates": [{"template": {
                "name": "pose", "shape": "skeleton", "width": 1.0, "height": 1.0, "feature_node_hash": "pose0001",
                "skeletonEdges": {}, "skeleton": {str(k): {"x": 0.0, "y": 0.0, "name": n, "color": "#000000",
                                                           "value": n, "featureHash": f"v{k}"}
                                                  for k, n in enumerate(["head", "tail"])}}}]}
    path.write_text(json.dumps(data))
    return path


def one(geometry: dict[str, Any], cls: str, ident: str = "i") -> dict[str, Any]:
    return {"title": "s.jpg", "kind": "image", "width": 100, "height": 100, "classifications": [],
            "objects": [{"id": ident, "class": {"hash": cls}, "frames": [{"frame": 0, "geometry": geometry}]}]}


def similarity_of(tmp_path: Path, truth: dict[str, Any], pred: dict[str, Any], iou: float = 0.5) -> tuple[str, float]:
    t, p = tmp_path / "t.json", tmp_path / "p.json"
    t.write_text(json.dumps([truth]))
    p.write_text(json.dumps([pred]))
    ev = evaluate([p], [t], shapes_ontology(tmp_path / "o.json"), fmt="predport", truth_fmt="predport", iou=iou)
    assert ev.ok, [str(x) for x in ev.problems]
    [m] = [m for m in ev.matches if m.kind != "fn"]
    return m.kind, float(m.similarity or 0.0)


def test_rotated_boxes_are_compared_as_rotated_rectangles(tmp_path: Path) -> None:
    box = {"shape": "rotatable_bounding_box", "x": 0.3, "y": 0.4, "w": 0.4, "h": 0.2, "theta": 0.0}
    assert similarity_of(tmp_path, one(box, "boat0001"), one(box, "boat0001")) == ("tp", pytest.approx(1.0))
    turned = one({**box, "theta": 90.0}, "boat0001")  # 40x20 px turned a quarter: 20x20 of 40x20 + 20x40 - 20x20
    assert similarity_of(tmp_path, one(box, "boat0001"), turned) == ("fp", pytest.approx(1 / 3))
    assert similarity_of(tmp_path, one(box, "boat0001"), turned, iou=0.3) == ("tp", pytest.approx(1 / 3))


def test_points_skeletons_and_polylines(tmp_path: Path) -> None:
    point = {"shape": "point", "x": 0.5, "y": 0.5}
    kind, sim = similarity_of(tmp_path, one(point, "tip00001"), one({**point, "x": 0.6}, "tip00001"))
    assert sim == pytest.approx(np.exp(-0.5), rel=1e-6)  # d = 10 px; scale: the 100x100 frame; sigma 0.05
    pose = {"shape": "skeleton", "points": [{"name": "head", "x": 0.1, "y": 0.1}, {"name": "tail", "x": 0.3, "y": 0.5}]}
    moved = {"shape": "skeleton", "points": [{**pose["points"][0], "x": 0.12}, pose["points"][1]]}
    kind, sim = similarity_of(tmp_path, one(pose, "pose0001"), one(moved, "pose0001"))
    # OKS: the head 2 px off on an object of 20 x 40 px: exp(-4 / (2 * 0.05)^2 / 800 / 2); the tail exact
    assert (kind, sim) == ("tp", pytest.approx((np.exp(-4 / 0.01 / 800 / 2) + 1) / 2, rel=1e-6))
    line = {"shape": "polyline", "points": [0.1, 0.1, 0.9, 0.1, 0.9, 0.9]}
    assert similarity_of(tmp_path, one(line, "edge0001"), one(line, "edge0001")) == ("tp", pytest.approx(1.0))
    far = {"shape": "polyline", "points": [0.1, 0.5, 0.5, 0.5]}
    assert similarity_of(tmp_path, one(line, "edge0001"), one(far, "edge0001")) == ("fp", 0.0)


def test_a_polygon_with_a_hole_against_a_bitmask_of_the_same_class(tmp_path: Path) -> None:
    from predport.core import rle

    mask = np.zeros((100, 100), dtype=np.uint8)
    mask[10:60, 20:80] = 1
    mask[30:40, 40:50] = 0  # the hole
    truth = one({"shape": "bitmask", "width": 100, "height": 100, "rle": rle.from_mask(mask)}, "lakemask")
    outer = [0.2, 0.1, 0.8, 0.1, 0.8, 0.6, 0.2, 0.6]
    hole = [0.4, 0.3, 0.5, 0.3, 0.5, 0.4, 0.4, 0.4]
    pred = one({"shape": "polygon", "polygons": [[outer, hole]]}, "lakepoly")
    kind, sim = similarity_of(tmp_path, truth, pred)
    assert kind == "tp" and sim == pytest.approx(1.0, abs=1e-3)
    no_hole = one({"shape": "polygon", "polygons": [[outer]]}, "lakepoly")
    assert similarity_of(tmp_path, truth, no_hole)[1] == pytest.approx(2900 / 3000, abs=2e-2)
