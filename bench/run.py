"""predport's benchmark: one command, seeded synthetic COCO results, ratios against the baselines of issue 5.

    .venv/bin/python bench/run.py            # full size: 500k boxes / 5,000 images; 40k masks / 2,000 images;
                                             # the 500k boxes again as 5,000 YOLO label files (ratio to COCO)
    .venv/bin/python bench/run.py --quick    # a tenth of it

Times, in the same run, on the same files:
  * ``json.load`` of the results file (the floor: reading it at all),
  * ``predport convert`` (the CLI, a fresh process, full validation), with 1 and with 2 workers,
  * (a) the encord SDK building the same rows with LabelRowV2 objects and ``to_encord_dict()``,
  * (b) the SDK's own COCO-to-Encord RLE conversion (``coco_rle_to_encord_rle``) for the masks.
``--baseline SRC`` also times another predport source tree (e.g. ``git worktree add /tmp/base <commit>``) in the
same rounds and prints this tree's time as a ratio of it.
The SDK paths run on a sample of images / masks (``--sdk-images``, ``--sdk-masks``) and are scaled to the full
workload by the sample's share of the boxes / masks; ``--sdk-images 0`` runs them on everything.
predport writes one ``.jsonl`` file (a label row per line, the manifest beside it) into ``--work``, on the ordinary
disk, as issue 12 asks; ``--out-dir DIR`` puts it elsewhere (/dev/shm: RAM), ``--directory`` writes the directory form
(a file per data unit: on a virtual disk, creating thousands of files costs a kernel time that varies several-fold).
Each predport run's per-stage seconds (``--format json``'s ``stages``) are printed for its best round.
Peak memory is each process's maximum resident set size. Timings on a shared machine drift over minutes, so the
contenders are timed in interleaved rounds (``--repeat``) and each one's best round is kept; compare ratios,
not seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import workload

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def measure(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak MB) of a command run in a fresh process (measured by a helper that only waits)."""
    helper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
              "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
              "dt = time.perf_counter() - t; "
              "sys.stderr.write(r.stderr.decode()[-2000:] if r.returncode else ''); "
              "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    out = subprocess.run([PY, "-c", helper, *cmd], capture_output=True, text=True, check=True)
    seconds, kb, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return float(seconds), int(kb) / 1024


def measure_stages(cmd: list[str]) -> tuple[float, float, dict[str, float]]:
    """(seconds, peak MB, per-stage seconds) of a ``predport convert --format json`` run."""
    seconds, mb, doc = measure_json(cmd)
    return seconds, mb, doc.get("summary", {}).get("stages", {})


#: the filters of the boxes workload's filtered run (about a third of the boxes left out)
FILTERS = ["--min-confidence", "0.3", "--top-k", "5"]


def predport_cmd(paths: dict[str, Path], out: Path, workers: int, src: Path | None = None) -> list[str]:
    # another source tree: its src/ goes first on sys.path (before this venv's editable install)
    # (its own `python -m predport.cli`, whatever that tree's command does on exit)
    run = [PY, "-c", f"import runpy, sys; sys.path.insert(0, {str(src / 'src')!r}); "
           "runpy.run_module('predport.cli', run_name='__main__', alter_sys=True)"] if src is not None else \
        [PY, "-m", "predport.cli"]
    given = [str(paths["yolo"])] if "yolo" in paths else [str(paths["results"]), "--images", str(paths["images"])]
    return [*run, "convert", *given, "--ontology", str(paths["ontology"]), "--branch", "bench", "--out", str(out),
            "--workers", str(workers), "--quiet", "--format", "json"]


def sdk_boxes(paths: dict[str, Path], n_images: int) -> tuple[float, int]:
    """Seconds for the SDK to build the rows of the first ``n_images`` images, and how many boxes they hold."""
    code = f"""
import json, sys, time
from datetime import datetime
from encord.objects import LabelRowV2, OntologyStructure, ObjectInstance
from encord.objects.coordinates import BoundingBoxCoordinates
from encord.ontology import Ontology
from encord.orm.ontology import Ontology as OrmOntology
from encord.orm.storage import CustomerProvidedImageMetadata
s = OntologyStructure.from_dict(json.load(open({str(paths["ontology"])!r})))
ont = Ontology(OrmOntology(title="b", structure=s, ontology_hash="0", created_at=datetime(2024, 1, 1),
                           last_edited_at=datetime(2024, 1, 1)), api_client=None)
meta = json.load(open({str(paths["images"])!r}))
images = {{im["id"]: im for im in meta["images"][:{n_images}]}}
anns = [a for a in json.load(open({str(paths["results"])!r})) if a["image_id"] in images]
by_image = {{}}
for a in anns:
    by_image.setdefault(a["image_id"], []).append(a)
objects = {{o.feature_node_hash: o for o in s.objects}}
t = time.perf_counter()
for image_id, group in by_image.items():
    im = images[image_id]
    w, h = im["width"], im["height"]
    row = LabelRowV2.from_media_metadata(ont, CustomerProvidedImageMetadata(mime_type="image/jpeg", file_size=1,
                                                                           width=w, height=h), branch_name="bench")
    for a in group:
        x, y, bw, bh = a["bbox"]
        inst = ObjectInstance(objects[f"obj{{a['category_id']:05d}}"])
        inst.set_for_frames(BoundingBoxCoordinates(top_left_x=x / w, top_left_y=y / h, width=bw / w, height=bh / h),
                            frames=0, confidence=a["score"], manual_annotation=False)
        row.add_object_instance(inst)
    row.to_encord_dict()
print(time.perf_counter() - t, len(anns))
"""
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    seconds, n = out.stdout.split()
    return float(seconds), int(n)


def sdk_masks(paths: dict[str, Path], n_masks: int) -> tuple[float, int]:
    code = f"""
import json, time
from encord.common.bitmask_operations.bitmask_operations import coco_rle_to_encord_rle
anns = json.load(open({str(paths["results"])!r}))[:{n_masks}]
t = time.perf_counter()
for a in anns:
    h, w = a["segmentation"]["size"]
    coco_rle_to_encord_rle(a["segmentation"]["counts"], height=h, width=w)
print(time.perf_counter() - t, len(anns))
"""
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    seconds, n = out.stdout.split()
    return float(seconds), int(n)


def measure_json(cmd: list[str]) -> tuple[float, float, dict]:
    """(seconds, peak MB, the JSON the command printed last) of a command run in a fresh process."""
    helper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
              "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
              "dt = time.perf_counter() - t; "
              "sys.stderr.write(r.stderr[-3000:] if r.returncode else ''); "
              "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode); "
              "print(r.stdout)")
    out = subprocess.run([PY, "-c", helper, *cmd], capture_output=True, text=True, check=True)
    first, rest = out.stdout.split("\n", 1)
    seconds, kb, rc = first.split()
    if rc != "0":
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return float(seconds), int(kb) / 1024, json.loads(rest)


def coco_tool_cmd(paths: dict[str, Path], tool: str) -> list[str]:
    """pycocotools' or faster-coco-eval's COCOeval on the files: prints its evaluate + accumulate seconds and
    its 12 numbers."""
    imports = ("from pycocotools.coco import COCO; from pycocotools.cocoeval import COCOeval as E"
               if tool == "pycocotools" else "from faster_coco_eval import COCO, COCOeval_faster as E")
    code = f"""
import contextlib, io, json, time
{imports}
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO({str(paths["truth"])!r})
    dt = gt.loadRes({str(paths["results"])!r})
    e = E(gt, dt, "bbox")
    t = time.perf_counter()
    e.evaluate()
    e.accumulate()
    seconds = time.perf_counter() - t
    e.summarize()
print(json.dumps({{"seconds": seconds, "stats": [float(v) for v in e.stats]}}))
"""
    return [PY, "-c", code]


def predport_eval_cmd(paths: dict[str, Path], protocol: str) -> list[str]:
    return [PY, "-m", "predport.cli", "evaluate", str(paths["results"]), "--truth", str(paths["truth"]),
            "--ontology", str(paths["ontology"]), "--protocol", protocol, "--format", "json"]


def evaluation(args: argparse.Namespace, scale: int) -> dict:
    """The evaluation workload: 500k predicted boxes against the ground truth they were drawn from."""
    n, n_images = 500_000 // scale, 5_000 // scale
    paths = workload.evaluation(n, n_images, args.seed, args.work)
    print(f"\n== evaluation: {n:,} predicted boxes against {n // 5:,} truths (1 % crowds) over {n_images:,} images")
    runs: dict[str, list[tuple[float, float, dict]]] = {k: [] for k in ("pycocotools", "faster", "coco", "encord")}
    for _ in range(args.repeat):
        runs["pycocotools"].append(measure_json(coco_tool_cmd(paths, "pycocotools")))
        runs["faster"].append(measure_json(coco_tool_cmd(paths, "faster")))
        runs["coco"].append(measure_json(predport_eval_cmd(paths, "coco")))
        runs["encord"].append(measure_json(predport_eval_cmd(paths, "encord")))
    best = {k: min(v, key=lambda r: r[0]) for k, v in runs.items()}
    peak = {k: max(r[1] for r in v) for k, v in runs.items()}
    stage = {k: min(r[2]["seconds"] for r in runs[k]) for k in ("pycocotools", "faster")}
    stage.update({k: min(r[2]["summary"]["seconds"]["evaluate"] for r in runs[k]) for k in ("coco", "encord")})
    labels = {"pycocotools": "pycocotools COCOeval", "faster": "faster-coco-eval", "coco": "predport --protocol coco",
              "encord": "predport (encord protocol)"}
    print(f"{'':32} {'whole process':>14} {'evaluate+accumulate':>20} {'peak':>9}")
    for k, label in labels.items():
        print(f"{label:32} {best[k][0]:12.2f} s {stage[k]:18.2f} s {peak[k]:7.0f} MB")
    diff = max(abs(a - b) for a, b in zip(best["coco"][2]["coco"].values(), best["pycocotools"][2]["stats"],
                                          strict=True))
    ours = stage["coco"]
    print(f"ratios (evaluate+accumulate; predport's includes building COCO's datasets from its own):\n"
          f"  pycocotools / predport {stage['pycocotools'] / ours:5.1f}x (target >= 3x)   "
          f"predport / faster-coco-eval {ours / stage['faster']:5.2f}x (target <= 1.5x)\n"
          f"  whole process: pycocotools / predport {best['pycocotools'][0] / best['coco'][0]:5.2f}x   "
          f"predport / faster-coco-eval {best['coco'][0] / best['faster'][0]:5.2f}x\n"
          f"  memory predport / pycocotools {peak['coco'] / peak['pycocotools']:4.2f}x (target <= 1)   "
          f"the 12 numbers: max |predport - pycocotools| {diff:.1e}")
    return {"seconds": best, "stage": stage, "peak_mb": peak, "max_diff": diff}


def clear(out: Path) -> None:
    """Remove a run's output (a directory, or a file and its manifest)."""
    shutil.rmtree(out, ignore_errors=True)
    for p in (out, out.with_name(out.name.removesuffix(".jsonl") + ".manifest.json")):
        p.unlink(missing_ok=True)


def _filesystem(path: Path) -> str:
    """The file system type and device a path is on (from /proc/mounts), to say where output went."""
    best = ("", "?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mount, kind = line.split()[:3]
            if str(path.resolve()).startswith(mount.rstrip("/") + "/") and len(mount) >= len(best[0]):
                best = (mount, kind, dev)
    except OSError:
        pass
    return f"{best[1]} on {best[2]}"


def dask_workload(args: argparse.Namespace, boxes: dict[str, Path], n: int, out: Path) -> dict[str, float]:
    """The boxes as 10 shards of results (one --images file): one process and --workers 2 on one machine against
    --dask local (a LocalCluster of 2 worker processes, started by the command: its start-up is in the time),
    each writing one .jsonl; and the one-file input with --workers 2 for reference."""
    shard_paths = workload.shards(args.work, boxes, 10)
    print(f"\n== Dask: the {n:,} boxes as 10 shards of results (one --images file), one .jsonl written")
    base = [PY, "-m", "predport.cli", "convert", "--images", str(boxes["images"]), "--ontology",
            str(boxes["ontology"]), "--branch", "bench", "--out", str(out), "--quiet", "--format", "json"]
    cases = {"one file, --workers 2": [*base, str(boxes["results"]), "--workers", "2"],
             "10 shards, --workers 1": [*base, *map(str, shard_paths)],
             "10 shards, --workers 2": [*base, *map(str, shard_paths), "--workers", "2"],
             "10 shards, --dask local (2 workers)": [*base, *map(str, shard_paths), "--dask", "local"]}
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(args.repeat):
        for name, cmd in cases.items():
            clear(out)
            runs[name].append(measure_stages(cmd)[:2])
    best = {k: min(v) for k, v in runs.items()}
    for name, (s, mb) in best.items():
        print(f"{name:38} {s:8.2f} s   peak {mb:7.0f} MB (the largest process)")
    return {k: v[0] for k, v in best.items()}


def json_load_cmd(path: Path) -> list[str]:
    return [PY, "-c", f"import json; json.load(open({str(path)!r}))"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a tenth of the workload")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds; each contender's best counts")
    p.add_argument("--sdk-images", type=int, default=500, help="images the SDK box path runs on (0: all)")
    p.add_argument("--sdk-masks", type=int, default=300, help="masks the SDK RLE path runs on (0: all)")
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="where predport writes its label rows (default: --work, on the ordinary disk)")
    p.add_argument("--directory", action="store_true",
                   help="write the directory form (a file per data unit) instead of one .jsonl file")
    p.add_argument("--only", nargs="+", choices=("boxes", "masks", "yolo", "dask", "eval"),
                   help="run these workloads only")
    p.add_argument("--baseline", type=Path, metavar="SRC",
                   help="a predport source tree (a git worktree of an earlier commit) timed in the same rounds")
    args = p.parse_args()
    # predport's bytecode, as an installed wheel has it: with PYTHONDONTWRITEBYTECODE set (as on the development
    # VM), an editable install would otherwise compile every predport module in every timed run (~0.15 s)
    for tree in (ROOT, args.baseline):
        if tree is not None:
            subprocess.run([PY, "-m", "compileall", "-q", str(tree / "src")], check=True, stdout=subprocess.DEVNULL)
    scale = 10 if args.quick else 1
    n_boxes, n_box_images = 500_000 // scale, 5_000 // scale
    n_masks, n_mask_images = 40_000 // scale, 2_000 // scale
    base = args.out_dir or args.work
    base.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="predport-bench-", dir=base)) / ("out" if args.directory else "out.jsonl")
    print(f"predport writes its output as {'a directory' if args.directory else 'one .jsonl file'} under {base} "
          f"({_filesystem(base)})")
    results = {}

    t = time.perf_counter()
    boxes = workload.write(args.work, "boxes", n_boxes, n_box_images, "bounding_box", args.seed)
    masks = workload.write(args.work, "masks", n_masks, n_mask_images, "bitmask", args.seed)
    yolo = {**boxes, "yolo": workload.yolo(args.work, boxes)}  # (the same boxes, as YOLO label files)
    print(f"workloads ready in {time.perf_counter() - t:.1f} s (seed {args.seed}, in {args.work})")

    for name, paths, n, n_images, sdk in (("boxes", boxes, n_boxes, n_box_images, "images"),
                                          ("masks", masks, n_masks, n_mask_images, "masks"),
                                          ("yolo", yolo, n_boxes, n_box_images, "images")):
        if args.only and name not in args.only:
            continue
        size = paths["results"].stat().st_size / 1e6
        what = {"boxes": "boxes", "masks": "RLE masks", "yolo": "boxes in YOLO label files"}[name]
        print(f"\n== {n:,} {what} over {n_images:,} images of {workload.W}x{workload.H} "
              + (f"({size:.1f} MB of JSON)" if name != "yolo" else f"(the boxes workload; {n_images:,} label files "
                 f"and {n_images:,} PNG images in {paths['yolo']})"))
        # every round times each contender once, in turn, and the best round of each counts: this machine's
        # speed drifts over minutes, and interleaving keeps a slow patch from landing on one contender only
        loads: list[tuple[float, float]] = []
        runs_all: dict[int, list[tuple[float, float, dict[str, float]]]] = {1: [], 2: []}
        base_all: dict[int, list[tuple[float, float, dict[str, float]]]] = {1: [], 2: []}
        sdk_runs: list[tuple[float, int]] = []
        filtered: list[tuple[float, float]] = []  # (the boxes: 2 workers with FILTERS)
        base_filtered: list[tuple[float, float]] = []
        for _ in range(args.repeat):
            loads.append(measure(json_load_cmd(paths["results"])))
            for workers in (1, 2):
                clear(out)
                runs_all[workers].append(measure_stages(predport_cmd(paths, out, workers)))
                if args.baseline:
                    clear(out)
                    base_all[workers].append(measure_stages(predport_cmd(paths, out, workers, args.baseline)))
            if name == "boxes":  # (into another output: the unfiltered one is checked below)
                fout = out.with_name("filtered" + out.suffix)
                clear(fout)
                filtered.append(measure(predport_cmd(paths, fout, 2) + FILTERS))
                if args.baseline:
                    clear(fout)
                    base_filtered.append(measure(predport_cmd(paths, fout, 2, args.baseline) + FILTERS))
                clear(fout)
            if sdk == "images":
                sdk_runs.append(sdk_boxes(paths, args.sdk_images or n_images))
            else:
                sdk_runs.append(sdk_masks(paths, args.sdk_masks or n))
        load_s, load_mb = min(x[0] for x in loads), max(x[1] for x in loads)
        print(f"json.load                          {load_s:8.2f} s   peak {load_mb:7.0f} MB")
        runs = {w: (min(x[0] for x in r), max(x[1] for x in r)) for w, r in runs_all.items()}
        for workers, (s, mb) in runs.items():
            stages = min(runs_all[workers], key=lambda x: x[0])[2]
            print(f"predport convert --workers {workers}       {s:8.2f} s   peak {mb:7.0f} MB   "
                  f"{s / load_s:5.2f}x json.load\n    stages: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
                  + (" s (read/validate/write: both processes' seconds added)" if workers > 1 else " s"))
        if filtered:
            s, mb = min(x[0] for x in filtered), max(x[1] for x in filtered)
            print(f"  the same with {' '.join(FILTERS)}: {s:.2f} s, peak {mb:.0f} MB "
                  f"({s / runs[2][0]:.2f}x the unfiltered run)")
        if args.baseline:
            for workers, r in base_all.items():
                s, mb = min(x[0] for x in r), max(x[1] for x in r)
                print(f"baseline convert --workers {workers}       {s:8.2f} s   peak {mb:7.0f} MB   "
                      f"this tree / baseline {runs[workers][0] / s:5.3f}x time, {runs[workers][1] / mb:5.3f}x memory")
            if base_filtered:
                s = min(x[0] for x in base_filtered)
                print(f"  baseline with {' '.join(FILTERS)}: {s:.2f} s   this tree / baseline "
                      f"{min(x[0] for x in filtered) / s:5.3f}x time")
        manifest = json.loads((out / "manifest.json" if args.directory else
                               out.with_name("out.manifest.json")).read_text())
        assert manifest["totals"]["objects"] == n, manifest["totals"]
        sdk_s, sdk_n = min(sdk_runs)
        what = "SDK LabelRowV2 + to_encord_dict" if sdk == "images" else "SDK coco_rle_to_encord_rle"
        full = sdk_s * n / sdk_n
        note = "" if sdk_n == n else f" (ran on {sdk_n:,} of {n:,}, scaled)"
        print(f"{what:34} {full:8.2f} s{note}")
        best_s = min(s for s, _ in runs.values())
        results[name] = {"json_load_s": load_s, "json_load_mb": load_mb, "sdk_s": full,
                         "predport": {w: {"s": s, "mb": mb} for w, (s, mb) in runs.items()}}
        if filtered:
            results[name]["filtered"] = {"args": FILTERS, "workers": 2, "s": min(x[0] for x in filtered),
                                         "mb": max(x[1] for x in filtered)}
        if name == "boxes":  # issue 12's targets
            print("targets (issue 12):")
            for what, value, target, met in (
                    ("2 workers / json.load", runs[2][0] / load_s, "<= 1.0x", runs[2][0] <= load_s),
                    ("1 worker / json.load", runs[1][0] / load_s, "<= 1.5x", runs[1][0] <= 1.5 * load_s),
                    ("SDK / predport (best)", full / best_s, ">= 20x", full / best_s >= 20),
                    ("peak memory / json.load's", max(runs[1][1], runs[2][1]) / load_mb, "<= 2.0x",
                     max(runs[1][1], runs[2][1]) <= 2 * load_mb)):
                print(f"  {what:28} {value:6.2f}x  (target {target})  {'met' if met else 'NOT MET'}")
        else:
            target = 10 if name == "yolo" else 40
            print(f"ratios: SDK / predport {full / best_s:6.1f}x (target >= {target}x)   "
                  f"predport / json.load {best_s / load_s:4.2f}x"
                  f"   memory predport (1 worker) / json.load {runs[1][1] / load_mb:4.2f}x (target <= ~2x)")
        if name == "yolo" and "boxes" in results:
            coco = results["boxes"]["predport"]
            print("ratios: YOLO / COCO path " + "   ".join(
                f"{w} worker{'s' if w > 1 else ''} {runs[w][0] / coco[w]['s']:4.2f}x time, "
                f"{runs[w][1] / coco[w]['mb']:4.2f}x memory" for w in (1, 2)))
    if not args.only or "dask" in args.only:
        results["dask"] = dask_workload(args, boxes, n_boxes, out)
    if not args.only or "eval" in args.only:
        results["eval"] = evaluation(args, scale)
    (args.work / "results.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(out.parent, ignore_errors=True)
    print(f"\nraw numbers: {args.work / 'results.json'}")


if __name__ == "__main__":
    main()
