"""Property-based fuzzing (Hypothesis): mutations of valid COCO ground truth and results, Encord label rows and
internal documents, through the CLI. validate and convert exit 0 or 1 and never raise; when they exit 1,
nothing is written (no output, no staging directory). Derandomised (the same examples every run) and bounded."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DATA, coco_ontology
from predport.cli import main
from test_validation_codes import boxes_unit, image_unit, video_unit

COCO = DATA / "coco"
REF = DATA / "encord" / "reference"
SHAPES = ["bounding_box", "polygon", "bitmask", "rotatable_bounding_box", "skeleton", "point", "bounding_box"]

#: numbers that have broken converters: far out, not finite, beyond int64, tiny, negative zero
EDGE_NUMBERS = [0, -1, 1, 0.5, -0.0, 1e-300, 1e20, -1e20, 1e308, -1e308, 2 ** 63, -(2 ** 63) - 1, 2 ** 31, 2 ** 70,
                -(2 ** 70), math.nan, math.inf, -math.inf]
JUNK = st.one_of(
    st.none(), st.booleans(), st.sampled_from(EDGE_NUMBERS), st.integers(-10, 10 ** 6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["", "0", "中", "\x00", "../x", "main", "NaN", "1.0", "\ud800"]),
    st.lists(st.sampled_from([0, 1, -1, 1e20, "a", None]), max_size=7),
    st.dictionaries(st.sampled_from(["size", "counts", "x", "id", "name", "hash"]),
                    st.sampled_from([0, [1, 2], "x", None, [480, 640]]), max_size=3),
)
# The suite's run is derandomised (the same examples every time). To explore: FUZZ_EXAMPLES=2000 FUZZ_EXPLORE=1
# pytest tests/test_fuzz.py --hypothesis-seed=N
SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
                    derandomize=not os.environ.get("FUZZ_EXPLORE"), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document (the root excluded)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with 1 to 4 mutations anywhere: junk values, edge numbers, deletions, duplicates, wrappings."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))
        if not paths:
            break
        *parents, key = draw(st.sampled_from(paths))
        holder = doc
        for k in parents:
            holder = holder[k]
        value = holder[key]
        op = draw(st.sampled_from(["junk", "number", "number", "delete", "duplicate", "wrap", "empty"]))
        if op == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            holder[key] = draw(st.sampled_from(EDGE_NUMBERS))
        elif op == "delete":
            del holder[key]
        elif op == "duplicate" and isinstance(holder, list):
            holder.insert(key, copy.deepcopy(value))
        elif op == "wrap":
            holder[key] = [value] if draw(st.booleans()) else {"x": value}
        elif op == "empty":
            holder[key] = type(value)() if isinstance(value, list | dict | str) else None
        else:
            holder[key] = copy.deepcopy(draw(JUNK))  # (sampled_from hands out one shared object: never mutate it)
    return doc


def _ontology(path: Path, categories: list[dict[str, Any]], keypoints: list[str]) -> Path:
    return coco_ontology(path, categories, lambda i: SHAPES[i % len(SHAPES)], keypoints)


def _run_both(tmp_path: Path, src: Path, args: list[str]) -> None:
    """validate and convert of one input: exit 0 or 1, nothing raised; exit 1 writes nothing at all."""
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["validate", str(src), *args, "--quiet"]) in (0, 1)
    out = tmp_path / "out"
    code = main(["convert", str(src), *args, "--branch", "fuzz", "--out", str(out), "--quiet"])
    assert code in (0, 1)
    if code == 1:
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no staging directory
    else:
        assert (out / "manifest.json").is_file()
        shutil.rmtree(out)


def _write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, allow_nan=True))
    return path


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("coco")
    gt = json.loads((COCO / "fce_gt_dataset.json").read_text())
    kp = json.loads((COCO / "person_keypoints_val2014_fakekeypoints100_results.json").read_text())[:2]
    segm = json.loads((COCO / "instances_val2014_fakesegm100_results.json").read_text())[:2]
    big = json.loads((COCO / "instances_val2014_100.json").read_text())
    names = [k for k in json.loads((COCO / "fce_kp_gt_dataset.json").read_text())["categories"][0]["keypoints"]]
    return {
        "gt": gt, "gt_ontology": _ontology(base / "gt-ont.json", gt["categories"], names),
        "results": json.loads((COCO / "fce_dt_dataset.json").read_text()) + [
            {**a, "image_id": gt["images"][k % len(gt["images"])]["id"], "category_id": gt["categories"][k]["id"]}
            for k, a in enumerate(segm + kp)],
        "images": COCO / "fce_gt_dataset.json",
        "big_ontology": _ontology(base / "big-ont.json", big["categories"], names),
    }


@SETTINGS
@given(data=st.data())
def test_mutated_coco_ground_truth(tmp_path: Path, coco_files: dict[str, Any], data: st.DataObject) -> None:
    doc = data.draw(mutated(coco_files["gt"]))
    src = _write(tmp_path, "gt.json", doc)
    _run_both(tmp_path, src, ["--from", "coco", "--ontology", str(coco_files["gt_ontology"])])
    src.unlink()


@SETTINGS
@given(data=st.data())
def test_mutated_coco_results(tmp_path: Path, coco_files: dict[str, Any], data: st.DataObject) -> None:
    doc = data.draw(mutated(coco_files["results"]))
    src = _write(tmp_path, "results.json", doc)
    _run_both(tmp_path, src, ["--from", "coco", "--images", str(coco_files["images"]),
                              "--ontology", str(coco_files["gt_ontology"])])
    src.unlink()


ROWS = sorted(p for p in REF.glob("*.json") if p.name != "ontology.json")


@SETTINGS
@given(data=st.data(), row=st.sampled_from(ROWS))
def test_mutated_encord_label_rows(tmp_path: Path, data: st.DataObject, row: Path) -> None:
    doc = data.draw(mutated(json.loads(row.read_text())))
    src = _write(tmp_path, "row.json", doc)
    _run_both(tmp_path, src, ["--from", "encord", "--ontology", str(REF / "ontology.json")])
    src.unlink()


@SETTINGS
@given(data=st.data(), unit=st.sampled_from([image_unit, boxes_unit, video_unit]))
def test_mutated_internal_documents(tmp_path: Path, data: st.DataObject, unit: Any) -> None:
    doc = data.draw(mutated([unit()]))
    src = _write(tmp_path, "units.json", doc)
    _run_both(tmp_path, src, ["--from", "predport", "--ontology", str(REF / "ontology.json")])
    src.unlink()


@st.composite
def plain_results(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A COCO images file and a results list of plain boxes -- the shape the whole-file path takes -- with
    the variations it must get right: ints and floats, boxes outside the frame, ids on some, scores missing,
    images without boxes, two images of one file name, images without a size, categories of other shapes, image
    ids small, negative, large and beyond 2**53, category ids small, negative and large."""
    n_images = draw(st.integers(1, 6))
    first = draw(st.sampled_from([10, 10, -3, 2 ** 22 - 2, 2 ** 40, 2 ** 53 - 2]))  # (small ids: a table lookup)
    order = draw(st.permutations(range(n_images)))  # (ids not in file order)
    images: list[dict[str, Any]] = [
        {"id": first + order[k], "file_name": f"im{k % 4}.jpg", "width": draw(st.sampled_from([640, 33, 1])),
         "height": draw(st.sampled_from([480, 17, 1]))} for k in range(n_images)]
    if draw(st.booleans()):
        del images[-1]["width"]
    base = draw(st.sampled_from([0, 0, -80, 2 ** 22, 2 ** 40]))  # (category ids: small ones take a table lookup)
    categories = [{"id": base + c, "name": f"c{c}"} for c in (3, 1, 70, 2)]  # (not sorted: indices are by id)
    number = st.one_of(st.integers(-5, 700), st.floats(-5, 700, allow_nan=False), st.sampled_from([0, 0.5, 1e-9]))
    anns = []
    for i in range(draw(st.integers(0, 30))):
        ann: dict[str, Any] = {"image_id": draw(st.sampled_from([im["id"] for im in images])),
                               "category_id": draw(st.sampled_from([c["id"] for c in categories])),
                               "bbox": draw(st.lists(number, min_size=4, max_size=4))}
        if draw(st.integers(0, 5)):
            ann["score"] = draw(st.one_of(st.floats(0, 1), st.sampled_from([1, 0, 1.5, -0.1])))
        if draw(st.integers(0, 8)) == 0:
            ann["id"] = draw(st.sampled_from([i, "a", 7, i + 1000]))
        anns.append(ann)
    return {"images": images, "categories": categories}, anns


def _units_every_way(tmp_path: Path, meta: Any, anns: Any, ontology: Path) -> list[Any]:
    """(units, problems) of the COCO reader: with the typed decode (msgspec) in three parts at once (forked) and
    the whole-file plain-box path, with the typed decode of the whole file, with the whole-file path on orjson's
    dicts, and with neither (annotation by annotation)."""
    from predport.converters import coco
    from predport.core import pipeline
    from predport.core.problems import Problems
    from predport.core.reader import ReadContext

    images = _write(tmp_path, "images.json", meta)
    if isinstance(anns, bytes):  # (the results file's text as given)
        results = tmp_path / "results.json"
        results.write_bytes(anns)
    else:
        results = _write(tmp_path, "results.json", anns)
    outcomes = []
    whole = ReadContext.decode_parts

    def in_parts(self: ReadContext, path: Path, kind: Any, extract: Any, part_bytes: int = 0) -> Any:
        self.workers = 3  # (cut wherever it can be: pieces of a byte or more)
        return whole(self, path, kind, extract, part_bytes=1)

    for way in ("parts", "typed", "dicts", "general"):
        problems = Problems()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(coco, "COLUMNS_FROM", 0)  # (the column paths whatever the size, numpy loaded or not)
            if way == "parts":
                mp.setattr(ReadContext, "decode_parts", in_parts)
            if way in ("dicts", "general"):
                mp.setattr(ReadContext, "decode_parts", lambda self, path, kind, extract: None)
            if way == "general":
                mp.setattr(coco._Converter, "_plain", lambda self, anns: None)
            units = list(pipeline.read([results], ontology, "coco", {"images": images}, problems=problems))
        outcomes.append((json.dumps(units, sort_keys=True), [(p.code, p.severity, p.message, p.location)
                                                             for p in problems.items]))
    return outcomes


@SETTINGS
@given(case=plain_results(), shape=st.sampled_from([["bounding_box"], ["bounding_box", "polygon"]]),
       data=st.data())
def test_whole_file_box_path_is_the_annotation_path(tmp_path: Path, case: Any, shape: list[str],
                                                     data: st.DataObject) -> None:
    """The COCO reader's whole-file path for plain boxes, on records msgspec decoded or on orjson's dicts, yields
    exactly the units and problems of its annotation-at-a-time path: on plain results, and on plain results with
    a mutation (which it must refuse or carry the same way)."""
    meta, anns = case
    ontology = coco_ontology(tmp_path / "ont.json", meta["categories"], lambda c: shape[c % len(shape)])
    parts, typed, dicts, general = _units_every_way(tmp_path, meta, anns, ontology)
    assert parts == typed == dicts == general
    broken = data.draw(mutated(anns)) if anns else anns
    parts, typed, dicts, general = _units_every_way(tmp_path, meta, broken, ontology)
    assert parts == typed == dicts == general


@pytest.mark.parametrize("number", [b"1E2", b"0.10000000000000001", b"5e-324", b"-0", b"-0.0", b"2.5e-400",
                                    b"1.7976931348623157e308", b"9007199254740993", b"18446744073709551616",
                                    b"123.456789012345678901234567890", b"1e400"])
def test_number_spellings_read_the_same_typed_or_as_dicts(tmp_path: Path, number: bytes) -> None:
    """msgspec (the typed decode of plain results) and orjson (dicts) read every spelling of a number alike,
    or the typed decode refuses it: out of float range, or an int that orjson would make a float."""
    meta = {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
            "categories": [{"id": 1, "name": "c1"}]}
    ontology = coco_ontology(tmp_path / "ont.json", meta["categories"])
    raw = (b'[{"image_id": 1, "category_id": 1, "bbox": [' + number + b', 2, 30, 40], "score": ' + number +
           b'}, {"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]')
    parts, typed, dicts, general = _units_every_way(tmp_path, meta, raw, ontology)
    assert parts == typed == dicts == general


def _converted_both_ways(tmp_path: Path, meta: Any, anns: Any, ontology: Path, workers: int = 1,
                         options: dict[str, Any] | None = None) -> list[Any]:
    """(rows, problems, counts, units taken whole from the shared table in this process) of converting COCO results
    whose plain boxes the reader gives as rows of a shared table (core.boxes.SharedBoxes), and of the same run
    with every unit's rows made the table they stand for."""
    import re

    import predport
    from predport.core import boxes

    images = _write(tmp_path, "images.json", meta)
    results = _write(tmp_path, "results.json", anns)
    outcomes = []
    clean = boxes.SharedBoxes.clean
    for way in ("shared", "plain"):
        out = tmp_path / f"{way}.jsonl"
        taken: list[Any] = []

        def spy(self: Any, *args: Any, taken: list[Any] = taken) -> Any:
            taken.append(clean(self, *args))
            return taken[-1]

        with pytest.MonkeyPatch.context() as mp:
            if way == "plain":
                mp.setattr(boxes.SharedBoxes, "verdict", lambda self, ontology: None)
            mp.setattr(boxes.SharedBoxes, "clean", spy)
            report = predport.convert([results], ontology, "preds", out, "coco",
                                      {"images": str(images), **(options or {})}, workers=workers, keep_going=True)
        rows = re.sub(rb"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [\d:]+ UTC", b"TS", out.read_bytes()) \
            if out.exists() else None
        summary = report.summary()
        for key in ("stages", "seconds", "written"):
            summary.pop(key, None)
        outcomes.append((rows, [(p.code, p.severity, p.message, p.location) for p in report.problems.items],
                         json.dumps(summary, sort_keys=True, default=str), sum(t is not None for t in taken)))
        for p in tmp_path.glob(f"{way}.*"):
            p.unlink()
    return outcomes


@st.composite
def clean_results(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """COCO results that the shared table takes whole: boxes inside 640x480 frames with float scores, the ids the
    annotations' indices (some files with an 8-digit index's worth of rows would keep ids as hashes: see
    test_integer_ids_hash_as_their_spelling)."""
    images = [{"id": k, "file_name": f"im{k}.jpg", "width": 640, "height": 480} for k in range(draw(st.integers(1, 5)))]
    categories = [{"id": c, "name": f"c{c}"} for c in (3, 1, 2)]
    anns = []
    for _ in range(draw(st.integers(0, 40))):
        x, y = draw(st.integers(0, 600)), draw(st.floats(0, 400))
        anns.append({"image_id": draw(st.sampled_from([im["id"] for im in images])),
                     "category_id": draw(st.sampled_from([1, 2, 3])),
                     "bbox": [x, y, draw(st.integers(1, 639 - x)), draw(st.floats(0.5, 479 - y))],
                     "score": draw(st.floats(0, 1))})
    return {"images": images, "categories": categories}, anns


@SETTINGS
@given(case=st.one_of(plain_results().map(lambda c: (False, c)), clean_results().map(lambda c: (True, c))),
       shape=st.sampled_from([["bounding_box"], ["bounding_box", "polygon"]]), data=st.data())
def test_rows_of_a_shared_table_convert_as_the_tables_they_stand_for(tmp_path: Path, case: Any, shape: list[str],
                                                                    data: st.DataObject) -> None:
    """A unit whose boxes are rows of a table shared by the file (checked once for the whole file, written from
    its numpy columns and hashes computed per block of ids) gives the label rows, problems and counts of the unit
    with the plain table those rows stand for: on plain results, with a mutation, and under the filters (which
    take the plain table)."""
    clean, (meta, anns) = case
    ontology = coco_ontology(tmp_path / "ont.json", meta["categories"], lambda c: shape[c % len(shape)])
    shared, plain = _converted_both_ways(tmp_path, meta, anns, ontology)
    assert shared[:3] == plain[:3] and plain[3] == 0
    if clean and anns and shape == ["bounding_box"]:
        assert shared[3] > 0  # (the shared table was taken)
    broken = data.draw(mutated(anns)) if anns else anns
    options = data.draw(st.sampled_from([{}, {"min_confidence": 0.5}, {"top_k": 1}]))
    shared, plain = _converted_both_ways(tmp_path, meta, broken, ontology, options=options)
    assert shared[:3] == plain[:3]


def test_rows_of_a_shared_table_with_workers(tmp_path: Path) -> None:
    """The same with two worker processes, on 3,000 boxes of which some leave the frame and some have scores
    outside [0, 1] (their images are left out, the others are written from the shared table)."""
    import random

    rnd = random.Random(5)
    images = [{"id": k, "file_name": f"im{k:03d}.jpg", "width": 640, "height": 480} for k in range(60)]
    categories = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3, 4)]
    anns: list[dict[str, Any]] = [{"image_id": rnd.randrange(60), "category_id": rnd.choice((1, 2, 3, 4)),
                                   "bbox": [rnd.uniform(0, 580), rnd.uniform(0, 420), rnd.uniform(1, 60),
                                            rnd.uniform(1, 60)], "score": rnd.uniform(0, 1)} for _ in range(3000)]
    for k in range(0, 3000, 211):
        anns[k]["score"] = 1.25
    for k in range(5, 3000, 307):
        anns[k]["bbox"][0] = 630.0
    ontology = coco_ontology(tmp_path / "ont.json", categories)
    meta = {"images": images, "categories": categories}
    shared, plain = _converted_both_ways(tmp_path, meta, anns, ontology, workers=2)
    assert shared[:3] == plain[:3]
    left_out = json.loads(shared[2])["left_out"]
    assert shared[0] is not None and 0 < shared[0].count(b"\n") == 60 - len(left_out) < 60
    assert {code for code, *_ in shared[1]} >= {"geometry.out_of_frame", "confidence.out_of_range"}
    one, _ = _converted_both_ways(tmp_path, meta, anns, ontology, workers=1)
    assert one[:3] == shared[:3] and one[3] == 60 - len(left_out)  # (in one process: the clean units, from the table)
