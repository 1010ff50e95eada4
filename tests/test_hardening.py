"""Inputs that used to crash a run (or the interpreter) are located problems now; each test failed before."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import predport
from conftest import DATA
from sdk_oracle import parse, sdk_ontology

ONT = DATA / "encord" / "reference" / "ontology.json"


def ontology(path: Path) -> Path:
    path.write_text(json.dumps({"objects": [
        {"id": "1", "name": "person", "color": "#000000", "shape": "skeleton", "featureNodeHash": "kp000001"},
        {"id": "2", "name": "mask", "color": "#000000", "shape": "bitmask", "featureNodeHash": "bm000001"},
        {"id": "3", "name": "box", "color": "#000000", "shape": "bounding_box", "featureNodeHash": "bb000001"},
        {"id": "4", "name": "area", "color": "#000000", "shape": "polygon", "featureNodeHash": "pg000001"}],
        "classifications": []}))
    return path


def coco(path: Path, annotations: list[dict[str, Any]], width: Any = 100, height: Any = 80) -> Path:
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": width, "height": height}],
        "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b"]}, {"id": 2, "name": "mask"},
                       {"id": 3, "name": "box"}, {"id": 4, "name": "area"}],
        "annotations": [{"id": k + 1, "image_id": 1, **a} for k, a in enumerate(annotations)]}))
    return path


def errors(report: predport.Report) -> list[tuple[str, str | None]]:
    return [(p.code, p.location.pointer) for p in report.problems if p.severity == "error"]


def test_keypoints_that_are_not_numbers_are_located_and_the_rest_converts(tmp_path: Path) -> None:
    src = coco(tmp_path / "gt.json", [
        {"category_id": 1, "keypoints": ["a", 20, 2, 10, 20, 2]},
        {"category_id": 1, "keypoints": [10, 20, "v", 10, 20, 2]},
        {"category_id": 1, "keypoints": [10, 20, True, 10, 20, 2]},
        {"category_id": 1, "keypoints": [10, 20, 2, 30, 40, 1]},
        {"category_id": 3, "bbox": [1, 2, 3, 4]}])
    report = predport.convert([src], ontology(tmp_path / "o.json"), "b", tmp_path / "out", keep_going=True)
    assert errors(report) == [("source.invalid", "/annotations/0/keypoints/0"),
                              ("source.invalid", "/annotations/1/keypoints/2"),
                              ("source.invalid", "/annotations/2/keypoints/2")]
    assert report.per_group() == {"box": {"converted": 1, "reported": 0}, "person": {"converted": 1, "reported": 3}}


def test_rle_string_outside_latin1_is_an_invalid_rle_not_a_crash(tmp_path: Path) -> None:
    unit = {"title": "a.jpg", "kind": "image", "width": 4, "height": 2, "classifications": [], "objects": [
        {"id": "m", "class": {"name": "mask"},
         "frames": [{"frame": 0, "geometry": {"shape": "bitmask", "width": 4, "height": 2, "rle": rle}}]}
        for rle in ("中", "8")]}
    unit["objects"][1]["id"] = "n"
    src = tmp_path / "u.json"
    src.write_text(json.dumps([unit], ensure_ascii=False))
    report = predport.validate([src], ontology(tmp_path / "o.json"), fmt="predport")
    assert errors(report) == [("bitmask.invalid_rle", "/0/objects/0/frames/0")]  # "8" is 8 background pixels


def test_integral_floats_are_written_as_integers(tmp_path: Path) -> None:
    """1.0 is an integer to JSON Schema; a label row's frame key must still be "1", sizes 10, ranges [[0, 1]]."""
    unit = {"title": "v.mp4", "kind": "video", "width": 10.0, "height": 10.0, "frame_count": 3.0, "fps": 1,
            "objects": [{"id": "a", "class": {"name": "Car"}, "frames": [
                {"frame": 1.0, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}},
                {"frame": 2, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}}]}],
            "classifications": [],
            "boxes": {"classes": [{"class": {"name": "Car"}}], "class": [0], "id": ["t"], "x": [0.5], "y": [0.5],
                      "w": [0.1], "h": [0.1], "frame": [2.0]}}
    src = tmp_path / "u.json"
    src.write_text(json.dumps([unit]))
    report = predport.convert([src], ONT, "b", tmp_path / "out", fmt="predport")
    assert report.ok, [str(p) for p in report.problems]
    row = json.loads((tmp_path / "out" / "v.mp4.json").read_text())
    [du] = row["data_units"].values()
    assert sorted(du["labels"]) == ["1", "2"] and (du["width"], du["height"]) == (10, 10)
    assert type(du["width"]) is int and type(du["height"]) is int
    assert [len(du["labels"][f]["objects"]) for f in ("1", "2")] == [1, 2]
    lr = parse(row, sdk_ontology(json.loads(ONT.read_text())))
    assert sorted(len(lr.get_frame_view(f).get_object_instances()) for f in (0, 1, 2)) == [0, 1, 2]


def test_polygon_vertices_far_outside_the_frame_are_reported_before_pycocotools_sees_them(tmp_path: Path) -> None:
    """A vertex at 1e20 used to kill the interpreter with SIGSEGV inside pycocotools' rasterisation."""
    anns = [{"category_id": 2, "segmentation": [[v, 1, 50, 5, 10, 60]]} for v in (1e20, 1e308, -1e308, 1e9)]
    anns += [{"category_id": 2, "segmentation": [[10, 10, 50, 5, 10, 60, 150, 70]]},  # off the image, nearby: fine
             {"category_id": 4, "segmentation": {"size": [80, 100], "counts": [0, 8000]}}]
    src = coco(tmp_path / "gt.json", anns)
    ont = ontology(tmp_path / "o.json")
    # in a separate interpreter: a crash there fails the test instead of ending the test run
    code = ("import sys; from predport.cli import main; "
            f"sys.exit(main(['validate', {str(src)!r}, '--ontology', {str(ont)!r}]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr[-2000:]
    located = sorted(line.split(": ")[0] for line in run.stdout.splitlines() if "[geometry." in line)
    assert located == [f"{src}#/annotations/{k}/segmentation/0/0" for k in range(4)]
    assert "[geometry.not_finite]" not in run.stdout  # 1e308 is finite, only far out


def test_masks_on_frames_too_large_to_decode_are_reported(tmp_path: Path) -> None:
    big = 1 << 16  # 65536 x 65536: 4 G pixels
    anns = [{"category_id": 2, "segmentation": {"size": [big, big], "counts": [0, big * big]}},
            {"category_id": 2, "segmentation": [[1, 1, 50, 5, 10, 60]]},
            {"category_id": 4, "segmentation": {"size": [big, big], "counts": "0"}}]
    src = coco(tmp_path / "gt.json", anns, width=big, height=big)
    report = predport.validate([src], ontology(tmp_path / "o.json"))
    assert errors(report) == [("frame.too_large", f"/annotations/{k}/segmentation") for k in range(3)]


def test_an_infinite_image_size_is_reported(tmp_path: Path) -> None:
    src = coco(tmp_path / "gt.json", [{"category_id": 3, "bbox": [1, 2, 3, 4]}], width=float("inf"))
    assert "Infinity" in src.read_text()  # (Python's json writes it; int() of it raises OverflowError)
    report = predport.validate([src], ontology(tmp_path / "o.json"))
    assert errors(report) == [("frame.size_unknown", "/annotations/0")]


# -- found by the property-based fuzzer (tests/test_fuzz.py) ----------------------------------------------

def test_coco_top_level_lists_that_are_not_lists_are_located(tmp_path: Path) -> None:
    src = tmp_path / "gt.json"
    src.write_text(json.dumps({"images": 3, "categories": {"id": 1}, "annotations": "x"}))
    report = predport.validate([src], ontology(tmp_path / "o.json"), fmt="coco")
    assert sorted(errors(report)) == [("source.invalid", "/annotations"), ("source.invalid", "/categories"),
                                      ("source.invalid", "/images")]


def test_internal_records_that_are_not_lists_are_schema_problems(tmp_path: Path) -> None:
    src = tmp_path / "u.json"
    src.write_text(json.dumps([{"title": "a.jpg", "kind": "image", "objects": True, "classifications": 5}]))
    report = predport.validate([src], ontology(tmp_path / "o.json"), fmt="predport")
    assert {p.code for p in report.problems} == {"schema.invalid"} and not report.ok


def with_speed(tmp_path: Path) -> Path:
    """The reference ontology with a numeric attribute "Speed" on Car."""
    data = json.loads(ONT.read_text())
    car = next(o for o in data["objects"] if o["name"] == "Car")
    car["attributes"].append({"id": 99, "featureNodeHash": "attSpeed", "name": "Speed", "type": "numeric",
                              "required": False, "dynamic": False})
    path = tmp_path / "ont-speed.json"
    path.write_text(json.dumps(data))
    return path


def test_numbers_no_label_row_can_hold_are_reported_not_written(tmp_path: Path) -> None:
    """An int beyond 64 bits passed validation and made the writer raise (orjson: Integer exceeds 64-bit range)."""
    big = 2 ** 70
    unit = {"title": "v.mp4", "kind": "video", "width": 10, "height": 10, "fps": 1e308, "duration": 1e308,
            "classifications": [{"id": "c", "class": {"name": "Weather"}, "frames": [[0, big]],
                                 "answers": [{"attribute": {"name": "Weather"}, "radio": {"name": "Rainy"}}]}],
            "objects": [{"id": "a", "class": {"name": "Car"}, "frames": [
                {"frame": big, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}}]},
                {"id": "b", "class": {"name": "Car"}, "frames": [
                    {"frame": 0, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}}],
                 "answers": [{"attribute": {"name": "Speed"}, "numeric": big}]}]}
    src = tmp_path / "u.json"
    src.write_text(json.dumps([unit]))
    report = predport.convert([src], with_speed(tmp_path), "b", tmp_path / "out", fmt="predport")
    codes = sorted((p.code, p.location.field) for p in report.problems)
    assert ("schema.invalid", "classifications/0/frames/0/1") in codes
    assert ("schema.invalid", "objects/0/frames/0/frame") in codes
    assert ("unit.frame_count_unknown", None) in codes  # (fps x duration overflows: unknown, not a crash)
    assert not (tmp_path / "out").exists()


def test_numeric_answers_beyond_64_bits_are_reported(tmp_path: Path) -> None:
    unit = {"title": "a.jpg", "kind": "image", "width": 10, "height": 10, "classifications": [], "objects": [
        {"id": "b", "class": {"name": "Car"}, "frames": [
            {"frame": 0, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}}],
         "answers": [{"attribute": {"name": "Speed"}, "numeric": 2 ** 70}]}]}
    # (orjson reads such a number from JSON as a float; a plugin, or a file with NaN that the standard library
    # parses, can hand over the int)
    from predport.core.ontology import Ontology
    from predport.core.validate import check_unit

    _, found = check_unit(unit, Ontology.load(with_speed(tmp_path)))  # type: ignore[arg-type]
    assert [(p.code, p.message) for p in found] == [
        ("answer.type_mismatch", f"numeric answer {2 ** 70} does not fit in 64 bits")]


def test_a_lone_surrogate_in_a_file_with_nan_is_an_unreadable_source(tmp_path: Path) -> None:
    src = tmp_path / "u.json"
    src.write_text('[{"title": "\\ud800", "kind": "image", "width": NaN, "objects": [], "classifications": []}]')
    report = predport.convert([src], ONT, "b", tmp_path / "out", fmt="predport")
    [p] = report.problems.items
    assert p.code == "source.unreadable" and "lone surrogate" in p.message


def test_integers_beyond_the_float_range_are_not_finite_not_a_crash(tmp_path: Path) -> None:
    """A file with NaN is parsed by the standard library, which keeps a 400-digit literal as an int: the box checks
    raised OverflowError on ``x + w`` and ``math.isfinite`` (object records, box tables, classification
    confidences)."""
    def box(x: Any) -> dict[str, Any]:
        return {"shape": "bounding_box", "x": x, "y": 0.1, "w": 0.2, "h": 0.2}

    unit = {"title": "a.jpg", "kind": "image", "width": 640, "height": 480, "objects": [
        {"id": "a", "class": {"name": "Car"}, "frames": [{"frame": 0, "geometry": box("HUGE")}]},
        {"id": "b", "class": {"name": "Car"}, "frames": [{"frame": 0, "geometry": box(0.1), "confidence": "HUGE"}]}],
        "classifications": [{"id": "c", "class": {"name": "Weather"}, "frames": [[0, 0]], "confidence": "-HUGE",
                             "answers": [{"attribute": {"name": "Weather"}, "radio": {"name": "Rainy"}}]}],
        "boxes": {"classes": [{"class": {"name": "Car"}}], "class": [0, 0, 0], "id": ["r1", "r2", "r3"],
                  "x": [0.1, "HUGE", "NAN"], "y": [0.1, 0.5, 0.1], "w": [0.2, 0.1, 0.1], "h": [0.2, 0.1, 0.1],
                  "confidence": [0.9, "HUGE", 0.5]}}
    text = json.dumps([unit]).replace('"NAN"', "NaN")  # (NaN: the file goes to the standard library's parser)
    (tmp_path / "u.json").write_text(re.sub(r'"(-?)HUGE"', r"\g<1>1" + "0" * 400, text))
    report = predport.convert([tmp_path / "u.json"], ONT, "b", tmp_path / "out", fmt="predport")
    assert sorted(errors(report)) == [
        ("confidence.out_of_range", "/0/boxes/id/1"), ("confidence.out_of_range", "/0/classifications/0"),
        ("confidence.out_of_range", "/0/objects/1/frames/0"), ("geometry.not_finite", "/0/boxes/id/1"),
        ("geometry.not_finite", "/0/boxes/id/2"), ("geometry.not_finite", "/0/objects/0/frames/0")]
    assert not (tmp_path / "out").exists()


def test_a_class_reference_that_is_not_a_string_under_a_filter_is_a_schema_problem(tmp_path: Path) -> None:
    """--top-k keys candidates by class before the schema has seen the unit: a name that is a list raised
    TypeError (unhashable) in the ontology's lookup."""
    unit = {"title": "a.jpg", "kind": "image", "width": 10, "height": 10, "classifications": [], "objects": [
        {"id": "a", "class": {"name": ["Car"]}, "frames": [
            {"frame": 0, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}}]}]}
    src = tmp_path / "u.json"
    src.write_text(json.dumps([unit]))
    report = predport.convert([src], ONT, "b", tmp_path / "out", fmt="predport", options={"top_k": 1})
    assert errors(report) == [("schema.invalid", "/0/objects/0")]


def test_a_complex_number_is_not_a_number() -> None:
    """jsonschema took a complex for a number (numbers.Number), then its "minimum" raised TypeError."""
    from predport.core.ontology import Ontology
    from predport.core.validate import check_unit

    unit = {"title": "a.jpg", "kind": "image", "width": 10, "height": 10, "classifications": [], "objects": [
        {"id": "a", "class": {"name": "Car"}, "frames": [
            {"frame": 0, "confidence": 0.5 + 1j,
             "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}}]}]}
    _, found = check_unit(unit, Ontology.load(ONT))  # type: ignore[arg-type]
    assert [(p.code, p.location.field, p.message) for p in found] == [
        ("schema.invalid", "objects/0/frames/0/confidence", "(0.5+1j) is not of type 'number'")]


def test_names_too_long_for_the_file_system_are_missing_files_not_a_failed_reader(tmp_path: Path) -> None:
    """Found by mutating the readers' samples: a VOC image set listing a 300-character name made the reader
    fail with OSError (File name too long) where it looks for the image; so did a MOT seqinfo.ini's imDir."""
    import shutil

    from predport.testing import samples

    long = "x" * 300
    voc = samples("voc")[0]
    shutil.copytree(voc.path, tmp_path / "voc")
    with (tmp_path / "voc" / "ImageSets" / "Main" / "train.txt").open("a") as f:
        f.write(f"\n{long}\n")
    report = predport.convert([tmp_path / "voc"], voc.ontology, "b", tmp_path / "voc.jsonl", fmt="voc")
    assert report.ok and report.units == 4  # (the listed name is an image without predictions, of unknown size)

    mot = next(s for s in samples("mot") if s.path.name == "clip")
    shutil.copytree(mot.path, tmp_path / "mot")
    (tmp_path / "mot" / "seqinfo.ini").write_text(f"[Sequence]\nname=clip\nimDir={long}\n")
    report = predport.convert([tmp_path / "mot"], mot.ontology, "b", tmp_path / "mot.jsonl", fmt="mot")
    assert not any("failed" in p.message for p in report.problems)
    assert "unit.frame_count_unknown" in {p.code for p in report.problems}  # (no frames found: length unknown)


def test_a_unit_that_contains_itself_is_a_schema_problem() -> None:
    """Made plain before the schema's messages (numpy values, tuples, subclasses), a container inside itself
    must not recurse forever: it is left as it is, for the schema to report."""
    from collections import OrderedDict

    from predport.core.ontology import Ontology
    from predport.core.validate import check_unit

    box = {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}
    first = {"id": "a", "class": {"name": "Car"}, "frames": [{"frame": 0, "geometry": box}]}
    unit: dict[str, Any] = {"title": "a.jpg", "kind": "image", "width": 10, "height": 10, "classifications": [],
                            "objects": [first, OrderedDict(id="b", frames=[{"frame": 0, "geometry": dict(box)}])]}
    unit["objects"][1]["class"] = {"name": "Car"}
    box["self"] = unit["objects"]
    unit["objects"][1]["me"] = unit["objects"][1]
    _, found = check_unit(unit, Ontology.load(ONT))  # type: ignore[arg-type]
    assert [(p.code, p.location.field) for p in found] == [
        ("schema.invalid", "objects/0/frames/0/geometry"), ("schema.invalid", "objects/1")]
