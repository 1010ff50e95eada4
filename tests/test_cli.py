"""The command line: exit codes, every problem printed as file#pointer: message [code], all or nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import DATA
from predport.cli import main

REF = DATA / "encord" / "reference"
ONT = REF / "ontology.json"


def bad_row(tmp_path: Path) -> Path:
    row = json.loads((REF / "image-bounding_box.json").read_text())
    obj = row["data_units"]["00000000-0000-0000-0000-000000000000"]["labels"]["objects"][0]
    obj["boundingBox"]["w"] = 0.0
    obj["confidence"] = 3
    row["object_answers"]["bbox0001"]["classifications"][0]["featureHash"] = "nope"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(row))
    return path


def test_bad_file_exit_1_lists_every_problem_and_writes_nothing(tmp_path: Path, capsys) -> None:
    path = bad_row(tmp_path)
    out = tmp_path / "out"
    code = main(["convert", str(path), "--ontology", str(ONT), "--branch", "preds", "--out", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    obj = f"{path}#/data_units/00000000-0000-0000-0000-000000000000/labels/objects/0"
    assert sorted(lines) == sorted([
        f"{obj}: confidence 3 is not in [0, 1] (at frames/0/confidence) [confidence.out_of_range]",
        f"{obj}: bounding_box has zero or negative size (w=0.0, h=0.5) [geometry.degenerate]",
        f"{path}#/object_answers/bbox0001/classifications/0: attribute 'nope' does not belong to 'Car' "
        "[attribute.unknown]",
    ])
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.json"]  # no staging directory left either


def test_failed_run_leaves_an_existing_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--ontology", str(ONT), "--branch", "b", "--out", str(out)]
    assert main(["convert", str(REF / "image-point.json"), *args]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["convert", str(bad_row(tmp_path)), *args]) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("x")
    code = main(["convert", str(REF / "image-point.json"), "--ontology", str(ONT), "--branch", "b", "--out", str(out)])
    assert code == 2 and "not a predport output directory" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "x"


def test_json_output(tmp_path: Path, capsys) -> None:
    code = main(["validate", str(bad_row(tmp_path)), "--ontology", str(ONT), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["ok"] is False
    assert sorted(p["code"] for p in doc["problems"]) == ["attribute.unknown", "confidence.out_of_range",
                                                          "geometry.degenerate"]
    assert doc["problems"][0]["location"]["file"].endswith("bad.json")
    assert doc["summary"]["data_units"] == 1


def test_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(REF / "image-point.json"), "--ontology", str(tmp_path / "missing.json")]) == 2
    assert "cannot read ontology" in capsys.readouterr().err
    assert main(["validate", str(REF / "image-point.json"), "--ontology", str(ONT), "--from", "nope"]) == 2
    assert "unknown format 'nope'" in capsys.readouterr().err
    try:
        main(["convert", str(REF / "image-point.json"), "--ontology", str(ONT)])  # no --branch / --out
    except SystemExit as e:
        assert e.code == 2


def test_detection_explains_itself(tmp_path: Path, capsys) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert main(["validate", str(path), "--ontology", str(ONT)]) == 2
    err = capsys.readouterr().err
    assert "no reader recognises" in err and "encord: no label-row keys" in err and "predport: no data-unit keys" in err


def test_warnings_do_not_block(tmp_path: Path) -> None:
    row = json.loads((REF / "image-bounding_box.json").read_text())
    car = row["data_units"]["00000000-0000-0000-0000-000000000000"]["labels"]["objects"][0]
    row["object_actions"] = {"bbox0001": {"objectHash": "bbox0001", "actions": [{
        "name": "Moving", "featureHash": "attMovin", "answers": [{"featureHash": "optMovY1"}], "range": [[0, 0]]}]}}
    assert car["featureHash"] == "objBBox1"
    path = tmp_path / "row.json"
    path.write_text(json.dumps(row))
    out = tmp_path / "out"
    assert main(["convert", str(path), "--ontology", str(ONT), "--branch", "b", "--out", str(out)]) == 0
    assert (out / "manifest.json").exists()


def test_console_script_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "predport.cli", "formats"], capture_output=True, text=True, check=True)
    assert {line.split()[0] for line in proc.stdout.splitlines()} >= {"coco", "encord", "predport"}


def test_counts_and_times_below_their_floor_are_usage_errors(capsys) -> None:  # type: ignore[no-untyped-def]
    """--workers 0 and -1 ran as 1 worker without a word; --bundle-size 0 would have reached the upload."""
    convert = ["convert", str(REF / "image-point.json"), "--ontology", str(ONT), "--branch", "b"]
    upload = ["upload", "out", "--project", "p"]
    for args, said in ((["--workers", "0"], "argument --workers: 0 is less than 1"),
                       (["--workers", "two"], "argument --workers: 'two' is not a whole number"),
                       (["--bundle-size", "0"], "argument --bundle-size: 0 is less than 1"),
                       (["--retries", "-1"], "argument --retries: -1 is less than 0"),
                       (["--backoff", "nan"], "argument --backoff: nan is not a finite number")):
        assert main([*(convert if args[0] == "--workers" else upload), *args]) == 2
        assert said in capsys.readouterr().err
