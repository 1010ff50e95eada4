"""Every validation code is triggered by a test that also checks where it is reported."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import predport
from conftest import DATA
from predport.core.ontology import Ontology
from predport.core.problems import Problems
from predport.core.validate import validate_unit

ONTOLOGY = DATA / "encord" / "reference" / "ontology.json"
BOX = {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}


def image_unit() -> dict[str, Any]:
    return {
        "title": "img1.jpg", "kind": "image", "width": 640, "height": 480,
        "objects": [
            {"id": "a", "class": {"name": "Car"},
             "frames": [{"frame": 0, "geometry": dict(BOX), "confidence": 0.9}],
             "answers": [{"attribute": {"name": "Plate"}, "text": "AB-1"}]},
            {"id": "b", "class": {"name": "Animal"}, "frames": [{"frame": 0, "geometry": dict(BOX)}],
             "answers": [{"attribute": {"name": "Species"}, "radio": {"name": "Dog"}},
                         {"attribute": {"name": "Dog features"}, "checklist": [{"name": "Spotted"}]}]},
        ],
        "classifications": [
            {"id": "c1", "class": {"name": "Weather"}, "frames": [[0, 0]], "confidence": 0.5,
             "answers": [{"attribute": {"name": "Weather"}, "radio": {"name": "Rainy"}},
                         {"attribute": {"name": "Rain intensity"}, "radio": {"name": "Heavy"}}]}],
    }


def boxes_unit() -> dict[str, Any]:
    unit = image_unit()
    unit["boxes"] = {"classes": [{"class": {"name": "Car"}, "group": "car"}], "class": [0, 0], "id": ["r1", "r2"],
                     "x": [0.1, 0.5], "y": [0.1, 0.5], "w": [0.2, 0.1], "h": [0.2, 0.1], "confidence": [0.9, 0.4]}
    return unit


def video_unit() -> dict[str, Any]:
    return {
        "title": "clip.mp4", "kind": "video", "width": 640, "height": 480, "frame_count": 10,
        "objects": [{"id": "t1", "class": {"hash": "objBBox1"},
                     "frames": [{"frame": f, "geometry": dict(BOX)} for f in (0, 1, 2)],
                     "answers": [{"attribute": {"name": "Moving"}, "radio": {"name": "yes"}, "frames": [[0, 1]]}]}],
        "classifications": [{"id": "k1", "class": {"name": "Scene tags"}, "frames": [[2, 5]],
                             "answers": [{"attribute": {"name": "Scene tags"}, "checklist": [{"name": "Night"}]}]}],
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(unit: dict[str, Any]) -> None:
        *parents, last = [int(t) if t.isdigit() else t for t in path.strip("/").split("/")]
        node: Any = unit
        for t in parents:
            node = node[t]
        node[last] = value
    return apply


def _append(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(unit: dict[str, Any]) -> None:
        node: Any = unit
        for t in [int(t) if t.isdigit() else t for t in path.strip("/").split("/")]:
            node = node[t]
        node.append(copy.deepcopy(value))
    return apply


def _bitmask(w: int, h: int, rle: str) -> dict[str, Any]:
    return {"shape": "bitmask", "width": w, "height": h, "rle": rle}


SKY = {"id": "s", "class": {"name": "Sky"}, "frames": [{"frame": 0, "geometry": _bitmask(12, 8, ">480P1MA")}]}
POSE = {"id": "p", "class": {"name": "Person pose"}, "frames": [{"frame": 0, "geometry": {
    "shape": "skeleton", "points": [{"name": "head", "x": 0.5, "y": 0.1}, {"name": "tail", "x": 0.5, "y": 0.5}]}}]}

# (case id, base unit, mutation, expected code, expected location "pointer" within the file, severity)
CASES: list[tuple[str, Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None], str, str, str]] = [
    ("unknown class with near miss", image_unit, _set("/objects/0/class", {"name": "car "}), "class.unknown",
     "/0/objects/0", "error"),
    ("name and hash disagree", image_unit, _set("/objects/0/class", {"name": "Boat", "hash": "objBBox1"}),
     "class.name_mismatch", "/0/objects/0", "error"),
    ("shape mismatch", image_unit, _set("/objects/0/frames/0/geometry", {"shape": "point", "x": 0.5, "y": 0.5}),
     "class.shape_mismatch", "/0/objects/0/frames/0", "error"),
    ("unknown attribute", image_unit, _set("/objects/0/answers/0/attribute", {"name": "Colour"}),
     "attribute.unknown", "/0/objects/0/answers/0", "error"),
    ("unknown option", image_unit, _set("/objects/1/answers/0/radio", {"name": "Horse"}), "option.unknown",
     "/0/objects/1/answers/0", "error"),
    ("wrong answer type", image_unit, _set("/objects/0/answers/0", {"attribute": {"name": "Plate"}, "numeric": 3}),
     "answer.type_mismatch", "/0/objects/0/answers/0", "error"),
    ("nested answer, parent not selected", image_unit, _set("/objects/1/answers/0/radio", {"name": "Cat"}),
     "answer.parent_not_selected", "/0/objects/1/answers/1", "error"),
    ("answered twice", image_unit, _append("/objects/0/answers", {"attribute": {"name": "Plate"}, "text": "X"}),
     "answer.duplicate", "/0/objects/0/answers/1", "error"),
    ("dynamic answer on an image", image_unit,
     _append("/objects/0/answers", {"attribute": {"name": "Moving"}, "radio": {"name": "no"}, "frames": [[0, 0]]}),
     "answer.dynamic_on_image", "/0/objects/0/answers/1", "warning"),
    ("dynamic answer without the object", video_unit, _set("/objects/0/answers/0/frames", [[1, 4]]),
     "answer.frames_without_object", "/0/objects/0/answers/0", "error"),
    ("frames on a static attribute", image_unit, _set("/objects/0/answers/0/frames", [[0, 0]]),
     "answer.frames_on_static", "/0/objects/0/answers/0", "error"),
    ("NaN coordinate", image_unit, _set("/objects/0/frames/0/geometry/w", math.nan), "geometry.not_finite",
     "/0/objects/0/frames/0", "error"),
    ("infinite coordinate", image_unit, _set("/objects/0/frames/0/geometry/x", math.inf), "geometry.not_finite",
     "/0/objects/0/frames/0", "error"),
    ("box out of frame", image_unit, _set("/objects/0/frames/0/geometry/x", 0.9), "geometry.out_of_frame",
     "/0/objects/0/frames/0", "error"),
    ("zero-area box", image_unit, _set("/objects/0/frames/0/geometry/h", 0.0), "geometry.degenerate",
     "/0/objects/0/frames/0", "error"),
    ("polygon ring of 2 points", image_unit, _append("/objects", {
        "id": "g", "class": {"name": "Building"},
        "frames": [{"frame": 0, "geometry": {"shape": "polygon", "polygons": [[[0.1, 0.1, 0.2, 0.2]]]}}]}),
     "geometry.degenerate", "/0/objects/2/frames/0", "error"),
    ("polyline of 1 point", image_unit, _append("/objects", {
        "id": "l", "class": {"name": "Road edge"},
        "frames": [{"frame": 0, "geometry": {"shape": "polyline", "points": [0.1, 0.1]}}]}),
     "geometry.degenerate", "/0/objects/2/frames/0", "error"),
    ("bitmask of the wrong size", image_unit, _append("/objects", SKY), "bitmask.size_mismatch",
     "/0/objects/2/frames/0", "error"),
    ("bitmask RLE that does not cover the frame", lambda: {**image_unit(), "width": 12, "height": 8,
     "objects": [copy.deepcopy(SKY)]}, _set("/objects/0/frames/0/geometry/rle", ">480P1"), "bitmask.invalid_rle",
     "/0/objects/0/frames/0", "error"),
    ("bitmask on a frame of unknown size", lambda: {**image_unit(), "width": None, "height": None},
     _append("/objects", SKY), "frame.size_unknown", "/0/objects/2/frames/0", "error"),
    ("frame outside an image", image_unit, _set("/objects/0/frames/0/frame", 1), "frame.out_of_range",
     "/0/objects/0/frames/0", "error"),
    ("frame outside a video", video_unit, _set("/objects/0/frames/2/frame", 10), "frame.out_of_range",
     "/0/objects/0/frames/2", "error"),
    ("two geometries on one frame", video_unit, _set("/objects/0/frames/2/frame", 1), "frame.duplicate",
     "/0/objects/0/frames/2", "error"),
    ("confidence above 1", image_unit, _set("/objects/0/frames/0/confidence", 1.5), "confidence.out_of_range",
     "/0/objects/0/frames/0", "error"),
    ("negative classification confidence", image_unit, _set("/classifications/0/confidence", -0.1),
     "confidence.out_of_range", "/0/classifications/0", "error"),
    ("one id, two classes", image_unit, _set("/objects/1/id", "a"), "instance.conflicting_class", "/0/objects/1",
     "error"),
    ("classification on overlapping frames", video_unit, _append("/classifications", {
        "id": "k2", "class": {"name": "Scene tags"}, "frames": [[5, 7]],
        "answers": [{"attribute": {"name": "Scene tags"}, "checklist": [{"name": "Urban"}]}]}),
     "classification.overlap", "/0/classifications/1", "error"),
    ("unknown classification", image_unit, _set("/classifications/0/class", {"name": "Wether"}),
     "classification.unknown", "/0/classifications/0", "error"),
    ("classification without its root answer", image_unit, _set("/classifications/0/answers", [
        {"attribute": {"name": "Rain intensity"}, "radio": {"name": "Heavy"}}]), "classification.no_answer",
     "/0/classifications/0", "error"),
    ("classification range outside the video", video_unit, _set("/classifications/0/frames", [[8, 12]]),
     "frame.out_of_range", "/0/classifications/0", "error"),
    ("unknown skeleton vertex", image_unit, _append("/objects", POSE), "skeleton.unknown_vertex",
     "/0/objects/2/frames/0", "error"),
    ("duplicate skeleton vertex", image_unit, _append("/objects", {**POSE, "frames": [{"frame": 0, "geometry": {
        "shape": "skeleton",
        "points": [{"name": "head", "x": 0.5, "y": 0.1}, {"name": "head", "x": 0.4, "y": 0.1}]}}]}),
     "skeleton.duplicate_vertex", "/0/objects/2/frames/0", "error"),
    ("schema: object without frames", image_unit, lambda u: u["objects"][0].pop("frames"), "schema.invalid",
     "/0/objects/0", "error"),
    ("schema: answer with two kinds", image_unit, _set("/objects/0/answers/0/numeric", 1), "schema.invalid",
     "/0/objects/0/answers/0", "error"),
    ("box table with a short column", boxes_unit, lambda u: u["boxes"]["confidence"].pop(), "boxes.invalid",
     "/0/boxes", "error"),
    ("box table class index out of range", boxes_unit, _set("/boxes/class/1", 1), "boxes.invalid", "/0/boxes",
     "error"),
    ("box table row out of frame", boxes_unit, _set("/boxes/x/1", 0.95), "geometry.out_of_frame",
     "/0/boxes/id/1", "error"),
    ("box table row of a non-box class", boxes_unit,
     lambda u: u["boxes"]["classes"].append({"class": {"name": "Boat"}}) or u["boxes"]["class"].__setitem__(0, 1),
     "class.shape_mismatch", "/0/boxes/id/0", "error"),
    ("box table row with a bad confidence", boxes_unit, _set("/boxes/confidence/0", 1.5),
     "confidence.out_of_range", "/0/boxes/id/0", "error"),
    ("box table row that breaks the schema", boxes_unit, _set("/boxes/y/1", "0.5"), "schema.invalid",
     "/0/boxes/id/1", "error"),
    ("video without a frame count", video_unit, lambda u: u.pop("frame_count"), "unit.frame_count_unknown",
     "/0", "warning"),
]


def _write(tmp_path: Path, units: list[dict[str, Any]]) -> Path:
    path = tmp_path / "units.json"
    path.write_text(json.dumps(units))  # Python's json writes NaN / Infinity tokens: the reader copes
    return path


@pytest.mark.parametrize(("base", "mutate", "code", "pointer", "severity"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_code_and_location(tmp_path: Path, base: Any, mutate: Any, code: str, pointer: str, severity: str) -> None:
    clean = base()
    assert predport.validate([_write(tmp_path, [clean])], ONTOLOGY, fmt="predport").problems.items == []
    unit = base()
    mutate(unit)
    path = _write(tmp_path, [unit])
    report = predport.validate([path], ONTOLOGY, fmt="predport")
    hits = [p for p in report.problems if p.code == code]
    assert hits, [str(p) for p in report.problems]
    assert hits[0].severity == severity
    assert hits[0].location.file == str(path)
    assert hits[0].location.pointer == pointer, str(hits[0])
    assert str(hits[0]).startswith(f"{path}#{pointer}: ")
    assert report.ok is (severity != "error")


def test_near_miss_is_suggested(tmp_path: Path) -> None:
    unit = image_unit()
    unit["objects"][0]["class"] = {"name": "car "}
    report = predport.validate([_write(tmp_path, [unit])], ONTOLOGY, fmt="predport")
    assert "did you mean 'Car'?" in report.problems.items[0].message


def test_ambiguous_class_name(tmp_path: Path) -> None:
    data = json.loads(ONTOLOGY.read_text())
    data["objects"][1]["name"] = "Car"  # a rotatable box named Car: the geometry (a box) settles which
    problems = Problems()
    ru = validate_unit(image_unit(), Ontology.from_dict(data), problems)  # type: ignore[arg-type]
    assert problems.items == [] and ru is not None and ru.objects[0].ontology.hash == "objBBox1"
    data["objects"][7]["name"] = "Car"  # and a second bounding box named Car: ambiguous
    unit = image_unit()
    del unit["objects"][1]  # (the Animal)
    unit["objects"][0]["source"] = {"file": "u.json", "pointer": "/objects/0"}
    validate_unit(unit, Ontology.from_dict(data), problems)  # type: ignore[arg-type]
    assert [(p.code, p.location.pointer) for p in problems] == [("class.ambiguous", "/objects/0")]


def test_ambiguous_attribute_name_settled_by_selected_option() -> None:
    data = json.loads(ONTOLOGY.read_text())
    animal = next(o for o in data["objects"] if o["name"] == "Animal")
    cat = animal["attributes"][0]["options"][1]
    cat["options"].append({"id": "x", "name": "Dog features", "type": "text", "featureNodeHash": "attCatDF",
                           "required": False, "dynamic": False})  # a second "Dog features", under Cat
    ont = Ontology.from_dict(data)
    problems = Problems()
    ru = validate_unit(image_unit(), ont, problems)  # type: ignore[arg-type]
    assert problems.items == [] and ru is not None
    assert [a.attribute.hash for a in ru.objects[1].static] == ["attSpec1", "attDogF1"]
    unit = image_unit()
    unit["objects"][1]["answers"] = [{"attribute": {"name": "Dog features"}, "text": "x"}]
    validate_unit(unit, ont, problems)  # type: ignore[arg-type]
    assert [p.code for p in problems] == ["attribute.ambiguous"]


@pytest.mark.parametrize(("branch", "fragment"), [("has space", "may only contain"), ("a/b", "may only contain"),
                                                 ("main", "ground truth"), ("encord-cons", "reserved"),
                                                 ("", "may only contain")])
def test_branch_names(tmp_path: Path, branch: str, fragment: str) -> None:
    path = _write(tmp_path, [image_unit()])
    report = predport.convert([path], ONTOLOGY, branch, tmp_path / "out", fmt="predport")
    [p] = report.problems.items
    assert (p.code, p.location.record) == ("branch.invalid", "--branch") and fragment in p.message
    assert not (tmp_path / "out").exists()


def test_branch_names_are_case_sensitive(tmp_path: Path) -> None:
    for ok in ("Main", "MAIN", "preds_v1.2-x", "Encord-x"):
        assert predport.convert([_write(tmp_path, [image_unit()])], ONTOLOGY, ok, tmp_path / ok,
                                fmt="predport").ok


def test_duplicate_unit_titles(tmp_path: Path) -> None:
    report = predport.validate([_write(tmp_path, [image_unit(), image_unit()])], ONTOLOGY, fmt="predport")
    [p] = report.problems.items
    assert (p.code, p.location.pointer) == ("unit.duplicate", "/1")


def test_unreadable_source(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"title": ')
    report = predport.validate([path], ONTOLOGY, fmt="predport")
    [p] = report.problems.items
    assert (p.code, p.location.file) == ("source.unreadable", str(path))


def test_a_classification_whose_name_disagrees_with_its_hash_is_reported_and_counted_as_reported(
        tmp_path: Path) -> None:
    unit = image_unit()
    unit["classifications"][0]["class"] = {"name": "Caption", "hash": "clsWeath"}
    unit["classifications"][0]["source"] = {"file": "x", "group": "weather"}
    report = predport.validate([_write(tmp_path, [unit])], ONTOLOGY, fmt="predport")
    assert [(p.code, p.location.file) for p in report.problems] == [("class.name_mismatch", "x")]
    assert report.per_group() == {"weather": {"converted": 0, "reported": 1}}  # (it used to count as converted)
    assert dict(report.classifications) == {}
