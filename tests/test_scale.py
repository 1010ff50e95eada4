"""Batch runs: many sources and globs, workers, --keep-going, the summary and the progress line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import predport
from conftest import DATA, coco_ontology, load
from output_kit import snapshot
from predport.cli import main
from predport.core.pipeline import Tally
from sources_kit import BOOM, IMAGES, RESULTS, log_reads, result_shards

REF = DATA / "encord" / "reference"
ONT = REF / "ontology.json"
COCO = DATA / "coco"


def bitmask_ontology(tmp_path: Path) -> Path:
    return coco_ontology(tmp_path / "ont.json", load(COCO / "instances_val2014_100.json")["categories"], "bitmask")


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_write_exactly_what_one_process_writes(tmp_path: Path, workers: int) -> None:
    anns = load(COCO / "instances_val2014_fakesegm100_results.json")
    anns[3] = {**anns[3], "category_id": 999}  # some problems too: they must be reported once, not per worker
    anns[10] = {**anns[10], "image_id": 1}
    src = tmp_path / "r.json"
    src.write_text(json.dumps(anns))
    ont = bitmask_ontology(tmp_path)
    opts = {"images": str(COCO / "instances_val2014_100.json")}
    one = predport.convert([src], ont, "b", tmp_path / "one", options=opts, keep_going=True)
    seen: list[Tally] = []
    many = predport.convert([src], ont, "b", tmp_path / "many", options=opts, keep_going=True, workers=workers,
                            progress=seen.append)
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "many")
    # the progress line counts every worker's units, not only the parent's share
    assert seen[-1] == Tally(100, sum(one.objects.values()), one.problems.errors)
    assert sorted(map(str, one.problems)) == sorted(map(str, many.problems))
    assert one.per_group() == many.per_group() and one.units == many.units == 100
    assert sum(one.objects.values()) == len(anns) - 2


def test_workers_all_or_nothing(tmp_path: Path) -> None:
    units = [{"title": f"img{i}.jpg", "kind": "image", "width": 10, "height": 10, "classifications": [],
              "objects": [{"id": "a", "class": {"name": "Car"}, "frames": [{"frame": 0, "geometry": {
                  "shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2 if i != 7 else 2.0, "h": 0.2}}]}]}
             for i in range(20)]
    src = tmp_path / "u.json"
    src.write_text(json.dumps(units))
    report = predport.convert([src], ONT, "b", tmp_path / "out", fmt="predport", workers=2)
    assert [p.code for p in report.problems] == ["geometry.out_of_frame"] and report.units == 20
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["u.json"]


def test_keep_going_writes_the_valid_units_and_says_which_were_left_out(tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "rows"
    src.mkdir()
    for name in ("image-point.json", "image-polyline.json", "image-bounding_box.json"):
        shutil.copy(REF / name, src / name)
    bad = json.loads((REF / "image-bounding_box.json").read_text())
    bad["data_units"]["00000000-0000-0000-0000-000000000000"]["labels"]["objects"][0]["confidence"] = 7
    (src / "image-bounding_box.json").write_text(json.dumps(bad))
    out = tmp_path / "out"
    code = main(["convert", str(src), "--ontology", str(ONT), "--branch", "b", "--out", str(out), "--keep-going"])
    err = capsys.readouterr().err
    assert code == 1  # the data had errors, though what was valid is written
    assert sorted(p.name for p in out.iterdir()) == ["image-point.json", "image-polyline.json", "manifest.json"]
    assert "left out image-bounding_box: confidence.out_of_range" in err
    assert "(1 data unit(s) left out)" in err


def test_many_sources_and_globs(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(REF / "image-point.json", a / "p.json")
    shutil.copy(REF / "image-polygon.json", b / "q.json")
    shutil.copy(REF / "image-skeleton.json", b / "r.json")
    report = predport.validate([a, str(tmp_path / "b" / "*.json")], ONT, fmt="encord")
    assert report.ok and report.units == 3
    with pytest.raises(predport.PredportError, match="no file matches"):
        predport.validate([str(tmp_path / "nothing" / "*.json")], ONT)


def test_summary_lists_files_units_classes_problems_and_time(tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "rows"
    shutil.copytree(REF, src)
    (src / "ontology.json").unlink()
    bad = json.loads((src / "image-point.json").read_text())
    bad["data_units"]["00000000-0000-0000-0000-000000000000"]["labels"]["objects"][0]["confidence"] = 7
    (src / "image-point.json").write_text(json.dumps(bad))
    code = main(["validate", str(src), "--ontology", str(ONT), "--from", "encord", "--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert re.fullmatch(r"1 source\(s\), 10 data unit\(s\), 12 object\(s\), 4 classification\(s\) in [\d.]+ s", err[0])
    assert "per class (written):" in err and "  Car: 4" in err
    assert err[err.index("problems by code:") + 1] == "  confidence.out_of_range: 1"
    assert err[-1] == "1 error(s): nothing written"


def _stderr_on_a_terminal(args: list[str], rows: int = 24, columns: int = 100) -> str:
    """What the CLI writes to stderr when stderr is a (pseudo-)terminal (of that size: 0 for one that says none)."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    subprocess.run([sys.executable, "-m", "predport.cli", *args], stdout=subprocess.DEVNULL, stderr=slave,
                   timeout=120, check=False)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # (EIO: the other side is closed and everything was read)
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_progress_only_on_a_terminal_and_never_with_quiet(tmp_path: Path, capsys: Any) -> None:
    args = ["validate", str(REF / "image-point.json"), "--ontology", str(ONT)]
    assert main(args) == 0
    assert "units" not in capsys.readouterr().err  # not a terminal: no progress line
    shown = _stderr_on_a_terminal(args)
    assert " units" in shown and "1 source(s), 1 data unit(s)" in shown  # tqdm's line, then the summary
    # a terminal that says it has no size (a container's, given none): tqdm alone would draw nothing there
    assert " units" in _stderr_on_a_terminal(args, 0, 0)
    quiet = _stderr_on_a_terminal([*args, "--quiet"])
    assert " units" not in quiet and "1 source(s), 1 data unit(s)" in quiet


def test_schema_rejected_records_count_as_reported_in_their_category(tmp_path: Path) -> None:
    units = [{"title": "a.jpg", "kind": "image", "width": 10, "height": 10, "classifications": [], "objects": [
        {"id": "1", "class": {"name": "Car"}, "frames": [{"frame": 0, "source": {"file": "x", "group": "car"},
                                                          "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1,
                                                                       "w": 0.2, "h": 0.2}}]},
        {"id": "2", "class": {"name": "Car"}, "frames": [{"frame": 0, "source": {"file": "x", "group": "car"},
                                                          "geometry": {"shape": "bounding_box", "x": "oops"}}]}]}]
    src = tmp_path / "u.json"
    src.write_text(json.dumps(units))
    report = predport.validate([src], ONT, fmt="predport")
    assert report.per_group() == {"car": {"converted": 1, "reported": 1}}


# -- several sources into one file with workers: a task per source (predport.core.cluster.Processes) ---------------

def manifest(path: Path) -> dict[str, Any]:
    """A one-file output's manifest, its timestamps aside."""
    m = json.loads(path.with_name(path.name.split(".")[0] + ".manifest.json").read_text())
    del m["created_at"], m["file"]
    for u in m["units"]:
        del u["crc32"]  # (it covers the rows' timestamps)
    return m  # type: ignore[no-any-return]


def test_workers_take_whole_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several sources into one file with 2 workers: each source is read once, by the process that converts it
    (before, every worker read every source after the first); the file, its manifest and the report are the
    one-process run's, the image no shard has records for included (held by every task, written by the driver);
    the progress ends at every unit."""
    from output_kit import same_but_time

    src = result_shards(tmp_path, 4)
    ont = coco_ontology(tmp_path / "ont.json", load(IMAGES)["categories"])
    log_reads(monkeypatch, log := tmp_path / "reads.log")
    opts = {"images": str(IMAGES), "model": "m"}
    one = predport.convert(src, ont, "p", tmp_path / "one.jsonl", options=opts)
    log.unlink()
    seen: list[Tally] = []
    many = predport.convert(src, ont, "p", tmp_path / "many.jsonl", options=opts, workers=2, progress=seen.append)
    reads = log.read_text().split()[1::2]
    assert sorted(reads) == [p.name for p in src]  # each once
    assert one.ok and many.ok, list(many.problems)
    assert same_but_time((tmp_path / "one.jsonl").read_bytes(), (tmp_path / "many.jsonl").read_bytes())
    # (the provenance too: the sources' and the --images file's SHA-256, the model, predport's version)
    assert manifest(tmp_path / "one.jsonl") == manifest(tmp_path / "many.jsonl")
    assert manifest(tmp_path / "many.jsonl")["provenance"]["model"] == "m"
    assert [u["objects"] for u in manifest(tmp_path / "many.jsonl")["units"]].count(0) == 1
    assert (many.units, many.objects, many.per_group(), many.repeated) == (
        one.units, one.objects, one.per_group(), one.repeated) and many.repeated == 300
    assert list(many.problems) == list(one.problems)
    assert seen and seen[-1] == Tally(100, sum(one.objects.values()), 0)
    assert sorted(p.name for p in tmp_path.iterdir() if "many" in p.name) == ["many.jsonl", "many.manifest.json"]


@pytest.mark.parametrize("how", ["raise in the parent", "raise in a child", "die in a child"])
def test_a_failed_source_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A task that fails, in this process or in the other, or whose process dies: the run ends with an error
    that says which source and why, the old output is untouched and nothing is left beside it."""
    import os
    import time

    from predport.core import cluster

    (tmp_path / "boom.py").write_text(BOOM)
    (tmp_path / "plugins.yaml").write_text("readers:\n  boom: boom.py\n")
    [shard] = result_shards(tmp_path, 1)
    boom = tmp_path / "x.boom"
    # (the largest source is this process's, the other one the child's)
    boom.write_text(("die" if how.startswith("die") else "raise") + (" " * 10**6 if "parent" in how else ""))
    ont = coco_ontology(tmp_path / "ont.json", load(IMAGES)["categories"])
    out = tmp_path / "out" / "o.jsonl"
    out.parent.mkdir()
    predport.convert([shard], ont, "p", out, options={"images": str(IMAGES)})
    before = out.read_bytes()
    here, real = os.getpid(), cluster.run_task

    def slow_here(*args: Any, **kwargs: Any) -> Any:  # (so that the child surely takes the second source)
        if os.getpid() == here:
            time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(cluster, "run_task", slow_here)
    monkeypatch.setenv("BOOM_PARENT", str(here))
    with pytest.raises(predport.PredportError) as e:
        predport.convert([shard, boom], ont, "p", out, options={"images": str(IMAGES)}, workers=2,
                         plugins=[tmp_path / "plugins.yaml"])
    said = str(e.value)
    assert "nothing was written" in said
    if how.startswith("die"):
        assert "a process converting a source was killed by SIGKILL" in said
    else:
        assert "x.boom" in said and "the reader broke" in said, said
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.jsonl", "o.manifest.json"]


def test_workers_over_sources_keep_going_and_errors(tmp_path: Path) -> None:
    """A located error in one shard: with workers taking whole sources, the run reports what one process reports
    (the file and pointer), writes nothing; with --keep-going, it writes and leaves out what one process does --
    the unit with the error is left out, not written empty from another shard that has nothing for it."""
    src = result_shards(tmp_path, 3)
    anns = json.loads(src[1].read_text())
    anns[2]["bbox"] = [-50.0, 10.0, 20.0, 20.0]
    src[1].write_text(json.dumps(anns))
    ont = coco_ontology(tmp_path / "ont.json", load(IMAGES)["categories"])
    opts = {"images": str(IMAGES)}
    for keep_going in (True, False):
        for name in ("one", "two"):
            for p in tmp_path.glob(f"{name}.*"):
                p.unlink()
        one = predport.convert(src, ont, "p", tmp_path / "one.jsonl", options=opts, keep_going=keep_going)
        two = predport.convert(src, ont, "p", tmp_path / "two.jsonl", options=opts, keep_going=keep_going,
                               workers=2)
        if keep_going:
            written = {u["title"] for u in predport.open_output(tmp_path / "two.jsonl").units}
            assert len(written) == 99 and not set(two.left_out) & written
        assert list(two.problems) == list(one.problems) and two.problems.errors == 1
        [err] = [p for p in two.problems if p.severity == "error"]
        assert err.location.file == str(src[1]) and err.location.pointer == "/2/bbox"
        assert two.left_out == one.left_out and (len(two.left_out) == 1) == keep_going
        assert (tmp_path / "two.jsonl").exists() == keep_going == (tmp_path / "one.jsonl").exists()
        if keep_going:
            assert manifest(tmp_path / "one.jsonl") == manifest(tmp_path / "two.jsonl")


def test_many_small_sources_go_in_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 small sources with 2 workers: 16 tasks at most (a task costs 30-40 ms of its own), each a run of sources
    in their order; the file, the manifest and the problems are one process's -- a title that two sources both
    have records for is the duplicate one process reports, where it reports it."""
    import os

    from output_kit import same_but_time
    from predport.core import cluster

    truth = load(IMAGES)
    by_image: dict[int, list[Any]] = {}
    for a in load(RESULTS):
        by_image.setdefault(a["image_id"], []).append(a)
    src = []
    for k, image in enumerate(sorted(truth["images"], key=lambda im: im["id"])[:40]):
        # (the last source has the first one's image again, with records: a duplicate)
        im = image if k < 39 else sorted(truth["images"], key=lambda im: im["id"])[0]
        anns = [{**a, "id": 1000 * k + i} for i, a in enumerate(by_image.get(im["id"], []))]
        path = tmp_path / f"s{k:02d}.json"
        path.write_text(json.dumps({"images": [im], "categories": truth["categories"], "annotations": anns}))
        src.append(path)
    ont = coco_ontology(tmp_path / "ont.json", truth["categories"])
    log = tmp_path / "tasks.log"
    real = cluster.run_task

    def logged(k: int, sources: list[str], *args: Any) -> Any:
        with open(log, "a") as f:
            f.write(f"{k} {os.getpid()} {' '.join(Path(s).name for s in sources)}\n")
        return real(k, sources, *args)

    monkeypatch.setattr(cluster, "run_task", logged)
    for keep_going in (False, True):
        one = predport.convert(src, ont, "p", tmp_path / "one.jsonl", keep_going=keep_going)
        log.unlink(missing_ok=True)
        two = predport.convert(src, ont, "p", tmp_path / "two.jsonl", keep_going=keep_going, workers=2)
        assert list(two.problems) == list(one.problems) and two.problems.by_code["unit.duplicate"] == 1
        # the duplicate's records: reported, in their categories, and neither converted nor written
        assert two.per_group() == one.per_group() and two.ledger == one.ledger
        assert (two.objects, two.object_frames, two.left_out) == (one.objects, one.object_frames, one.left_out)
        assert sum(n for (_, how), n in one.ledger.items() if how == "reported") == len(by_image[im["id"]])
        [dup] = [p for p in two.problems if p.code == "unit.duplicate"]
        assert dup.location.file == str(src[-1]) and "first at " + str(src[0]) in dup.message
        tasks = sorted((int(k), names.split()) for k, _, names in
                       (line.split(" ", 2) for line in log.read_text().splitlines()))
        assert 2 <= len(tasks) <= 16 and [n for _, names in tasks for n in names] == [p.name for p in src]
        if keep_going:
            assert same_but_time((tmp_path / "one.jsonl").read_bytes(), (tmp_path / "two.jsonl").read_bytes())
            assert manifest(tmp_path / "one.jsonl") == manifest(tmp_path / "two.jsonl")


def test_workers_over_sources_say_what_rows_cannot_hold_once(tmp_path: Path) -> None:
    """COCO ground truth split in 3 files, with 2 workers: the area / iscrowd that label rows cannot hold are said
    once for the run, with its output and one process's count (each task said it for its own part file)."""
    truth = load(IMAGES)
    src = []
    for k in range(3):
        ids = {im["id"] for im in truth["images"][k::3]}
        path = tmp_path / f"gt-{k}.json"
        path.write_text(json.dumps({"images": truth["images"][k::3], "categories": truth["categories"],
                                    "annotations": [a for a in truth["annotations"] if a["image_id"] in ids]}))
        src.append(path)
    ont = coco_ontology(tmp_path / "ont.json", truth["categories"], lambda _: "bitmask")
    one = predport.convert(src, ont, "p", tmp_path / "one.jsonl")
    two = predport.convert(src, ont, "p", tmp_path / "two.jsonl", workers=2)
    [a] = [p for p in one.problems if p.code == "output.dropped"]
    [b] = [p for p in two.problems if p.code == "output.dropped"]
    assert one.carried == two.carried > 0 and a.message == b.message and b.location.file == str(tmp_path / "two.jsonl")
    assert [p for p in one.problems if p is not a] == [p for p in two.problems if p is not b]


def test_validate_with_workers_takes_whole_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """predport validate of several sources with 2 workers: each source read once; the report (problems, located,
    in one process's order; counts; per-category ledger) is one process's; nothing is written."""
    src = result_shards(tmp_path, 4)
    anns = json.loads(src[2].read_text())
    anns[1]["bbox"] = [-50.0, 10.0, 20.0, 20.0]
    anns[3]["category_id"] = 9999
    src[2].write_text(json.dumps(anns))
    ont = coco_ontology(tmp_path / "ont.json", load(IMAGES)["categories"])
    log_reads(monkeypatch, log := tmp_path / "reads.log")
    opts = {"images": str(IMAGES)}
    one = predport.validate(src, ont, options=opts, branch="p")
    log.unlink()
    before = sorted(p.name for p in tmp_path.iterdir())
    two = predport.validate(src, ont, options=opts, branch="p", workers=2)
    assert sorted(log.read_text().split()[1::2]) == [p.name for p in src]
    assert not one.ok and list(two.problems) == list(one.problems) and two.problems.errors == 2
    assert (two.units, two.objects, two.per_group(), two.repeated) == (one.units, one.objects, one.per_group(),
                                                                        one.repeated)
    assert sorted(p.name for p in tmp_path.iterdir() if p != log) == before


def test_a_duplicate_from_two_shards_names_both(tmp_path: Path) -> None:
    """Two shards of results with records for one image: the duplicate says which results file each came from
    (the unit itself is the --images file's image in both), the later one's records are reported, and with
    workers taking whole sources the report is one process's."""
    src = result_shards(tmp_path, 3)
    first = json.loads(src[0].read_text())
    later = json.loads(src[2].read_text())
    # (the record is out of its frame too: one process checks nothing in a duplicate, and says nothing of it)
    src[2].write_text(json.dumps([*later, {**first[0], "id": 10**6, "bbox": [-5.0, 1.0, 2.0, 2.0]}]))
    ont = coco_ontology(tmp_path / "ont.json", load(IMAGES)["categories"])
    reports = [predport.convert(src, ont, "p", tmp_path / f"w{w}.jsonl", options={"images": str(IMAGES)},
                                keep_going=True, workers=w) for w in (1, 2)]
    for report in reports:
        [dup] = [p for p in report.problems if p.code == "unit.duplicate"]
        assert dup.location.file == str(IMAGES)
        assert dup.message.endswith(f"with records from {src[0]}); again with records from {src[2]}")
    one, two = reports
    assert list(two.problems) == list(one.problems) and two.per_group() == one.per_group()
    assert one.problems.errors == 1 and "geometry.out_of_frame" not in one.problems.by_code
    assert two.left_out == one.left_out and len(one.left_out) == 1
    # the record added to the later shard is the one reported; the first shard's are converted
    assert sum(n for (_, how), n in one.ledger.items() if how == "reported") == 1
