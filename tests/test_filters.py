"""--min-confidence and --top-k (the core's, for every reader): what they leave out is counted as filtered per
input class, the rest is written as it was; and the provenance a conversion records in its manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

import predport
from conftest import DATA, coco_ontology
from predport.cli import main

COCO = DATA / "coco"
RESULTS, IMAGES = COCO / "instances_val2014_fakebbox100_results.json", COCO / "instances_val2014_100.json"


def ontology(tmp: Path, shape: str = "bounding_box") -> Path:
    return coco_ontology(tmp / "ont.json", json.loads(IMAGES.read_text())["categories"], shape)


def written(out: Path) -> dict[str, list[float]]:
    """Per image, the confidences of its written objects, sorted."""
    manifest = json.loads((out / "manifest.json").read_text())
    got = {}
    for u in manifest["units"]:
        [du] = json.loads((out / u["file"]).read_text())["data_units"].values()
        got[u["title"]] = sorted(o["confidence"] for o in du["labels"]["objects"])
    return got


@pytest.mark.parametrize(("workers", "c", "k"), [(1, 0.3, 2), (2, 0.3, 2), (1, 0.3, None), (2, 0.5, 50)])
def test_min_confidence_and_top_k_leave_out_only_what_they_say_and_count_it(
        tmp_path: Path, workers: int, c: float, k: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also on the COCO reader's shared tables (its plain boxes, numpy loaded): each unit stays a slice of the
    table filtered once (filters._Filtered), top-k ranking the rows of each unit the table says it has."""
    from predport.core import filters

    anns = json.loads(RESULTS.read_text())
    images = {im["id"]: im["file_name"] for im in json.loads(IMAGES.read_text())["images"]}
    cats = {c["id"]: c["name"] for c in json.loads(IMAGES.read_text())["categories"]}
    # what should stay: score >= c, then the k best of each image and category (ties: the earlier)
    groups: dict[tuple[Any, Any], list[tuple[float, int]]] = defaultdict(list)
    for n, a in enumerate(anns):
        if a["score"] >= c:
            groups[(a["image_id"], a["category_id"])].append((-a["score"], n))
    kept = {n for g in groups.values() for _, n in (sorted(g)[:k] if k is not None else g)}
    sliced: Counter[bool] = Counter()  # (units filtered as slices, and as plain tables: in this process)
    unit = filters._Filtered.unit

    def spy(self: Any, *args: Any) -> Any:
        out = unit(self, *args)
        sliced[out is not None] += 1
        return out

    monkeypatch.setattr(filters._Filtered, "unit", spy)
    want: dict[str, list[float]] = {name: [] for name in images.values()}
    filtered: Counter[str] = Counter()
    for n, a in enumerate(anns):
        if n in kept:
            want[images[a["image_id"]]].append(a["score"])
        else:
            filtered[cats[a["category_id"]]] += 1
    report = predport.convert([RESULTS], ontology(tmp_path), "b", tmp_path / "out", options={
        "images": str(IMAGES), "min_confidence": c, **({"top_k": k} if k is not None else {})}, workers=workers)
    assert report.ok
    assert written(tmp_path / "out") == {t: sorted(v) for t, v in want.items()}
    got = {g: v.get("filtered", 0) for g, v in report.per_group().items()}
    assert {g: n for g, n in got.items() if n} == dict(filtered) and sum(filtered.values()) > 100
    assert all(v["converted"] + v["reported"] + v.get("filtered", 0) == Counter(
        cats[a["category_id"]] for a in anns)[g] for g, v in report.per_group().items())
    if workers == 1:  # (top-k too: the COCO reader's shared tables say where their units begin)
        assert sliced[True] > 0 and sliced[False] == 0, sliced


def test_filters_apply_to_object_records_and_tracks(tmp_path: Path) -> None:
    """Object records (not box tables) and tracks: a frame below the threshold goes, the track keeps the rest."""
    units = [{"title": "clip.mp4", "kind": "video", "width": 100, "height": 100, "frame_count": 10, "objects": [
        {"id": "t1", "class": {"name": "person"}, "frames": [
            {"frame": f, "confidence": conf, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2,
                                                           "h": 0.2}, "source": {"file": "u.json", "group": "person"}}
            for f, conf in ((0, 0.9), (1, 0.2), (2, 0.8))]},
        {"id": "t2", "class": {"name": "person"}, "frames": [
            {"frame": 1, "confidence": 0.1,
             "geometry": {"shape": "bounding_box", "x": 0.5, "y": 0.5, "w": 0.2, "h": 0.2},
             "source": {"file": "u.json", "group": "person"}}]}],
        "classifications": []}]
    src = tmp_path / "u.json"
    src.write_text(json.dumps(units))
    report = predport.convert([src], ontology(tmp_path), "b", tmp_path / "out", fmt="predport",
                              options={"min_confidence": 0.5})
    assert report.ok and report.per_group()["person"] == {"converted": 2, "reported": 0, "filtered": 2}
    row = json.loads((tmp_path / "out" / "clip.mp4.json").read_text())
    [du] = row["data_units"].values()
    assert sorted(du["labels"]) == ["0", "2"]  # (t2 is gone; t1 lost frame 1)


def test_a_confidence_that_is_not_a_number_is_reported_not_filtered(tmp_path: Path) -> None:
    anns = json.loads(RESULTS.read_text())[:50]
    anns[3]["score"] = float("nan")
    src = tmp_path / "r.json"
    src.write_text(json.dumps(anns).replace("NaN", "NaN"))
    report = predport.convert([src], ontology(tmp_path), "b", tmp_path / "out",
                              options={"images": str(IMAGES), "min_confidence": 0.5})
    assert [p.code for p in report.problems if p.severity == "error"] == ["confidence.out_of_range"]


@pytest.mark.parametrize(("args", "message"), [(["--min-confidence", "2"], "not in [0, 1]"),
                                               (["--top-k", "0"], "at least 1")])
def test_bad_filter_values_are_usage_errors(tmp_path: Path, args: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(RESULTS), "--images", str(IMAGES), "--ontology", str(ontology(tmp_path)),
                 *args]) == 2
    assert message in capsys.readouterr().err


def test_the_manifest_records_the_model_the_filters_and_every_input_file(tmp_path: Path) -> None:
    (tmp_path / "classes.yaml").write_text("person: person\n")
    out = tmp_path / "preds.jsonl"
    assert main(["convert", str(RESULTS), "--images", str(IMAGES), "--ontology", str(ontology(tmp_path)),
                 "--branch", "yolo-v8", "--out", str(out), "--class-map", str(tmp_path / "classes.yaml"),
                 "--min-confidence", "0.25", "--model", "yolov8x", "--model-version", "8.1.0", "--note",
                 "trained on split A", "--quiet"]) == 0
    prov = json.loads((tmp_path / "preds.manifest.json").read_text())["provenance"]

    def digest(p: Path) -> dict[str, Any]:
        return {"path": str(p), "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}

    assert prov == {"model": "yolov8x", "model_version": "8.1.0", "note": "trained on split A",
                    "filters": {"min_confidence": 0.25}, "sources": [digest(RESULTS)],
                    "option_files": {"class_map": digest(tmp_path / "classes.yaml"), "coco.images": digest(IMAGES)},
                    "predport_version": predport.__version__}


def test_top_k_counts_table_rows_and_object_records_of_one_class_together(tmp_path: Path) -> None:
    """A box table naming its class by feature hash and object records naming it by name: --top-k ranks them
    together, per frame and class, as the ontology resolves the class."""
    ont = ontology(tmp_path)
    person = next(o for o in json.loads(ont.read_text())["objects"] if o["name"] == "person")
    src = {"file": "u.json", "group": "person"}
    units = [{"title": "a.jpg", "kind": "image", "width": 100, "height": 100, "classifications": [],
              "objects": [{"id": "o1", "class": {"name": "person"}, "frames": [
                  {"frame": 0, "confidence": 0.9, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2,
                                                               "h": 0.2}, "source": src}]}],
              "boxes": {"classes": [{"class": {"hash": person["featureNodeHash"]}, "group": "person"}],
                        "class": [0, 0], "id": ["b1", "b2"], "x": [0.1, 0.3], "y": [0.1, 0.3], "w": [0.2, 0.2],
                        "h": [0.2, 0.2], "confidence": [0.5, 0.7], "source": {"file": "u.json"}}}]
    path = tmp_path / "u.json"
    path.write_text(json.dumps(units))
    report = predport.convert([path], ont, "b", tmp_path / "out", fmt="predport", options={"top_k": 1})
    assert report.ok and report.per_group()["person"] == {"converted": 1, "reported": 0, "filtered": 2}
    assert written(tmp_path / "out")["a.jpg"] == [0.9]


def test_min_confidence_filters_classifications_too(tmp_path: Path) -> None:
    ont = tmp_path / "ont.json"
    ont.write_text(json.dumps({"objects": [], "classifications": [
        {"id": "1", "featureNodeHash": "clsScene", "attributes": [
            {"id": "1.1", "name": "Scene", "type": "radio", "featureNodeHash": "attScene", "required": False,
             "options": [{"id": "1.1.1", "label": "day", "value": "day", "featureNodeHash": "optDay00"}]}]}]}))
    units = [{"title": "a.jpg", "kind": "image", "width": 10, "height": 10, "objects": [], "classifications": [
        {"id": f"c{n}", "class": {"name": "Scene"}, "frames": [[0, 0]], "confidence": conf,
         "answers": [{"attribute": {"name": "Scene"}, "radio": {"name": "day"}}],
         "source": {"file": "u.json", "group": "scene"}} for n, conf in enumerate((0.2, 0.9))]}]
    src = tmp_path / "u.json"
    src.write_text(json.dumps(units))
    report = predport.convert([src], ont, "b", tmp_path / "out", fmt="predport", options={"min_confidence": 0.5})
    assert report.ok and report.per_group()["scene"] == {"converted": 1, "reported": 0, "filtered": 1}
    row = json.loads((tmp_path / "out" / "a.jpg.json").read_text())
    assert [c["confidence"] for c in row["classification_answers"].values()] == [0.9]


def test_provenance_of_a_dataset_directory_hashes_its_labels_not_its_images() -> None:
    """A YOLO dataset directory: data.yaml and the label files are hashed; the images are counted, not hashed
    (a dataset directory may hold gigabytes of them)."""
    from predport.core.filters import Filters
    from predport.core.pipeline import provenance

    root = DATA / "yolo" / "yolov8_detection"
    prov = provenance([root], {}, Filters())
    assert [s["path"] for s in prov["sources"]] == [str(root / "data.yaml"), str(root / "labels/train/1.txt")]
    assert prov["sources"][1]["sha256"] == hashlib.sha256((root / "labels/train/1.txt").read_bytes()).hexdigest()
    assert prov["media_not_hashed"] == 1


def test_a_directory_sources_provenance_is_computed_in_a_process_and_reaches_the_manifest(tmp_path: Path) -> None:
    """A directory source's digests are many small files' Python work: they are computed in a forked process
    (in a thread they would hold the GIL against the run) and reach the manifest as the same provenance."""
    from predport.core.filters import Filters
    from predport.core.pipeline import provenance

    root = DATA / "yolo" / "yolov8_detection"
    ont = coco_ontology(tmp_path / "ont.json", [{"id": k, "name": f"label_{k}"} for k in range(10)])
    report = predport.convert([root], ont, "b", tmp_path / "out.jsonl", options={"model": "m"})
    assert report.ok
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest["provenance"] == provenance([root], {"model": "m"}, Filters())


def test_a_provenance_process_that_fails_or_dies_is_an_error_that_says_so() -> None:
    import os
    import signal

    from predport.core.pipeline import _Background
    from predport.core.problems import PredportError

    def fails() -> Any:
        raise OSError("no such file: x.txt")

    with pytest.raises(PredportError, match=r"record its SHA-256: OSError: no such file: x\.txt"):
        _Background(fails)()

    def dies() -> Any:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(PredportError, match="was killed by SIGKILL"):
        _Background(dies)()
    assert _Background(lambda: {"a": 1})() == {"a": 1}
