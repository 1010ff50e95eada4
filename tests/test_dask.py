"""Conversion on a Dask cluster (a LocalCluster of 2 worker processes, started once for the module): the same
bytes as the one-process run, all or nothing across tasks, fsspec URLs for sources and output."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import predport
from conftest import coco_ontology
from output_kit import TS, same_but_time
from predport.core.problems import PredportError
from sources_kit import BOOM, IMAGES, RESULTS, result_shards

distributed = pytest.importorskip("distributed")
fsspec = pytest.importorskip("fsspec")



@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def ontology(tmp: Path) -> Path:
    return coco_ontology(tmp / "ont.json", json.loads(IMAGES.read_text())["categories"])


def shards(tmp: Path, n: int = 3, broken: bool = False) -> list[Path]:
    """The COCO results as ``n`` COCO datasets (images, categories, scored annotations), split by image: the
    shards a detector run on several machines writes. ``broken``: one annotation of the last shard has a box
    outside its image (a located error)."""
    truth = json.loads(IMAGES.read_text())
    results = json.loads(RESULTS.read_text())
    images = sorted(truth["images"], key=lambda im: im["id"])
    out = []
    for k in range(n):
        mine = images[k::n]
        ids = {im["id"] for im in mine}
        anns = [{**a, "id": i + 1} for i, a in enumerate(results) if a["image_id"] in ids]
        if broken and k == n - 1:
            anns[3]["bbox"] = [-50.0, 10.0, 20.0, 20.0]
        path = tmp / f"shard-{k}.json"
        path.write_text(json.dumps({"images": mine, "categories": truth["categories"], "annotations": anns}))
        out.append(path)
    return out


def manifest(path: Path) -> dict[str, Any]:
    """The manifest, its timestamp aside (and the rows' CRC-32, which covers their timestamps)."""
    m = json.loads(path.with_name(path.name.split(".jsonl")[0] + ".manifest.json").read_text())
    del m["created_at"]
    for u in m["units"]:
        del u["crc32"]
    return m


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_same_bytes_as_one_process(tmp_path: Path, client: Any) -> None:
    """Three shards on two Dask workers: the file and its manifest are the one-process run's, timestamps aside."""
    src = shards(tmp_path)
    ont = ontology(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = predport.convert(src, ont, "preds", tmp_path / "a" / "out.jsonl", options={"model": "m", "top_k": 5})
    many = predport.convert(src, ont, "preds", tmp_path / "b" / "out.jsonl", options={"model": "m", "top_k": 5},
                            dask=client)
    assert one.ok and many.ok, list(many.problems)
    a, b = (tmp_path / d / "out.jsonl" for d in "ab")
    assert a.read_bytes().count(b"\n") == 100 and same_but_time(a.read_bytes(), b.read_bytes())
    assert manifest(a) == manifest(b)
    assert manifest(b)["provenance"]["sources"] == [
        {"path": str(p), "bytes": p.stat().st_size, "sha256": m["sha256"]}
        for p, m in zip(src, manifest(a)["provenance"]["sources"], strict=True)]
    assert one.per_group() == many.per_group() and one.objects == many.objects
    assert many.per_group()["person"]["filtered"] > 0  # (the filter ran in the tasks, and was counted)
    # a task's timestamp is the driver's: every row of the run has the same one
    assert len(set(TS.findall(b.read_text()))) == 1
    assert many.seconds > 0 and {"tasks", "read", "validate", "write", "commit"} <= set(many.stages)
    assert leftovers(tmp_path / "b", set()) == ["out.jsonl", "out.manifest.json"]


def test_gzip_output_reads_back_the_same(tmp_path: Path, client: Any) -> None:
    src = shards(tmp_path, 2)
    ont = ontology(tmp_path)
    one = predport.convert(src, ont, "p", tmp_path / "one.jsonl")
    many = predport.convert(src, ont, "p", tmp_path / "many.jsonl.gz", dask=client)
    assert one.ok and many.ok
    assert same_but_time((tmp_path / "one.jsonl").read_bytes(), gzip.decompress((tmp_path / "many.jsonl.gz")
                                                                                  .read_bytes()))
    assert len(list(predport.open_output(tmp_path / "many.jsonl.gz").rows())) == 100


def test_data_error_in_one_task_writes_nothing(tmp_path: Path, client: Any) -> None:
    """A located error in one shard: reported with its file and pointer, exit status 1, nothing written, no
    part left; with keep_going, the other units are written."""
    src = shards(tmp_path, broken=True)
    ont = ontology(tmp_path)
    out = tmp_path / "out" / "o.jsonl"
    out.parent.mkdir()
    report = predport.convert(src, ont, "p", out, dask=client)
    assert not report.ok
    [err] = [p for p in report.problems if p.severity == "error"]
    assert err.location.file == str(src[2]) and err.location.pointer.startswith("/annotations/")
    assert leftovers(out.parent, set()) == []
    report = predport.convert(src, ont, "p", out, dask=client, keep_going=True)
    assert list(report.left_out.values()) == [[err.code]]
    assert len(list(predport.open_output(out).rows())) == 99


def test_duplicate_titles_across_tasks(tmp_path: Path, client: Any) -> None:
    src = shards(tmp_path, 2)
    ont = ontology(tmp_path)
    report = predport.convert([src[0], src[1], src[0]], ont, "p", tmp_path / "o.jsonl", dask=client)
    # (49 of the shard's 50 images have records; the one without is a harmless repeat, as in one process)
    assert not report.ok and report.problems.by_code["unit.duplicate"] == 49
    assert report.problems.by_code["unit.repeated"] == 1
    assert not (tmp_path / "o.jsonl").exists()
    # the duplicates' records are reported, as one process reports them: converted once, from the first shard
    one = predport.convert([src[0], src[1], src[0]], ont, "p", tmp_path / "one.jsonl")
    assert report.per_group() == one.per_group() and report.objects == one.objects
    first = predport.convert([src[0]], ont, "p", tmp_path / "first.jsonl")
    assert sum(n for (_, how), n in report.ledger.items() if how == "reported") == sum(first.objects.values())


def test_duplicate_titles_across_processes_under_the_filters(tmp_path: Path) -> None:
    """With the confidence filters, a duplicate's rows that they leave out stay filtered, the rest are reported,
    as one process counts them (the driver takes back what a task counted by reading its sources again: with the
    task's filters too)."""
    src = shards(tmp_path, 2)
    ont = ontology(tmp_path)
    options = {"min_confidence": 0.5}
    one = predport.convert([src[0], src[1], src[0]], ont, "p", tmp_path / "one.jsonl", options=options)
    many = predport.convert([src[0], src[1], src[0]], ont, "p", tmp_path / "many.jsonl", options=options, workers=2)
    assert many.problems.by_code["unit.duplicate"] == one.problems.by_code["unit.duplicate"] > 30
    assert many.per_group() == one.per_group() and many.objects == one.objects
    assert sum(v.get("filtered", 0) for v in one.per_group().values()) > 0


def test_failed_task_leaves_nothing(tmp_path: Path, client: Any) -> None:
    """A task that raises: the run raises, saying which reader broke; no output, no part, no staging left, and
    the old output is still there."""
    (tmp_path / "boom.py").write_text(BOOM)
    plugins = tmp_path / "plugins.yaml"
    plugins.write_text("readers:\n  boom: boom.py\n")
    src = [*shards(tmp_path, 2), tmp_path / "x.boom"]
    src[-1].write_text("{}")
    ont = ontology(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert predport.convert(src[:1], ont, "p", out / "o.jsonl").ok  # (the old output)
    old = (out / "o.jsonl").read_bytes(), (out / "o.manifest.json").read_bytes()
    with pytest.raises(PredportError, match=r"a Dask task failed: .*reader 'boom' failed on .*the reader broke"):
        predport.convert(src, ont, "p", out / "o.jsonl", plugins=[plugins], dask=client)
    assert leftovers(out, set()) == ["o.jsonl", "o.manifest.json"]
    assert ((out / "o.jsonl").read_bytes(), (out / "o.manifest.json").read_bytes()) == old
    mem = fsspec.filesystem("memory")
    with pytest.raises(PredportError, match="a Dask task failed"):
        predport.convert(src, ont, "p", "memory://fail/o.jsonl", plugins=[plugins], dask=client)
    assert not mem.exists("/fail") or mem.ls("/fail") == []


def test_fsspec_urls(tmp_path: Path, client: Any) -> None:
    """Sources and output on an fsspec file system (memory://, here in the driver; the tasks run in this process
    with a client on its own threads, since memory:// is per process): problems name the URL."""
    src = shards(tmp_path, 2, broken=True)
    ont = ontology(tmp_path)
    mem = fsspec.filesystem("memory")
    for p in src:
        mem.pipe_file(f"/in/{p.name}", p.read_bytes())
    mem.pipe_file("/ont.json", ont.read_bytes())
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as local:
        report = predport.convert(["memory://in/shard-*.json"], "memory://ont.json", "p", "memory://out/o.jsonl",
                                  dask=local)
        assert not report.ok
        [err] = [p for p in report.problems if p.severity == "error"]
        assert err.location.file == "memory://in/shard-1.json"
        assert mem.ls("/out") == [] if mem.exists("/out") else True
        src[1].write_text(src[1].read_text().replace("[-50.0, 10.0, 20.0, 20.0]", "[1.0, 10.0, 20.0, 20.0]"))
        mem.pipe_file("/in/shard-1.json", src[1].read_bytes())
        report = predport.convert(["memory://in/shard-*.json"], "memory://ont.json", "p", "memory://out/o.jsonl",
                                  dask=local)
    assert report.ok, list(report.problems)
    assert sorted(p["name"] for p in mem.ls("/out")) == ["/out/o.jsonl", "/out/o.manifest.json"]
    local_run = predport.convert(src, ont, "p", tmp_path / "o.jsonl")
    assert same_but_time(mem.cat_file("/out/o.jsonl"), (tmp_path / "o.jsonl").read_bytes())
    m = json.loads(mem.cat_file("/out/o.manifest.json"))
    for u in m["units"]:
        del u["crc32"]
    assert [s["path"] for s in m["provenance"]["sources"]] == ["memory://in/shard-0.json", "memory://in/shard-1.json"]
    assert m["units"] == manifest(tmp_path / "o.jsonl")["units"] and local_run.ok
    mem.pipe_file("/other/o.jsonl", b"someone else's file\n")  # (not a predport output: never replaced)
    with pytest.raises(PredportError, match="is not a predport output file"):
        predport.convert(["memory://in/shard-*.json"], "memory://ont.json", "p", "memory://other/o.jsonl", dask=client)
    assert mem.cat_file("/other/o.jsonl") == b"someone else's file\n"


def test_cli_dask_local(tmp_path: Path) -> None:
    """``--dask local`` starts a LocalCluster on this machine; the summary is the one-process run's."""
    src = shards(tmp_path, 2)
    ont = ontology(tmp_path)
    run = subprocess.run([sys.executable, "-m", "predport.cli", "convert", *map(str, src), "--ontology", str(ont),
                          "--branch", "p", "--out", str(tmp_path / "o.jsonl"), "--dask", "local", "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["ok"] and doc["summary"]["data_units"] == 100 and doc["summary"]["written"] == str(tmp_path / "o.jsonl")
    bad = subprocess.run([sys.executable, "-m", "predport.cli", "convert", *map(str, src), "--ontology", str(ont),
                          "--branch", "p", "--out", str(tmp_path / "d"), "--dask", "local"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--dask writes one file" in bad.stderr
    (tmp_path / "boom.py").write_text(BOOM)
    (tmp_path / "plugins.yaml").write_text("readers:\n  boom: boom.py\n")
    (tmp_path / "x.boom").write_text("{}")
    failed = subprocess.run([sys.executable, "-m", "predport.cli", "--plugins", str(tmp_path / "plugins.yaml"),
                             "convert", *map(str, src), str(tmp_path / "x.boom"), "--ontology", str(ont), "--branch",
                             "p", "--out", str(tmp_path / "f.jsonl"), "--dask", "local"],
                            capture_output=True, text=True, timeout=120)
    # predport says which task failed and why, once: distributed's own "Compute Failed" record is dropped
    assert failed.returncode == 2 and "reader 'boom' failed on" in failed.stderr, failed.stderr
    assert "Compute Failed" not in failed.stderr and not (tmp_path / "f.jsonl").exists()


def test_result_shards_sharing_images_one_process(tmp_path: Path) -> None:
    """Shards of COCO results with one --images file: each image is written once, with the records of the shard
    that has them; an image no shard has is written once, empty; the repeats are said (unit.repeated), and two
    yields of one title that disagree on its size are still a duplicate."""
    src = result_shards(tmp_path)
    ont = ontology(tmp_path)
    opts = {"images": str(IMAGES)}
    whole = predport.convert([RESULTS], ont, "p", tmp_path / "whole.jsonl", options=opts)
    report = predport.convert(src, ont, "p", tmp_path / "shards.jsonl", options=opts, workers=2)
    assert whole.ok and report.ok, list(report.problems)
    assert report.units == whole.units == 100 and report.objects == whole.objects
    [note] = [p for p in report.problems if p.code == "unit.repeated"]
    assert note.severity == "info" and note.message.startswith("200 data unit(s)")
    got = {u["title"]: u["objects"] for u in predport.open_output(tmp_path / "shards.jsonl").units}
    assert got == {u["title"]: u["objects"] for u in predport.open_output(tmp_path / "whole.jsonl").units}
    assert sum(1 for n in got.values() if n == 0) == 1  # (the image without results)
    truth = json.loads(IMAGES.read_text())
    image = truth["images"][0]
    for name, width in (("a", image["width"]), ("b", image["width"]), ("c", image["width"] + 1)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"images": [{**image, "width": width}], "annotations": [],
                                                             "categories": truth["categories"]}))
    for workers in (1, 2):  # (2: each source a task, the rule applied by the tasks' driver)
        same = predport.convert([tmp_path / "a.json", tmp_path / "b.json"], ont, "p", tmp_path / "x.jsonl",
                                workers=workers)
        assert same.ok and same.units == 1 and same.repeated == 1
        # the same title, another size: not the same image
        clash = predport.convert([tmp_path / "a.json", tmp_path / "c.json"], ont, "p", tmp_path / "y.jsonl",
                                 workers=workers)
        assert clash.problems.by_code.get("unit.duplicate") == 1 and not (tmp_path / "y.jsonl").exists()
        assert clash.units == 2 and clash.repeated == 0


def test_result_shards_sharing_images_on_dask(tmp_path: Path, client: Any) -> None:
    src = result_shards(tmp_path)
    ont = ontology(tmp_path)
    opts = {"images": str(IMAGES)}
    one = predport.convert(src, ont, "p", tmp_path / "one.jsonl", options=opts)
    many = predport.convert(src, ont, "p", tmp_path / "many.jsonl", options=opts, dask=client)
    assert one.ok and many.ok and many.problems.by_code["unit.repeated"] == 1
    assert same_but_time((tmp_path / "one.jsonl").read_bytes(), (tmp_path / "many.jsonl").read_bytes())
    assert manifest(tmp_path / "one.jsonl")["units"] == manifest(tmp_path / "many.jsonl")["units"]


def test_option_files_as_urls(tmp_path: Path) -> None:
    """Files that options name may be URLs too (a local copy per task): --images on memory://, given as a
    Python option and as a command-line reader option; the provenance names the URL."""
    src = result_shards(tmp_path, 2)
    ont = ontology(tmp_path)
    mem = fsspec.filesystem("memory")
    mem.pipe_file("/gt/images.json", IMAGES.read_bytes())
    for p in src:
        mem.pipe_file(f"/res/{p.name}", p.read_bytes())
    one = predport.convert(src, ont, "p", tmp_path / "one.jsonl", options={"images": str(IMAGES)})
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as local:
        for k, how in enumerate(({"options": {"images": "memory://gt/images.json"}},
                                 {"reader_args": [["--images", "memory://gt/images.json"]]})):
            report = predport.convert(["memory://res/*.json"], ont, "p", tmp_path / f"{k}.jsonl", dask=local,
                                      **how)
            assert report.ok, list(report.problems)
            assert same_but_time((tmp_path / f"{k}.jsonl").read_bytes(), (tmp_path / "one.jsonl").read_bytes())
            prov = manifest(tmp_path / f"{k}.jsonl")["provenance"]
            assert prov["option_files"]["coco.images"]["path"] == "memory://gt/images.json"
    assert one.ok


def test_a_killed_drivers_remote_parts_are_removed_by_the_next_run(tmp_path: Path) -> None:
    """A driver killed mid-run cannot remove its parts on object storage. Its heartbeat (driver.json, rewritten
    every minute) stops; the next run into the same output removes parts directories silent for 15 minutes and
    says so, and leaves a running driver's alone."""
    import time

    from predport.core import cluster

    src = shards(tmp_path, 2)
    mem = fsspec.filesystem("memory")
    now = time.time()
    for name, beat in (("dead", now - 3600), ("live", now - 30)):
        mem.pipe_file(f"/sweep/.o.jsonl.predport-parts-{name}/driver.json", json.dumps({"time": beat}).encode())
        mem.pipe_file(f"/sweep/.o.jsonl.predport-parts-{name}/part-000000", b"rows\n")
    mem.pipe_file("/sweep/.other.jsonl.predport-parts-dead/driver.json", json.dumps({"time": 0}).encode())
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as local:
        report = predport.convert(src, ontology(tmp_path), "p", "memory://sweep/o.jsonl", dask=local)
    assert report.ok
    assert [(p.code, p.location.file) for p in report.problems if p.code == "output.stale"] == [
        ("output.stale", "/sweep/.o.jsonl.predport-parts-dead")]
    assert sorted(p["name"] for p in mem.ls("/sweep")) == [
        "/sweep/.o.jsonl.predport-parts-live", "/sweep/.other.jsonl.predport-parts-dead", "/sweep/o.jsonl",
        "/sweep/o.manifest.json"]
    beat = cluster._Heartbeat(mem, "/beat", every=0.05)  # (the beat itself: rewritten while the run goes on)
    first = json.loads(mem.cat_file("/beat/driver.json"))["time"]
    time.sleep(0.3)
    beat.stop()
    assert json.loads(mem.cat_file("/beat/driver.json"))["time"] > first


def test_tasks_of_a_run_share_the_readers_memo_in_a_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask worker process that takes several tasks of one run parses and indexes their shared --images file
    once; a new run starts afresh (a long-lived worker keeps only the latest run's); an --images given as a URL is
    each task's own copy, indexed in each."""
    from datetime import UTC, datetime

    from predport.converters import coco
    from predport.core import cluster

    calls: list[str] = []
    real = coco._index_images
    monkeypatch.setattr(coco, "_index_images", lambda images, meta_file, key: (
        calls.append(meta_file), real(images, meta_file, key))[1])
    src = result_shards(tmp_path, 3)
    ont = json.loads(ontology(tmp_path).read_text())
    parts = tmp_path / "parts"
    parts.mkdir()
    mem = fsspec.filesystem("memory")
    mem.pipe_file("/memo/images.json", IMAGES.read_bytes())
    for images, runs, indexed in ((str(IMAGES), 2, 2), ("memory://memo/images.json", 1, 3)):
        calls.clear()
        for _ in range(runs):
            task = cluster._Task(ont, "ont", "p", "coco", {"images": images}, [], False, [], datetime.now(UTC), False,
                                 str(parts))
            results = [cluster.run_task(k, [str(s)], task) for k, s in enumerate(src)]
            # (the units a task has no records for: held for the driver; but with an option fetched from a URL,
            # whose problems would name the task's copy, written by the task)
            assert sum(len(r["units"]) for r in results) == (99 if runs == 2 else 300)
        assert len(calls) == indexed, calls
