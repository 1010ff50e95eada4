"""The compiled schema predicate gives jsonschema's verdict on valid records and thousands of mutants."""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import jsonschema
import pytest

from conftest import DATA
from predport.core import schema
from predport.core.fastschema import compile_schema

JUNK: list[Any] = [None, True, False, 0, -1, 1, 2.5, -0.0, math.nan, math.inf, "", "x", "bounding_box", "polygon",
                   [], [0], [0, 1], [[0, 1]], {}, {"name": "x"}, {"hash": ""}, 1.0, 3.0, -2.0]


def units() -> list[dict[str, Any]]:
    data = json.loads((DATA / "encord" / "reference" / "ontology.json").read_text())
    assert data
    box = {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}
    geometries = [box, {**box, "shape": "rotatable_bounding_box", "theta": 30.0},
                  {"shape": "polygon",
                   "polygons": [[[0.1, 0.1, 0.2, 0.1, 0.2, 0.2], [0.15, 0.15, 0.16, 0.15, 0.16, 0.16]]]},
                  {"shape": "polyline", "points": [0.1, 0.1, 0.2, 0.2]}, {"shape": "point", "x": 0.5, "y": 0.5},
                  {"shape": "bitmask", "width": 12, "height": 8, "rle": ">480P1MA"},
                  {"shape": "skeleton", "points": [{"name": "head", "x": 0.5, "y": 0.1, "visibility": "occluded"},
                                                   {"hash": "kp", "x": 0.1, "y": 0.1}]}]
    objects = [{"id": f"o{i}", "class": {"name": "C", "hash": "h"}, "source": {"file": "f", "pointer": "/0"},
                "frames": [{"frame": 0, "geometry": g, "confidence": 0.5, "source": {"file": "f", "line": 3}}],
                "answers": [{"attribute": {"name": "A"}, "radio": {"name": "o"}, "frames": [[0, 1]]},
                            {"attribute": {"hash": "B"}, "checklist": [{"name": "p"}], "source": {"file": "f"}},
                            {"attribute": {"name": "T"}, "text": "t"}, {"attribute": {"name": "N"}, "numeric": 2}]}
               for i, g in enumerate(geometries)]
    return [
        {"title": "a.jpg", "kind": "image", "width": 12, "height": 8, "data_hash": None, "objects": objects,
         "classifications": [{"id": "c", "class": {"name": "W"}, "frames": [[0, 0]], "confidence": 1,
                              "answers": [{"attribute": {"name": "W"}, "radio": {"hash": "r"}}]}],
         "source": {"file": "f", "record": 3, "group": "g"}},
        {"title": "b.jpg", "kind": "image", "width": 640, "height": 480, "objects": [], "classifications": [],
         "boxes": {"classes": [{"class": {"hash": "h"}, "group": "person"}, {"class": {"name": "C"}}],
                   "class": [0, 1, 0], "id": ["1", "2", "x"], "x": [0.1, 0, 0.5], "y": [0.1, 0.2, 0.3],
                   "w": [0.2, 0.1, 1], "h": [0.1, 0.1, 0.1], "confidence": [0.9, 1, 0.0], "frame": [0, 0, 0],
                   "pointer": ["/0/bbox", "/1/bbox", "/2/bbox"], "line": [1, 2, 3], "source": {"file": "r.json"}}},
        {"title": "v.mp4", "kind": "video", "width": 10, "height": 10, "frame_count": 20, "fps": 2.0, "duration": 10,
         "objects": objects[:2], "classifications": []},
        {"title": "g", "kind": "image_group", "images": [{"title": "i", "width": 2, "height": 3, "data_hash": "h"},
                                                         {"width": None, "height": None}],
         "objects": [], "classifications": []},
    ]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def mutate(unit: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    u = copy.deepcopy(unit)
    for _ in range(rng.choice((1, 1, 2))):
        path = rng.choice(paths(u)[1:])
        parent: Any = u
        for t in path[:-1]:
            parent = parent[t]
        key = path[-1]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            del parent[key]
        elif action < 0.3 and isinstance(parent, dict):
            parent[rng.choice(["extra", "name", "hash", "frames", "radio", "text"])] = copy.deepcopy(rng.choice(JUNK))
        elif action < 0.35 and isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(JUNK)))
        else:
            parent[key] = copy.deepcopy(rng.choice(JUNK))
    return u


@pytest.mark.parametrize("name", ["data_unit", "plugins"])
def test_valid_records_agree(name: str) -> None:
    check = compile_schema(schema.load(name))
    samples = units() if name == "data_unit" else [{"readers": {"a": "b.py", "c-d": "e.f"}}]
    for u in samples:
        assert check(u) is True and jsonschema.Draft202012Validator(schema.load(name)).is_valid(u)


def test_thousands_of_mutants_agree() -> None:
    check = compile_schema(schema.load())
    reference = jsonschema.Draft202012Validator(schema.load())
    rng = random.Random(1234)
    disagreements = []
    valid = invalid = 0
    for _ in range(1500):
        u = mutate(rng.choice(units()), rng)
        expected = reference.is_valid(u)
        valid += expected
        invalid += not expected
        if check(u) != expected:
            disagreements.append(u)
    assert not disagreements, json.dumps(disagreements[0], default=str)[:2000]
    assert valid > 100 and invalid > 700  # both verdicts are exercised


def test_plugins_schema_mutants_agree() -> None:
    check = compile_schema(schema.load("plugins"))
    reference = jsonschema.Draft202012Validator(schema.load("plugins"))
    for doc in [{"readers": {}}, {"readers": {"Bad": "x"}}, {"readers": {"a": ""}}, {"readers": {"a": 1}},
                {"readers": []}, {}, {"readers": {"a": "b"}, "x": 1}, [], {"readers": {"a-b_c1": "m"}}]:
        assert check(doc) == reference.is_valid(doc), doc


def test_unknown_keywords_are_refused() -> None:
    with pytest.raises(ValueError, match="not supported"):
        compile_schema({"type": "object", "dependentRequired": {"a": ["b"]}})


def test_column_shortcuts_agree() -> None:
    """Whole columns are checked at C speed; every edge case (bool, 1.0 as an integer, NaN, "") must still get
    jsonschema's verdict."""
    check = compile_schema(schema.load())
    reference = jsonschema.Draft202012Validator(schema.load())
    base = units()[1]
    columns = {"class": [[0, 1], [0, True], [0, 1.0], [0, -1], [0, -1.0], [0, 1.5], [], [0, math.nan]],
               "id": [["a"], [""], ["a", ""], [1], []],
               "x": [[0.5, 1], [0.5, True], [math.nan, -1.0], [0.5, "1"], [None]],
               "line": [[1, 2], [0], [1.0], [2, False]]}
    seen = set()
    for key, values in columns.items():
        for value in values:
            u = copy.deepcopy(base)
            u["boxes"][key] = value
            verdict = reference.is_valid(u)
            seen.add(verdict)
            assert check(u) == verdict, (key, value)
    assert seen == {True, False}


def test_validation_of_mutants_reports_and_never_raises() -> None:
    """Whatever a reader hands over, validation reports it: no mutant (broken sources, columns that are not
    lists, junk in any field) makes validation, the run's tallies or the writer raise."""
    from predport.core.ontology import Ontology
    from predport.core.pipeline import Report, _tally
    from predport.core.problems import Problems
    from predport.core.validate import validate_unit
    from predport.core.writer import build_row

    ontology = Ontology.load(DATA / "encord" / "reference" / "ontology.json")
    rng = random.Random(99)
    reported = 0
    for _ in range(600):
        u = mutate(rng.choice(units()), rng)
        problems = Problems()
        ru = validate_unit(u, ontology, problems)
        _tally(u, ru, Report())
        if ru is not None and problems.ok:
            build_row(ru, "b", "T")
        reported += bool(problems.errors)
    assert reported > 300


def test_object_item_shortcuts_agree() -> None:
    """Arrays of flat objects (a box table's classes, refs) are checked a keyword at a time over all items; every
    edge case must still get jsonschema's verdict."""
    check = compile_schema(schema.load())
    reference = jsonschema.Draft202012Validator(schema.load())
    base = units()[1]
    entries: list[Any] = [
        {"class": {"name": "Car"}}, {"class": {"hash": "h"}, "group": "g"}, {"class": {"name": "A", "hash": "h"}},
        {"class": {}}, {"class": {"name": 1}}, {"class": {"name": None}}, {"class": {"name": True}},
        {"class": {"nam": "x"}}, {"class": {"name": "a", 1: "b"}}, {"class": "Car"}, {"class": None},
        {"group": "g"}, {"class": {"name": "a"}, "group": None}, {"class": {"name": "a"}, "group": 3},
        {"class": {"name": "a"}, "extra": 1}, {}, None, "x", [], {1: 2}, {"class": {"name": "a"}, 1: 2}]
    seen = set()
    for first in entries:
        for second in ({"class": {"name": "Car"}}, first):
            u = copy.deepcopy(base)
            u["boxes"]["classes"] = [{"class": {"name": "Car"}}, first, second]
            verdict = reference.is_valid(u)
            seen.add(verdict)
            assert check(u) == verdict, (first, second)
    assert seen == {True, False}
