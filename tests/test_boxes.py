"""The box table is a bulk form of object records, nothing more: a unit with a table and the same unit with
the table expanded into objects give the same problems (codes, messages, locations), counts and label rows."""

from __future__ import annotations

import copy
import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from hypothesis import event, given, settings
from hypothesis import strategies as st

import predport
from conftest import DATA, load
from predport.converters.coco import CocoReader
from predport.core import boxes
from predport.core.ontology import Ontology
from predport.core.problems import Problems
from predport.core.reader import ReadContext
from predport.core.validate import ResolvedUnit, validate_unit
from predport.core.writer import build_row, instance_hash, row_bytes

ONTOLOGY = Ontology.load(DATA / "encord" / "reference" / "ontology.json")
TS = "Thu, 26 Nov 2026 00:00:00 UTC"

# (class index, id, x, y, w, h, confidence, what the row tests)
ROWS = [
    (0, "r0", 0.1, 0.1, 0.2, 0.2, 0.9, "plain"),
    (1, "r1", 0.0, 0.0, 1.0, 1.0, 1, "the whole frame, class by name, integer confidence"),
    (0, "r2", 0.95, 0.1, 0.1, 0.1, 0.5, "out of frame"),
    (0, "r3", 0.5, 0.5, 0.5 + 1e-12, 0.1, 0.5, "over the edge within the tolerance: accepted"),
    (0, "r4", math.nan, 0.1, 0.1, 0.1, 0.5, "NaN"),
    (0, "r5", 0.1, 0.1, 0.0, 0.1, 0.5, "zero width"),
    (2, "r6", 0.1, 0.1, 0.1, 0.1, 0.5, "unknown class"),
    (3, "r7", 0.1, 0.1, 0.1, 0.1, 0.5, "a polygon class"),
    (0, "dup", 0.1, 0.1, 0.1, 0.1, 0.5, "an id used twice ..."),
    (0, "dup", 0.2, 0.2, 0.1, 0.1, 0.5, "... on one frame of an image"),
    (0, "a", 0.3, 0.3, 0.1, 0.1, 0.5, "the id of an object record"),
    (0, "r11", 0.3, 0.3, 0.1, 0.1, 1.5, "confidence above 1"),
    (0, "r12", 0.3, 0.3, 0.1, 0.1, math.nan, "NaN confidence"),
    (4, "r13", 0.3, 0.3, 0.1, 0.1, 0.5, "hash and name disagree"),
    (0, "12345678", 0.4, 0.4, 0.1, 0.1, 0.5, "an id that is kept as the object hash"),
]
CLASSES = [{"class": {"hash": "objBBox1"}, "group": "car"}, {"class": {"name": "Animal"}, "group": "animal"},
           {"class": {"name": "Cat"}, "group": "cat"}, {"class": {"name": "Building"}, "group": "building"},
           {"class": {"name": "Animal", "hash": "objBBox1"}}]


def table(rows: list[tuple[Any, ...]], **extra: Any) -> dict[str, Any]:
    cols = list(zip(*rows, strict=True))
    return {"classes": copy.deepcopy(CLASSES), "class": list(cols[0]), "id": list(cols[1]), "x": list(cols[2]),
            "y": list(cols[3]), "w": list(cols[4]), "h": list(cols[5]), "confidence": list(cols[6]),
            "pointer": [f"/{k}/bbox" for k in range(len(rows))], "source": {"file": "results.json"}, **extra}


def image_unit(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    return {"title": "img.jpg", "kind": "image", "width": 640, "height": 480, "classifications": [],
            "objects": [{"id": "a", "class": {"name": "Car"},
                         "frames": [{"frame": 0, "geometry": {"shape": "bounding_box", "x": 0.5, "y": 0.5, "w": 0.1,
                                                              "h": 0.1}}]}],
            "boxes": table(rows), "source": {"file": "images.json", "pointer": "/images/0"}}


def both(unit: dict[str, Any]) -> tuple[tuple[ResolvedUnit | None, Problems], tuple[ResolvedUnit | None, Problems]]:
    out = []
    for u in (unit, boxes.expand(copy.deepcopy(unit))):
        problems = Problems()
        out.append((validate_unit(u, ONTOLOGY, problems), problems))  # type: ignore[arg-type]
    return out[0], out[1]


def problem_set(problems: Problems) -> list[tuple[Any, ...]]:
    return sorted((p.code, p.severity, p.message, str(p.location), p.location.field) for p in problems)


def canonical(row: dict[str, Any]) -> dict[str, Any]:
    """A label row with every frame's objects in objectHash order (their order in a row means nothing)."""
    row = copy.deepcopy(row)
    for du in row["data_units"].values():
        labels = du["labels"]
        for lab in ([labels] if "objects" in labels else labels.values()):
            lab["objects"].sort(key=lambda o: o["objectHash"])
    return row


def test_every_row_gets_the_problems_of_its_object_record() -> None:
    (ru, problems), (ref, ref_problems) = both(image_unit(ROWS))
    assert problem_set(problems) == problem_set(ref_problems)
    codes = {p.code for p in problems}
    assert {"geometry.out_of_frame", "geometry.not_finite", "geometry.degenerate", "class.unknown",
            "class.shape_mismatch", "frame.duplicate", "confidence.out_of_range", "class.name_mismatch"} <= codes
    out_of_frame = next(p for p in problems if p.code == "geometry.out_of_frame")
    assert str(out_of_frame.location) == "results.json#/2/bbox"
    assert ru is not None and ref is not None
    assert ru.boxes is not None and ru.boxes.rows == [0, 1, 14]  # the rows no check doubted
    # record i of the expansion is row i - 1 (after the one object record)
    assert ru.rejected == {("boxes", i - 1) if i >= 1 else ("objects", i) for _, i in ref.rejected}
    assert {k for kind, k in ru.rejected if kind == "boxes"} == {2, 4, 5, 6, 7, 9, 10, 11, 12, 13}
    # doubted rows are counted in their group one by one, like records (row 13's class names no group)
    assert Counter(g for kind, _, g in ru.grouped if kind == "boxes") == {"car": 9, "cat": 1, "building": 1}


def test_valid_rows_write_the_same_label_row() -> None:
    valid = [r for r in ROWS if r[-1].startswith(("plain", "the whole", "over the edge", "an id that"))]
    unit = image_unit(valid)
    (ru, problems), (ref, ref_problems) = both(unit)
    assert problems.items == [] and ref_problems.items == []
    assert ru is not None and ref is not None
    row, expected = build_row(ru, "preds", TS), build_row(ref, "preds", TS)
    assert canonical(row) == canonical(expected)
    objects = row["data_units"][next(iter(row["data_units"]))]["labels"]["objects"]
    assert len(objects) == 1 + len(valid) and len(row["object_answers"]) == 1 + len(valid)
    assert "12345678" in row["object_answers"]
    assert sorted(repr(o["confidence"]) for o in objects) == ["0.5", "0.5", "0.9", "1", "1.0"]  # as given


def test_video_rows_with_frames_and_tracks() -> None:
    rows = [(0, "t", 0.1, 0.1, 0.1, 0.1, 0.5, ""), (0, "t", 0.2, 0.1, 0.1, 0.1, 0.6, ""),
            (0, "u", 0.1, 0.1, 0.1, 0.1, 0.5, ""), (0, "v", 0.1, 0.1, 0.1, 0.1, 0.5, "")]
    unit = {"title": "clip.mp4", "kind": "video", "width": 640, "height": 480, "frame_count": 10,
            "objects": [], "classifications": [], "boxes": table(rows, frame=[0, 3, 9, 10])}
    (ru, problems), (ref, ref_problems) = both(unit)
    assert problem_set(problems) == problem_set(ref_problems)
    assert [p.code for p in problems] == ["frame.out_of_range"]  # frame 10 of 10
    assert ru is not None and ref is not None
    unit["boxes"]["frame"][3] = 5
    (ru, problems), (ref, _) = both(unit)
    assert problems.items == []
    row, expected = canonical(build_row(ru, "preds", TS)), canonical(build_row(ref, "preds", TS))  # type: ignore[arg-type]
    assert row == expected
    labels = next(iter(row["data_units"].values()))["labels"]
    assert sorted(labels, key=int) == ["0", "3", "5", "9"]
    assert len(row["object_answers"]) == 3  # "t" is one track on frames 0 and 3


def test_run_counts_and_ledger_match(tmp_path: Path) -> None:
    unit = image_unit(ROWS)
    summaries = []
    for name, u in (("table", unit), ("records", boxes.expand(copy.deepcopy(unit)))):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps([u]))
        report = predport.convert([path], ONTOLOGY, "preds", tmp_path / name, fmt="predport", keep_going=True)
        s = report.summary()
        summaries.append({k: s[k] for k in ("objects", "object_frames", "problems", "errors", "per_group")})
    assert summaries[0] == summaries[1]
    assert summaries[0]["per_group"]["car"]["reported"] > 0 and summaries[0]["per_group"]["car"]["converted"] > 0


def test_a_broken_table_is_one_located_error_and_nothing_of_it_is_written(tmp_path: Path) -> None:
    unit = image_unit(ROWS[:2])
    unit["boxes"]["x"].append(0.5)
    path = tmp_path / "u.json"
    path.write_text(json.dumps([unit]))
    report = predport.convert([path], ONTOLOGY, "preds", tmp_path / "out", fmt="predport", keep_going=True)
    assert [(p.code, str(p.location)) for p in report.problems] == [("boxes.invalid", "results.json")]
    assert report.summary()["per_group"] == {"car": {"converted": 0, "reported": 1},
                                             "animal": {"converted": 0, "reported": 1}}
    assert report.left_out == {"img.jpg": ["boxes.invalid"]}


def test_coco_fast_table_writes_what_the_object_path_writes(tmp_path: Path) -> None:
    """The COCO reader puts plain boxes in the table and sends everything else down the general path; both
    together write the same rows as all of it as object records."""
    gt = load(DATA / "coco" / "instances_val2014_100.json")
    results = load(DATA / "coco" / "instances_val2014_fakebbox100_results.json")
    results[0]["attributes"] = {"rotation": 0.0}  # not plain: the general path
    results[1]["bbox"] = [1, 2, True, 4]  # a bool is not a number: the general path reports it
    results[2]["bbox"][0] = -5.0  # in the table, doubted, reported as its record would be
    del results[3]["bbox"]  # no box at all: the general path reports it
    src = tmp_path / "r.json"
    src.write_text(json.dumps(results))
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"images": gt["images"], "categories": gt["categories"]}))
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    ontology = Ontology({"objects": [{"id": str(i), "name": n, "color": "#000000", "shape": "bounding_box",
                                      "featureNodeHash": f"c{i:07d}"} for i, n in cats.items()],
                         "classifications": []})
    problems = Problems()
    units = list(CocoReader().read(src, ReadContext(ontology, problems, {"images": str(images)})))
    assert sum(len(u.get("boxes", {}).get("id", [])) for u in units) == len(results) - 3
    assert sum(len(u["objects"]) for u in units) == 1  # the rotated one (its bool-box sibling is reported)
    reader_problems = problem_set(problems)
    for u in units:
        (ru, p1), (ref, p2) = both_with(u, ontology)
        assert problem_set(p1) == problem_set(p2)
        if ru is not None and ref is not None and not p1.errors:
            assert canonical(build_row(ru, "b", TS)) == canonical(build_row(ref, "b", TS))
    assert {(code, where) for code, _, _, where, _ in reader_problems if code != "coco.no_scores"} == {
        ("coco.geometry_unfit", f"{src}#/1"), ("coco.geometry_unfit", f"{src}#/3")}  # by the general path
    doubted = Problems()
    validate_unit(next(u for u in units if 2 in u.get("boxes", {}).get("record", [])), ontology, doubted)
    assert [(p.code, str(p.location)) for p in doubted] == [("geometry.out_of_frame", f"{src}#/2/bbox")]


def both_with(unit: Any, ontology: Ontology) -> tuple[tuple[Any, Problems], tuple[Any, Problems]]:
    out = []
    for u in (unit, boxes.expand(copy.deepcopy(unit))):
        problems = Problems()
        out.append((validate_unit(u, ontology, problems), problems))
    return out[0], out[1]


def test_row_sources() -> None:
    t = table(ROWS[:2])
    del t["pointer"]
    assert boxes.row_source(t, 1) == {"file": "results.json", "pointer": "/id/1", "group": "animal"}
    t.update(record=[7, 9], field="bbox", source={"file": "gt.json", "pointer": "/annotations"})
    assert boxes.row_source(t, 1)["pointer"] == "/annotations/9/bbox"
    del t["record"]
    t["line"] = [3, 4]
    assert boxes.row_source(t, 0) == {"file": "gt.json", "line": 3, "group": "car"}
    del t["line"]
    t["source"] = {"file": "units.jsonl", "line": 12}  # a whole table on one line of a JSON-lines file
    assert boxes.row_source(t, 1) == {"file": "units.jsonl", "line": 12, "record": 1, "group": "animal"}


def test_random_tables_match_their_expansion() -> None:
    """Seeded random tables (NaN, infinities, edges, negatives, shared ids, frames, unknown classes): the table
    and its expansion agree on every problem and, when valid, on the label row; junk never crashes."""
    import random

    rng = random.Random(7)
    values = [0.0, 0.1, 0.5, 0.9, 1.0, 1.0 + 1e-12, -1e-12, -0.1, 1.5, math.nan, math.inf, 0, 1]
    agreed = valid = 0
    for case in range(300):
        n = rng.randint(0, 8)
        video = rng.random() < 0.3
        rows = [(rng.randrange(len(CLASSES)), rng.choice(["a", "b", "c", f"r{k}", "12345678"]),
                 rng.choice(values), rng.choice(values), rng.choice(values[1:5]), rng.choice(values[1:5]),
                 rng.choice([0.3, 1, 0.0, 1.2, math.nan]), "") for k in range(n)]
        if rng.random() < 0.5:  # mostly clean tables too, so that valid rows get compared
            rows = [(rng.choice([0, 1]), f"r{k}", 0.1, 0.2, 0.3, 0.4, 0.5, "") for k in range(n)]
        unit = image_unit(rows) if rows else {**image_unit(ROWS[:1]), "boxes": {**table(ROWS[:1]), **{
            c: [] for c in ("class", "id", "x", "y", "w", "h", "confidence", "pointer")}}}
        if video:
            unit.update(kind="video", title="clip.mp4", frame_count=5)
            unit["boxes"]["frame"] = [rng.choice([0, 1, 4, 5]) for _ in range(n)]
        (ru, problems), (ref, ref_problems) = both(unit)
        assert problem_set(problems) == problem_set(ref_problems), case
        agreed += 1
        if ru is not None and ref is not None and problems.ok:
            valid += 1
            assert canonical(build_row(ru, "b", TS)) == canonical(build_row(ref, "b", TS)), case
            assert row_bytes(ru, "b", TS) == orjson.dumps(build_row(ru, "b", TS)), case
        broken = copy.deepcopy(unit)  # and the same table broken anywhere: reported, never raised
        column = rng.choice(["class", "id", "x", "confidence", "pointer", "classes"])
        if broken["boxes"][column]:
            broken["boxes"][column][0] = rng.choice([None, "x", -1, 99, True, {}, []])
        else:
            broken["boxes"][column] = "not a list"
        validate_unit(broken, ONTOLOGY, Problems())  # type: ignore[arg-type]
    assert agreed == 300 and valid > 50


def test_one_bad_value_after_clean_rows_is_found() -> None:
    """One NaN, infinity or value past an edge among clean rows sends that row, and only it, to the record check
    (a bulk check by min() and max() would pass over a NaN that is not first)."""
    for column in ("x", "y", "w", "h", "confidence"):
        for value in (math.nan, math.inf, -math.inf, 1.5, -0.1, 0.0):
            rows = [(0, f"r{k}", 0.1, 0.2, 0.3, 0.4, 0.5, "") for k in range(4)]
            unit = image_unit(rows)
            unit["boxes"][column][2] = value
            (ru, problems), (_, ref_problems) = both(unit)
            assert problem_set(problems) == problem_set(ref_problems), (column, value)
            if value == 0.0 and column in ("x", "y", "confidence"):  # (an edge, inside)
                assert problems.ok and ru is not None and ru.boxes is not None and ru.boxes.rows is None
            else:
                assert [str(p.location) for p in problems if p.severity == "error"] == ["results.json#/2/bbox"], \
                    (column, value)


def test_a_row_the_schema_rejects_counts_in_its_own_group() -> None:
    unit = image_unit(ROWS[:2])  # row 0 is a car, row 1 an animal
    unit["boxes"]["y"][1] = "0.5"
    problems = Problems()
    ru = validate_unit(unit, ONTOLOGY, problems)  # type: ignore[arg-type]
    assert [(p.code, str(p.location), p.location.field) for p in problems] == [
        ("schema.invalid", "results.json#/1/bbox", "boxes/y/1")]
    assert ru is not None and ru.boxes is not None and ru.boxes.rows == [0]
    assert ru.rejected == {("boxes", 1)} and ru.grouped == [("boxes", 1, "animal")]


def test_rows_written_from_columns_are_the_dict_rows_bytes() -> None:
    """The writer writes a table's rows from its columns (row_bytes); the same row as dicts (build_row), serialised
    by orjson, is the reference, byte for byte: with object records and classifications around the table, rows
    that the bulk checks doubted but accepted, ids kept as hashes, integer confidences, no confidence column,
    names that JSON escapes, and ids whose hashes collide with an object's."""
    valid = [r for r in ROWS if r[-1].startswith(("plain", "the whole", "over the edge", "an id that"))]
    weather = {"id": "w", "class": {"name": "Weather"}, "frames": [[0, 0]],
               "answers": [{"attribute": {"name": "Weather"}, "radio": {"name": "Rainy"}}]}
    units = []
    unit = image_unit(valid)
    units.append(("objects, doubted rows, a kept id, integer confidence", unit))
    units.append(("and a classification", {**copy.deepcopy(unit), "classifications": [weather]}))
    plain = image_unit([(k % 2, f"r{k}", 0.01 * k, 0.5, 0.1, 0.2, 0.5 + k / 100, "") for k in range(30)])
    units.append(("every row passes", {**plain, "objects": []}))
    bare = copy.deepcopy(plain)
    del bare["boxes"]["confidence"]
    units.append(("no confidence column", bare))
    taken = copy.deepcopy(plain)  # an object whose id is the hash a row's id gets: the row's is salted
    taken["objects"][0]["id"] = instance_hash("img.jpg", "r3", set())
    units.append(("an object with a row's id", taken))
    tricky = Ontology({"objects": [{"id": "1", "name": 'Ca"r\\ é\u2028', "color": "#00FF00", "shape": "bounding_box",
                                    "featureNodeHash": "objBBox1"}], "classifications": []})
    for what, u in units:
        ru = validate_unit(u, ONTOLOGY, problems := Problems())  # type: ignore[arg-type]
        assert ru is not None and problems.ok, what
        assert row_bytes(ru, "b", TS) == orjson.dumps(build_row(ru, "b", TS)), what
        hashes = orjson.loads(row_bytes(ru, "b", TS))["object_answers"]
        assert len(hashes) == len(u["objects"]) + len(u["boxes"]["id"]), what
    u = {**copy.deepcopy(plain), "objects": []}
    for c in u["boxes"]["classes"]:
        c["class"] = {"hash": "objBBox1"}
    u["boxes"]["id"] = ["ünï", "a\"b", *u["boxes"]["id"][2:]]
    ru = validate_unit(u, tricky, problems := Problems())  # type: ignore[arg-type]
    assert ru is not None and problems.ok
    data = row_bytes(ru, "b", TS)
    assert data == orjson.dumps(build_row(ru, "b", TS))
    assert len(orjson.loads(data)["object_answers"]) == 30


def test_table_classes_resolve_like_object_records() -> None:
    """A name that several objects share: a table's class resolves to the one bounding box among them, and to
    nothing when two boxes share it (the rows then get the object records' problem); the verdicts are
    remembered per (hash, name), so a second unit with the same refs resolves the same way."""
    ontology = Ontology({"objects": [
        {"id": "1", "name": "Car", "color": "#000000", "shape": "bounding_box", "featureNodeHash": "carBox01"},
        {"id": "2", "name": "Car", "color": "#000000", "shape": "polygon", "featureNodeHash": "carPoly1"},
        {"id": "3", "name": "Sign", "color": "#000000", "shape": "bounding_box", "featureNodeHash": "sign0001"},
        {"id": "4", "name": "Sign", "color": "#000000", "shape": "bounding_box", "featureNodeHash": "sign0002"}],
        "classifications": []})
    for _ in range(2):
        unit = image_unit([(0, "r0", 0.1, 0.1, 0.2, 0.2, 0.9, ""), (1, "r1", 0.3, 0.3, 0.2, 0.2, 0.8, "")])
        unit["objects"] = []
        unit["boxes"]["classes"] = [{"class": {"name": "Car"}}, {"class": {"name": "Sign"}}]
        (ru, problems), (_, ref_problems) = both_with(unit, ontology)
        assert problem_set(problems) == problem_set(ref_problems)
        assert [(p.code, str(p.location)) for p in problems] == [("class.ambiguous", "results.json#/1/bbox")]
        assert ru is not None and [c.hash if c else None for c in ru.boxes.classes] == ["carBox01", None]


def shared_table(rows: list[tuple[Any, ...]], **columns: Any) -> boxes.SharedBoxes:
    import numpy as np

    cols = list(zip(*rows, strict=True))
    given: dict[str, Any] = {"class": np.array(cols[0], dtype=np.int64), "id": list(cols[1]),
                             **{name: np.array(cols[k], dtype=np.float64)
                                for k, name in enumerate(("x", "y", "w", "h", "confidence"), 2)}}
    return boxes.SharedBoxes(CLASSES, {**given, **columns}, source={"file": "results.json"})


def test_a_shared_table_is_checked_once_and_says_which_rows_the_bulk_checks_do_not_clear() -> None:
    """The rows a shared table's verdict lists are those that the bulk checks of a plain table send to the record
    path (their units then take it); a table the fast path cannot take whole gets no verdict."""
    import numpy as np

    plain = [r for r in ROWS if r[1] not in ("dup", "a")]  # (ids once each)
    table = shared_table(plain)
    classes, failing = table.verdict(ONTOLOGY)  # type: ignore[misc]
    assert [o.name if o is not None else None for o in classes] == ["Car", "Animal", None, None, None]
    assert [plain[k][7] for k in failing] == [r[7] for r in plain if r[7] not in (
        "plain", "the whole frame, class by name, integer confidence", "an id that is kept as the object hash")]
    assert table.verdict(ONTOLOGY) is table.verdict(ONTOLOGY)  # (once)
    assert table.clean(ONTOLOGY, 0, 2) is classes and table.clean(ONTOLOGY, 0, 3) is None
    assert table.clean(ONTOLOGY, 2, 1) is None and table.clean(ONTOLOGY, 0, len(plain) + 1) is None
    with np.testing.assert_raises(ValueError):  # (read-only: what was checked cannot change)
        table.columns["x"][0] = 5.0
    good = [r for r in plain[:2]]
    refused = {
        "float32 numbers": shared_table(good, x=np.array([0.1, 0.0], dtype=np.float32)),
        "a short column": shared_table(good, y=np.array([0.1])),
        "a class index out of range": shared_table(good, **{"class": np.array([0, 5])}),
        "an id twice": shared_table(good, id=np.array([7, 7])),
        "an empty id": shared_table(good, id=["", "b"]),
        "a bad class entry": boxes.SharedBoxes([{"klass": 1}], {"class": np.array([0]), "id": ["a"], **{
            k: np.array([0.1]) for k in "xywh"}}),
    }
    for why, broken in refused.items():
        assert broken.verdict(ONTOLOGY) is None, why


def slice_both(table: boxes.SharedBoxes, a: int, b: int, objects: bool) -> tuple[tuple[ResolvedUnit | None, Problems],
                                                                                tuple[ResolvedUnit | None, Problems]]:
    """An image unit with rows ``a`` to ``b - 1`` of ``table`` (and an object record, with ``objects``), validated
    as it is and as the plain table, in JSON, that the rows stand for."""
    unit = image_unit(ROWS[:1])
    if not objects:
        unit["objects"] = []
    unit["boxes"] = table.rows(a, b)
    out = []
    for u in (unit, json.loads(json.dumps(boxes.plain(unit)))):
        problems = Problems()
        out.append((validate_unit(u, ONTOLOGY, problems), problems))
    return out[0], out[1]


def test_a_unit_of_shared_rows_validates_and_writes_as_its_table() -> None:
    """Slices of one shared table: a clean one takes the fast path, one with a row the bulk checks do not clear
    and one beside an object record take the record path; each gives the problems, counts and label row of the
    plain table it stands for."""
    import numpy as np

    plain = [r for r in ROWS if r[1] not in ("dup", "a")]
    table = shared_table(plain, id=np.arange(100, 100 + len(plain)))
    for a, b, objects, fast in ((0, 2, False, True), (0, 4, False, False), (0, 2, True, False), (1, 1, False, True)):
        (ru, problems), (ref, ref_problems) = slice_both(table, a, b, objects)
        assert ru is not None and ref is not None
        assert (ru.boxes is not None and ru.boxes.sliced is not None) == fast
        assert problem_set(problems) == problem_set(ref_problems)
        assert row_bytes(ru, "preds", TS) == row_bytes(ref, "preds", TS)
        if ru.boxes is not None and ref.boxes is not None:
            mine: Counter[str] = Counter()
            theirs: Counter[str] = Counter()
            assert ru.boxes.count_objects(mine) == ref.boxes.count_objects(theirs) and mine == theirs
            ledger: Counter[tuple[str, str]] = Counter()
            ref_ledger: Counter[tuple[str, str]] = Counter()
            ru.boxes.count_groups(ledger)
            ref.boxes.count_groups(ref_ledger)
            assert ledger == ref_ledger


@st.composite
def shared_tables(draw: st.DrawFn) -> tuple[boxes.SharedBoxes, list[tuple[int, int]]]:
    """A shared table of any column types a reader might hand over (float64 or not, ints as floats, NaN, short
    columns, class indices out of range, ids repeated, 8-digit, negative or strings, classes that are not a list
    of entries), and a cut into slices."""
    import numpy as np

    n = draw(st.integers(0, 12))
    tidy = draw(st.booleans())  # (mostly what the fast path takes)
    number = st.floats(0.0, 0.6) if tidy else st.one_of(
        st.floats(-0.1, 1.1), st.sampled_from([0.0, -0.0, 0.5, 1.0, math.nan, math.inf, 1e-300]))
    columns: dict[str, Any] = {}
    for name in ("x", "y", "w", "h", "confidence"):
        values = draw(st.lists(number, min_size=n, max_size=n))
        kind = "float64" if tidy else draw(st.sampled_from(["float64", "float64", "float32", "list", "short"]))
        columns[name] = (values if kind == "list" else np.array(values[:-1] if kind == "short" else values,
                                                                dtype=np.float32 if kind == "float32" else np.float64))
    columns["class"] = np.array(draw(st.lists(st.integers(0, 1) if tidy else st.integers(-1, len(CLASSES)),
                                              min_size=n, max_size=n)), dtype=np.int64)
    ids = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n, unique=True) if tidy else st.one_of(
        st.lists(st.integers(0, 10**9), min_size=n, max_size=n, unique=draw(st.booleans())),
        st.lists(st.sampled_from(["a", "b", "", "12345678", "r1"]), min_size=n, max_size=n)))
    columns["id"] = np.array(ids, dtype=draw(st.sampled_from([np.int64, np.uint64, np.int32]))) \
        if ids and type(ids[0]) is int else ids
    if draw(st.booleans()):
        del columns["confidence"]
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    classes = CLASSES if tidy else draw(st.sampled_from([CLASSES, CLASSES, None, "x", [1], [{"class": 5}]]))
    slices = list(zip([0, *cuts], [*cuts, n], strict=True))
    if draw(st.booleans()):  # (as YOLO's: each unit from its own file, rows by line, ids that repeat across units)
        lines = st.integers(1, 500) if draw(st.integers(0, 3)) else st.integers(-1, 500)  # (a few lines 0 or -1)
        columns["line"] = np.array(draw(st.lists(lines, min_size=n, max_size=n)), dtype=np.int64)
        if tidy or draw(st.booleans()):
            columns["id"] = [f"l{k - a + 1}" for a, b in slices for k in range(a, b)]
        return boxes.SharedBoxes(classes, columns, source={"file": "results.json"}, units=[a for a, _ in slices],
                                 sources=[{"file": f"labels/{k}.txt"} for k in range(len(slices))]), slices
    return boxes.SharedBoxes(classes, columns, source={"file": "results.json"}), slices


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")), deadline=None)
@given(case=shared_tables(), objects=st.booleans())
def test_any_shared_table_validates_and_writes_as_the_tables_of_its_slices(case: Any, objects: bool) -> None:
    """Whatever a shared table holds, each slice of it gives the problems and the label row of the plain table
    it stands for, without an exception: the fast path when the table and the slice allow it, else that table."""
    table, slices = case
    fast = 0
    for a, b in [*slices, (0, table.n)] if table.sources is not None else slices:  # (and one across the units)
        (ru, problems), (ref, ref_problems) = slice_both(table, a, b, objects)
        assert problem_set(problems) == problem_set(ref_problems)
        assert (ru is None) == (ref is None)
        if ru is not None and ref is not None and not problems.errors:
            assert row_bytes(ru, "preds", TS) == row_bytes(ref, "preds", TS)
        fast += ru is not None and ru.boxes is not None and ru.boxes.sliced is not None
    event(f"slices on the fast path: {min(fast, 2)}+")


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")), deadline=None)
@given(case=shared_tables(), objects=st.booleans(), min_confidence=st.sampled_from([None, 0.0, 0.3, 0.5, 1.0]),
       top_k=st.sampled_from([None, 1, 2, 5]), units=st.sampled_from(["none", "the slices", "others"]),
       data=st.data())
def test_filters_leave_out_of_a_shared_tables_slices_what_they_leave_out_of_the_plain_tables(
        case: Any, objects: bool, min_confidence: float | None, top_k: int | None, units: str, data: Any) -> None:
    """``--min-confidence`` and ``--top-k`` on a slice of a shared table (which stays a slice, of the table
    filtered once, when nothing else competes with its rows and top-k leaves none of them out, or ranked them per
    unit when the table says where its units begin) count, validate and write what they do on the plain table the
    slice stands for. The table's units may be its slices or not (a reader's mistake: then the plain tables)."""
    from predport.core.filters import Filters

    table, slices = case
    if units != "none":
        starts = [a for a, _ in slices] if units == "the slices" else [0, *sorted(data.draw(st.lists(
            st.integers(0, table.n), max_size=3)))]
        table = boxes.SharedBoxes(table.classes, table.columns, field=table.field, source=table.source, units=starts)
    filters = Filters(min_confidence, top_k)
    kept = thinned = 0
    for a, b in slices:
        unit = image_unit(ROWS[:1])
        if not objects:
            unit["objects"] = []
        unit["boxes"] = table.rows(a, b)
        ledger: Counter[tuple[str, str]] = Counter()
        ref_ledger: Counter[tuple[str, str]] = Counter()
        out = filters.apply_any(unit, ledger, ONTOLOGY)
        ref = filters.apply(boxes.plain(unit), ref_ledger, ONTOLOGY)
        assert ledger == ref_ledger
        problems, ref_problems = Problems(), Problems()
        ru, ref_ru = validate_unit(out, ONTOLOGY, problems), validate_unit(ref, ONTOLOGY, ref_problems)
        assert problem_set(problems) == problem_set(ref_problems)
        assert (ru is None) == (ref_ru is None)
        if ru is not None and ref_ru is not None and not problems.errors:
            assert row_bytes(ru, "preds", TS) == row_bytes(ref_ru, "preds", TS)
        kept += type(out["boxes"]) is boxes.BoxSlice
        thinned += type(out["boxes"]) is boxes.BoxSlice and len(out["boxes"]) < b - a
    event(f"slices that stayed slices: {min(kept, 2)}+")
    event(f"slices that stayed slices with rows left out: {min(thinned, 1)}+")


def test_a_filtered_table_is_made_once_and_let_go_with_its_table() -> None:
    """The filtered copy of a shared table is made once for all its slices, and not kept once the table is gone
    (a notebook converts many files in one process)."""
    import gc

    import numpy as np

    from predport.core import filters

    plain = [r for r in ROWS if r[1] not in ("dup", "a")]
    table = shared_table(plain, id=np.arange(len(plain)))
    f = filters.Filters(min_confidence=0.6)
    units = []
    ledger: Counter[tuple[str, str]] = Counter()
    for a, b in ((0, 3), (8, 11)):
        unit = {**image_unit(ROWS[:1]), "objects": [], "boxes": table.rows(a, b)}
        units.append(f.apply_any(unit, ledger, ONTOLOGY))
    first, second = (u["boxes"] for u in units)
    assert type(first) is boxes.BoxSlice and first.shared is second.shared is not table  # (one filtered copy)
    # confidences 0.9, 1 and 0.5, then 1.5, NaN and 0.5: the NaN is kept (for validation to report)
    assert (first.start, first.stop, second.start, second.stop) == (0, 2, 2, 4) and first.shared.n == 4
    assert ledger == {("car", "filtered"): 1}  # (r13's class entry names no group, nor does the table)
    del unit, units, first, second, table
    gc.collect()
    assert len(filters._MADE) == 0


def test_a_table_of_units_from_many_files_gives_each_unit_its_own_source_and_ids() -> None:
    """A shared table with ``sources`` (one file per unit, as YOLO's label files): each unit's table has its own
    source, so its rows are located in its file by line; ids may repeat across units, not within one, and a slice
    across two units whose ids repeat is not cleared for the fast path. A filtered copy keeps the sources."""
    import numpy as np

    from predport.core.filters import Filters

    rows = [(0, "l1", 0.1, 0.1, 0.2, 0.2, 0.9, ""), (1, "l2", 0.3, 0.3, 0.2, 0.2, 0.2, ""),
            (0, "l1", 0.5, 0.5, 0.2, 0.2, 0.8, "")]
    table = shared_table(rows, line=np.array([1, 2, 1]))
    table = boxes.SharedBoxes(table.classes, table.columns, units=[0, 2, 3],
                              sources=[{"file": "a.txt"}, {"file": "b.txt"}, {"file": "c.txt"}])
    assert [table.rows(a, b).table()["source"] for a, b in ((0, 2), (2, 3))] == [{"file": "a.txt"}, {"file": "b.txt"}]
    assert "source" not in table.rows(0, 3).table() and table.rows(3, 3).source() == {"file": "c.txt"}
    assert boxes.row_source(table.rows(0, 2).table(), 1) == {"file": "a.txt", "line": 2, "group": "animal"}
    assert table.clean(ONTOLOGY, 0, 2) is not None and table.clean(ONTOLOGY, 2, 3) is not None
    assert table.clean(ONTOLOGY, 0, 3) is None  # ("l1" twice)
    with np.testing.assert_raises(ValueError):  # (one source per unit)
        boxes.SharedBoxes(table.classes, table.columns, units=[0, 2], sources=[{"file": "a.txt"}])
    unit = image_unit(rows[:1])
    unit["objects"], unit["boxes"] = [], table.rows(2, 3)
    out = Filters(0.5, None).apply_any(unit, Counter(), ONTOLOGY)
    assert type(out["boxes"]) is boxes.BoxSlice and out["boxes"].source() == {"file": "b.txt"}
