"""One-file output (--out FILE.jsonl / FILE.jsonl.gz): the rows of the directory form, one per line ordered by
title whatever the workers, a manifest beside it that says which bytes make it complete, all or nothing under
SIGKILL, and read back by upload, branches, evaluate and the encord reader."""

from __future__ import annotations

import gzip
import json
import os
import signal
import zlib
from pathlib import Path

import pytest

import predport
from output_kit import TS, convert_args, leftovers, run_cli
from predport.cli import main
from predport.core.output import open_output


def lines(path: Path) -> list[str]:
    data = path.read_bytes()
    text = gzip.decompress(data) if path.name.endswith(".gz") else data
    return [TS.sub("T", line) for line in text.decode().splitlines()]


def test_one_file_holds_the_directory_forms_rows_ordered_by_title(inputs: dict[str, Path], tmp_path: Path) -> None:
    assert main(convert_args(inputs, "new", tmp_path / "dir")) == 0
    manifest = json.loads((tmp_path / "dir" / "manifest.json").read_text())
    rows = {u["title"]: TS.sub("T", (tmp_path / "dir" / u["file"]).read_text()) for u in manifest["units"]}
    order = sorted(im["file_name"] for im in json.loads(inputs["images"].read_text())["images"])
    for name, workers in (("one.jsonl", "1"), ("two.jsonl", "2"), ("gz.jsonl.gz", "2")):
        out = tmp_path / name
        assert main([*convert_args(inputs, "new", out), "--workers", workers]) == 0
        got = lines(out)
        assert got == [rows[t] for t in order], name  # (every row, byte for byte; by title)
        m = json.loads(out.with_name(name.split(".")[0] + ".manifest.json").read_text())
        assert [u["title"] for u in m["units"]] == order and m["totals"] == manifest["totals"]
        data = out.read_bytes()
        for u in m["units"]:  # each row: where the manifest says, with its CRC-32, readable alone
            piece = data[u["offset"]:u["offset"] + u["bytes"]]
            assert zlib.crc32(piece) == u["crc32"]
            alone = gzip.decompress(piece) if name.endswith(".gz") else piece
            assert TS.sub("T", alone.decode().rstrip("\n")) == rows[u["title"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dir", "gz.jsonl.gz", "gz.manifest.json", "one.jsonl", "one.manifest.json", "two.jsonl", "two.manifest.json"]
    assert main(convert_args(inputs, "new", tmp_path / "two.jsonl.gz")) == 2  # (its manifest would be two.jsonl's)


def test_the_encord_reader_and_evaluate_read_it(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "preds.jsonl.gz"
    assert main(convert_args(inputs, "new", out)) == 0
    problems = predport.Problems()
    units = list(predport.read([out], inputs["ontology"], problems=problems))  # (detected: encord label rows)
    assert problems.ok and len(units) == 100 and units[0]["source"]["file"].startswith(f"{out}:1")
    ev = predport.evaluate([out], [inputs["images"]], inputs["ontology"], protocol="coco")
    direct = predport.evaluate([inputs["new"]], [inputs["images"]], inputs["ontology"], protocol="coco",
                               options={"images": str(inputs["images"])})
    a, b = ev.as_dict(), direct.as_dict()  # type: ignore[attr-defined]
    for d in (a, b):
        d["summary"].pop("seconds")
    assert a["objects"] == b["objects"] and a["summary"] == b["summary"] and a["coco"] == b["coco"]


@pytest.mark.parametrize("fault", ["assembled", "file-renamed"])
def test_killed_while_committing_a_file_is_old_new_or_said_incomplete(
        inputs: dict[str, Path], expected: dict[str, dict[str, str] | None], tmp_path: Path, fault: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "work" / "preds.jsonl"
    assert main(convert_args(inputs, "old", out)) == 0
    old = lines(out)
    run = run_cli([*convert_args(inputs, "new", out), "--workers", "2"], {**os.environ, "PREDPORT_FAULT": fault})
    assert run.returncode == -signal.SIGKILL, run.stderr
    if fault == "assembled":  # (before anything was renamed: the old output, whole)
        assert lines(out) == old and open_output(out).units
    else:  # the new file is in place, its manifest is not: never taken for complete
        with pytest.raises(predport.PredportError, match="incomplete"):
            open_output(out)
        problems = predport.Problems()
        assert list(predport.read([out], inputs["ontology"], fmt="encord", problems=problems)) == []
        assert [p.code for p in problems] == ["source.invalid"]
    assert [n for n in leftovers(out.parent, out) if n.startswith(".")]  # the killed run's staging
    capsys.readouterr()
    assert main([*convert_args(inputs, "new", out), "--format", "json"]) == 0  # the next run: complete, swept
    said = [p["code"] for p in json.loads(capsys.readouterr().out)["problems"]]
    assert "output.stale" in said and leftovers(out.parent, out) == ["preds.manifest.json"]
    assert len(open_output(out).units) == 100


def test_a_file_predport_did_not_write_is_never_replaced(inputs: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.jsonl"
    out.write_text("my own notes\n")
    assert main(convert_args(inputs, "new", out)) == 2
    assert "is not a predport output file" in capsys.readouterr().err and out.read_text() == "my own notes\n"


def test_workers_on_ranges_of_titles_append_their_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that announces its units (the COCO reader does) lets each worker convert a contiguous range of
    titles, of about equal weight; when it yields them in title order, the one-file output is the parts one
    after the other (a part renamed, the other appended in one copy), with the same rows as one process's."""
    from predport.core import writer
    from predport.core.pipeline import _Shard

    shard = _Shard(workers=3)
    shard.plan([f"t{k:02d}" for k in range(12)], [1] * 6 + [5] * 6, cheap=True)  # (the heavy units last)
    assert shard.bounds == ["t07", "t10"]  # weights 11 | 15 | 10 of 36
    # the keys whose middle is within a fifth of a share of a boundary (at 12 and 24 of 36): 13.5 and 23.5
    assert shard.zones == [["t07"], ["t09"]]
    shard.plan(["x"], None)  # (one plan, the first)
    assert shard.bounds == ["t07", "t10"]
    costly = _Shard(workers=3)  # (units that are not cheap to build twice: fixed ranges, no zone)
    costly.plan([f"t{k:02d}" for k in range(12)], [1] * 6 + [5] * 6)
    assert costly.bounds == shard.bounds and costly.zones == [[], []] and not costly.zone_of
    owners = [[k for k in range(3) if _Shard(index=k, count=3, bounds=shard.bounds).mine(t)] for t in
              ("t00", "T05", "t06", "t08", "t09", "t11", "zz", "")]
    assert owners == [[0], [0], [0], [1], [1], [2], [2], [0]]  # (one owner each; the shard key is lower-cased)
    # with the zones: either neighbour may convert a zone's key
    owners = [[k for k in range(3) if _Shard(index=k, count=3, bounds=shard.bounds, zone_of=shard.zone_of).mine(t)]
              for t in ("t06", "t07", "t08", "t09", "t10")]
    assert owners == [[0], [0, 1], [1], [1, 2], [2]]

    images = [{"id": k, "file_name": f"im{k:03d}.jpg", "width": 64, "height": 48} for k in range(40)]
    src, meta = tmp_path / "r.json", tmp_path / "images.json"
    meta.write_text(json.dumps({"images": images, "categories": [{"id": 1, "name": "car"}]}))
    src.write_text(json.dumps([{"image_id": k % 40, "category_id": 1, "bbox": [1, 2, 3 + k % 5, 4], "score": 0.5}
                               for k in range(400)]))
    ont = tmp_path / "ont.json"
    ont.write_text(json.dumps({"objects": [{"id": "1", "name": "car", "color": "#FF0000", "shape": "bounding_box",
                                            "featureNodeHash": "carBox01"}], "classifications": []}))
    copies: list[int] = []
    original = writer._copy

    def counted(src: int, dst: int, offset: int, count: int) -> None:
        copies.append(count)
        original(src, dst, offset, count)

    monkeypatch.setattr(writer, "_copy", counted)
    args = [str(src), "--images", str(meta), "--ontology", str(ont), "--branch", "b", "--quiet"]
    assert main(["convert", *args, "--out", str(tmp_path / "one.jsonl")]) == 0
    assert main(["convert", *args, "--out", str(tmp_path / "two.jsonl"), "--workers", "2"]) == 0
    assert lines(tmp_path / "two.jsonl") == lines(tmp_path / "one.jsonl")
    # the first part renamed, the second appended in a copy (and a copy a row for what it took of the zone, from
    # its back, in reverse order): not 40 rows copied one by one
    assert 1 <= len(copies) <= 1 + 8 and sum(copies) < (tmp_path / "two.jsonl").stat().st_size


def test_a_zone_is_taken_from_both_ends_once() -> None:
    import multiprocessing

    from predport.core.pipeline import _Shard

    shard = _Shard(zones=[["a", "b", "c", "d", "e"]], claims=multiprocessing.Array("q", [0, 5]))
    assert [shard.claim(1, k, front=True) for k in (0, 1)] == [True, True]
    assert shard.claim(1, 3, front=False) is False  # (the back is taken from its end, in order)
    assert [shard.claim(1, k, front=False) for k in (4, 3, 2)] == [True, True, True]
    assert shard.claim(1, 2, front=True) is False and shard.claim(1, 1, front=False) is False
    assert list(shard.claims) == [2, 2]


def test_a_lock_held_by_a_dead_process_ends_the_wait() -> None:
    """A worker killed between taking the zones' lock and releasing it would leave the others waiting forever:
    the wait asks whether they still run, and ends the run instead."""
    import multiprocessing

    from predport.core.parallel import held
    from predport.core.pipeline import _Shard
    from predport.core.problems import PredportError

    lock = multiprocessing.Lock()
    lock.acquire()  # (held, as by a process that then died)
    with pytest.raises(PredportError, match="died while holding its lock"), held(lock, lambda: False, wait=0.05):
        pass
    with held(multiprocessing.Lock(), lambda: False, wait=0.05):  # (free: taken at once, whatever alive says)
        pass

    import threading
    from types import SimpleNamespace

    dead = SimpleNamespace(procs=[(1, SimpleNamespace(is_alive=lambda: False), None)])  # (worker 1, gone)
    shard = _Shard(zones=[["a", "b"]], claims=multiprocessing.Array("q", [0, 2]), pool=dead)  # type: ignore[arg-type]
    holder = threading.Thread(target=shard.claims.get_lock().acquire)  # (held elsewhere, never released)
    holder.start()
    holder.join()
    with pytest.raises(PredportError, match="died while holding its lock"):
        shard.claim(1, 0, front=True)


@pytest.mark.parametrize("slow", ["parent", "child"])
def test_the_faster_worker_converts_more_of_the_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      slow: str) -> None:
    """Either worker converts the units around the boundary of their ranges, once its own range is done: the
    faster one takes more than half of the units (a static split: exactly half, and a wait for the slower). The
    output is the same file as one process's, and the report lists the same problems in the same order."""
    import time

    from predport.core import pipeline

    images = [{"id": k, "file_name": f"t{k:02d}.jpg", "width": 64, "height": 48} for k in range(40)]
    src, meta = tmp_path / "r.json", tmp_path / "images.json"
    meta.write_text(json.dumps({"images": images, "categories": [{"id": 1, "name": "car"}]}))
    anns = [{"image_id": k % 40, "category_id": 1, "bbox": [1, 2, 3 + k % 5, 4], "score": 0.5} for k in range(400)]
    for k in range(3, 400, 7):  # (problems in every range and in the zone)
        anns[k]["score"] = 1.25
    src.write_text(json.dumps(anns))
    ont = tmp_path / "ont.json"
    ont.write_text(json.dumps({"objects": [{"id": "1", "name": "car", "color": "#FF0000", "shape": "bounding_box",
                                            "featureNodeHash": "carBox01"}], "classifications": []}))

    def run(out: str, workers: int) -> list[tuple[str, str | None]]:
        report = predport.convert([src], ont, "b", tmp_path / out, options={"images": str(meta)}, workers=workers,
                                  keep_going=True)
        return [(p.code, p.location.pointer) for p in report.problems]

    one = run("one.jsonl", 1)
    parent, log, original = os.getpid(), tmp_path / "log", pipeline._one

    def timed(unit: dict[str, object], *rest: object) -> None:
        if (os.getpid() == parent) == (slow == "parent"):
            time.sleep(0.01)
        with open(log, "a") as f:  # (a line a unit: appends do not interleave)
            f.write(f"{os.getpid()} {unit['title']}\n")
        original(unit, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "_one", timed)
    assert run("two.jsonl", 2) == one and len(one) > 40
    assert lines(tmp_path / "two.jsonl") == lines(tmp_path / "one.jsonl")
    by: dict[bool, list[str]] = {True: [], False: []}
    for line in log.read_text().splitlines():
        pid, title = line.split()
        by[int(pid) == parent].append(title)
    fast, slowest = by[slow == "child"], by[slow == "parent"]
    assert sorted(fast + slowest) == [f"t{k:02d}.jpg" for k in range(40)]  # (each once)
    # ranges t00-t15 and t24-t39, and the zone t16-t23 between them: the fast one took all of it
    assert len(fast) == 24, (fast, slowest)
    zone = [f"t{k:02d}.jpg" for k in range(16, 24)]  # (the parent takes it from its front, the child from its back)
    assert fast[16:] == (zone if slow == "child" else zone[::-1])


@pytest.mark.parametrize(("name", "workers"), [("o.jsonl", 1), ("o.jsonl", 2), ("o.jsonl.gz", 1), ("dir", 2)])
def test_a_disk_that_refuses_the_rows_ends_the_run_cleanly(inputs: dict[str, Path], tmp_path: Path, name: str,
                                                           workers: int) -> None:
    """A full disk (here a file size limit: EFBIG where ENOSPC would come) raised an OSError with a traceback,
    and the staging directory stayed, since closing the part file raised again in the abort. Now the run says
    what it could not write and leaves nothing beside the output."""
    out = tmp_path / "out" / name
    prelude = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))")
    run = run_cli([*convert_args(inputs, "new", out), "--workers", str(workers)], dict(os.environ), prelude)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("predport: error: cannot write ") and "File too large" in run.stderr
    assert leftovers(out.parent, out) == [] and not out.exists()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert main([*convert_args(inputs, "new", blocked / "o.jsonl")]) == 2  # (its parent is a file)


def test_evaluate_on_a_disk_that_refuses_its_files_ends_cleanly(inputs: dict[str, Path], tmp_path: Path) -> None:
    """The same for `predport evaluate --out DIR`: its report files, refused, raised with a traceback."""
    out = tmp_path / "ev"
    prelude = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))")
    run = run_cli(["evaluate", str(inputs["new"]), "--images", str(inputs["images"]), "--truth",
                   str(inputs["images"]), "--ontology", str(inputs["ontology"]), "--out", str(out)],
                  dict(os.environ), prelude)
    assert run.returncode == 2 and run.stderr.startswith(f"predport: error: cannot write {out}: File too large")
    assert not out.exists() and leftovers(tmp_path, out) == []


def test_a_part_file_writes_every_row_whole_however_little_each_write_takes(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are held and written a megabyte at a time (one gathered write); a write that takes only part of what
    it was given (as the kernel may) goes on from where it stopped: the file is the rows, in order, whole."""
    from predport.core import writer

    rows = [bytes([65 + k % 26]) * (1 + k * 7919 % 20_000) + b"\n" for k in range(300)]
    calls: list[int] = []
    real = os.writev
    for limit in (None, 997, 4097, 100_000):
        path = tmp_path / f"part-{limit}"

        def stingy(fd: int, buffers: list[bytes], limit: int | None = limit) -> int:
            calls.append(len(buffers))
            assert len(calls) < 20_000, "written over and over"  # (a wrong loop would fill the disk)
            if limit is None:
                return real(fd, buffers)
            first = bytes(buffers[0])[:limit]  # (at most `limit` bytes of the first buffer)
            return real(fd, [first])

        calls.clear()
        monkeypatch.setattr(os, "writev", stingy)
        part = writer._PartFile(path)
        offsets = []
        for row in rows:
            offsets.append(part.size)
            part.write(row)
        part.close()
        monkeypatch.undo()
        data = path.read_bytes()
        assert data == b"".join(rows) and part.size == len(data)
        assert [data[a:a + len(r)] for a, r in zip(offsets, rows, strict=True)] == rows
        assert max(calls) <= 512 and sum(map(len, rows)) > 2 * writer._PartFile.HOLD  # (several writes of held rows)
