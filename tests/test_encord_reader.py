"""The encord reader's input variants and what it reports instead of dropping."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import predport
from conftest import DATA

REF = DATA / "encord" / "reference"
CLIENT = DATA / "encord" / "client"
ONT = REF / "ontology.json"
DU = "00000000-0000-0000-0000-000000000000"


def _units(path: Path, ontology: Path = ONT) -> tuple[list[dict], predport.Problems]:
    problems = predport.Problems()
    units = list(predport.read([path], ontology, fmt="encord", problems=problems))
    return units, problems


def test_legacy_polygon_key_alone(tmp_path: Path) -> None:
    row = json.loads((REF / "image-polygon.json").read_text())
    for o in row["data_units"][DU]["labels"]["objects"]:
        del o["polygons"]  # only the legacy dict: first ring of the first polygon
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(row))
    [unit], problems = _units(path)
    assert not problems.items
    geometry = unit["objects"][0]["frames"][0]["geometry"]
    assert geometry == {"shape": "polygon", "polygons": [[[0.1, 0.1, 0.4, 0.1, 0.25, 0.4]]]}


def test_polygons_key_keeps_holes_and_parts() -> None:
    [unit], _ = _units(REF / "image-polygon.json")
    g = unit["objects"][1]["frames"][0]["geometry"]
    assert [len(part) for part in g["polygons"]] == [2, 1]  # outer + hole, then a second part


def test_both_skeleton_visibility_forms(tmp_path: Path) -> None:
    row = json.loads((REF / "image-skeleton.json").read_text())
    pts = row["data_units"][DU]["labels"]["objects"][0]["skeleton"]
    del pts["1"]["visibility"]
    pts["1"]["occluded"] = True  # flag form
    del pts["2"]["visibility"]
    pts["2"]["invisible"] = True
    pts["0"]["invisible"] = False
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(row))
    [unit], _ = _units(path)
    flags = [p.get("visibility") for p in unit["objects"][0]["frames"][0]["geometry"]["points"]]
    [plain], _ = _units(REF / "image-skeleton.json")
    strings = [p.get("visibility") for p in plain["objects"][0]["frames"][0]["geometry"]["points"]]
    assert flags == ["visible", "occluded", "invisible"] and strings == [None, "occluded", "invisible"]


def test_directory_and_list_and_own_output(tmp_path: Path) -> None:
    src = tmp_path / "rows"
    (src / "nested").mkdir(parents=True)
    shutil.copy(REF / "image-point.json", src / "a.json")
    rows = [json.loads((REF / n).read_text()) for n in ("image-polyline.json", "image-bitmask.json")]
    rows[0]["data_title"], rows[1]["data_title"] = "line.jpg", "mask.jpg"
    (src / "nested" / "list.json").write_text(json.dumps(rows))
    units, problems = _units(src)
    assert [u["title"] for u in units] == ["a", "line.jpg", "mask.jpg"] and not problems.items
    assert units[1]["source"]["pointer"] == "/0"
    out = tmp_path / "out"
    assert predport.convert([src], ONT, "preds", out).ok
    again, problems = _units(out)  # a converted directory reads back; its manifest is not a row
    assert sorted(u["title"] for u in again) == ["a", "line.jpg", "mask.jpg"] and not problems.items


def test_non_row_json_in_a_directory_is_reported(tmp_path: Path) -> None:
    shutil.copy(REF / "image-point.json", tmp_path / "a.json")
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    units, problems = _units(tmp_path)
    assert len(units) == 1
    assert [(p.code, p.severity, p.location.file) for p in problems] == [
        ("source.invalid", "warning", str(tmp_path / "notes.json"))]


def test_object_without_geometry_is_reported(tmp_path: Path) -> None:
    row = json.loads((REF / "image-point.json").read_text())
    del row["data_units"][DU]["labels"]["objects"][0]["point"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(row))
    _, problems = _units(path)
    [p] = problems.items
    assert (p.code, p.location.pointer) == ("source.invalid", f"/data_units/{DU}/labels/objects/0")


def test_orphaned_classification_instances_are_reported() -> None:
    path = CLIENT / "native_image_data_classification_with_no_answer.labels.json"
    [unit], problems = _units(path, CLIENT / "all_ontology_types.ontology.json")
    assert unit["classifications"] == []
    assert [p.code for p in problems] == ["classification.no_answer"] * 3
    assert all(p.severity == "warning" for p in problems)


def test_range_less_classifications_take_their_frames_from_the_listing() -> None:
    [unit], problems = _units(CLIENT / "image_group.labels.json", CLIENT / "image_group.ontology.json")
    assert sorted(c["frames"][0][0] for c in unit["classifications"]) == [0, 1, 2]
    assert not problems.items


def test_skeleton_class_without_template_is_said(tmp_path: Path) -> None:
    rows = json.loads((CLIENT / "exporter_labels_list.labels.json").read_text())
    path = tmp_path / "img.json"
    path.write_text(json.dumps([r for r in rows if r["data_type"] == "image"]))
    report = predport.validate([path], CLIENT / "exporter.ontology.json")
    assert report.ok
    assert "skeleton.no_template" in report.problems.by_code


def test_answers_of_an_object_on_no_frame_are_reported(tmp_path: Path) -> None:
    row = json.loads((REF / "image-bounding_box.json").read_text())
    row["object_answers"]["ghost001"] = {"objectHash": "ghost001", "classifications": [
        {"name": "Plate", "value": "plate", "featureHash": "attPlate", "answers": "X"}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(row))
    [unit], problems = _units(path)
    assert len(unit["objects"]) == 1
    [p] = problems.items
    assert (p.code, p.severity, p.location.pointer) == ("source.invalid", "warning", "/object_answers/ghost001")


def test_a_malformed_row_is_reported_and_the_others_read(tmp_path: Path) -> None:
    good = json.loads((REF / "image-point.json").read_text())
    bad = json.loads((REF / "video-objects-dynamic-attribute-classification-range.json").read_text())
    bad["data_units"][DU]["labels"]["seven"] = bad["data_units"][DU]["labels"].pop("7")  # not a frame number
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([good, bad]))
    units, problems = _units(path)
    assert len(units) == 1
    [p] = problems.items
    assert (p.code, p.location.pointer) == ("source.invalid", "/1") and "ValueError" in p.message


def test_mutated_label_rows_are_reported_never_raised(tmp_path: Path) -> None:
    """Seeded junk anywhere in real label rows (e.g. an infinite data_sequence): every run finishes."""
    import copy
    import random

    from test_fastschema import JUNK, paths

    ref = DATA / "encord" / "reference"
    rows = [json.loads(p.read_text()) for p in sorted(ref.glob("*.json")) if p.name != "ontology.json"]
    rng = random.Random(2)
    src = tmp_path / "row.json"
    group = json.loads((ref / "image-group-two-images.json").read_text())
    next(iter(group["data_units"].values()))["data_sequence"] = math.inf  # (int(inf) is an OverflowError)
    src.write_text(json.dumps(group))
    report = predport.convert([src], ref / "ontology.json", "b", tmp_path / "out", fmt="encord")
    assert [p.code for p in report.problems] == ["source.invalid"]
    reported = 0
    for _ in range(150):
        doc = copy.deepcopy(rng.choice(rows))
        for _ in range(rng.randint(1, 3)):
            *parents, key = rng.choice(paths(doc)[1:])
            parent: Any = doc
            for t in parents:
                parent = parent[t]
            parent[key] = copy.deepcopy(rng.choice([*JUNK, math.inf]))
        src.write_text(json.dumps(doc))
        report = predport.convert([src], ref / "ontology.json", "b", tmp_path / "out", fmt="encord", keep_going=True)
        reported += not report.ok
    assert reported > 50
