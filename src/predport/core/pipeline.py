"""read -> normalise -> validate -> write, for the Python API and the CLI alike.

With ``workers > 1`` the run forks when the first data unit arrives: the readers have parsed (and, for one
big file, indexed) their input by then, so the children share it copy-on-write. Each process then keeps the
data units whose shard key is its own (readers may call ``ctx.mine(title)`` to skip building the others),
validates and writes them into the one staging directory, and the parent merges the reports and commits
or aborts the whole run. Units with the same title, or whose file names could collide, share a shard. When a
reader announces its units, shards are ranges of keys, and the keys around each boundary go to whichever of the
two neighbours is free first (:class:`_Shard`).
"""

from __future__ import annotations

import contextlib
import gc
import glob
import hashlib
import os
import sys
import time
import zlib
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

from predport.core import boxes as boxmod
from predport.core import faults
from predport.core.filters import Filters
from predport.core.maps import ClassMap, ImageMap, map_classes, merge_video
from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.parallel import describe, die_with_parent, exit_text, held
from predport.core.problems import Location, PredportError, Problem, Problems
from predport.core.reader import UNLISTED, ReadContext, Shared
from predport.core.validate import RBoxes, ResolvedUnit, check_branch, check_unit, record_group
from predport.core.validate.resolved import count_shared
from predport.core.writer import BranchWriter, check_target, file_key, is_file_output


@dataclass
class Tally:
    """Progress of a run, summed over its worker processes: data units done, valid objects, errors."""

    units: int = 0
    objects: int = 0
    errors: int = 0


@dataclass
class Report:
    """What a run did: every problem, and counts of what was read and converted."""

    problems: Problems = field(default_factory=Problems)
    sources: list[str] = field(default_factory=list)
    units: int = 0
    objects: Counter[str] = field(default_factory=Counter)  # valid object instances per class
    object_frames: int = 0
    classifications: Counter[str] = field(default_factory=Counter)
    #: input entities (an object on one frame, a classification) per group (e.g. COCO category) and outcome
    #: ("converted" / "reported" / "filtered": left out by --min-confidence or --top-k)
    ledger: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: data units not written (--keep-going) and why: title -> problem codes
    left_out: dict[str, list[str]] = field(default_factory=dict)
    written: Path | str | None = None  # (str: a URL the output went to)
    seconds: float = 0.0
    #: object frames written whose COCO evaluation fields (area, iscrowd, bbox) a label row cannot hold
    carried: int = 0
    #: data units that came again from another source, one of the two without records (written once)
    repeated: int = 0
    #: seconds per stage of the run: "setup" (ontology, plugins, options), "parse" (until the readers yield the
    #: first unit: reading and parsing the input, and routing its records), "read" (the readers' other units),
    #: "validate", "write" (label rows built and written), "merge" (the workers' reports), "commit". With
    #: workers (or Dask tasks), read / validate / write add up every process's time (CPU-seconds), the others are
    #: the parent's; on Dask (and with workers over several sources into one file), "tasks" is the driver's wait
    #: for them.
    stages: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: with workers: where the problems of each data unit begin in :attr:`problems`, and its shard key; the
    #: workers' problems are merged in the order of these keys (:func:`_merge_workers`)
    tags: list[tuple[int, str]] = field(default_factory=list)
    #: the validated rows of shared box tables, counted together when the work ends (:meth:`count_rows`)
    rows: list[RBoxes] = field(default_factory=list)
    pending: int = 0  # (how many they are)

    def count_rows(self) -> None:
        """Add :attr:`rows` to the counts (per class and group) and empty it. (Counted table by table: 14 us a
        unit of 100 rows one unit at a time, 2 ms for all 5,000 units of the bench's 500k boxes.)"""
        self.object_frames += count_shared(self.rows, self.objects, self.ledger)
        self.rows, self.pending = [], 0

    @property
    def ok(self) -> bool:
        return self.problems.ok

    def summary(self) -> dict[str, Any]:
        return {"sources": len(self.sources), "data_units": self.units, "objects": dict(self.objects),
                "object_frames": self.object_frames, "classifications": dict(self.classifications),
                "problems": dict(self.problems.by_code), "errors": self.problems.errors,
                "per_group": self.per_group(), "left_out": self.left_out,
                "written": str(self.written) if self.written else None, "seconds": round(self.seconds, 3),
                "stages": {k: round(v, 3) for k, v in self.stages.items()}}

    def per_group(self) -> dict[str, dict[str, int]]:
        counts = Counter(self.ledger)
        # entities a reader reported instead of converting (counted once, even when several workers saw them)
        for p in self.problems:
            if p.group is not None:
                counts[(p.group, "reported")] += p.entities
        out: dict[str, dict[str, int]] = {}
        for (group, outcome), n in sorted(counts.items()):
            out.setdefault(group, {"converted": 0, "reported": 0})[outcome] = n  # (and "filtered", when any)
        return out

    def merge(self, other: Report, problems: bool = True) -> None:
        """Add a worker's report; problems found by several workers (from work they all repeat) count once.
        ``problems=False``: all but the problems (merged by :func:`_merge_workers`)."""
        if problems:
            seen = set(map(_signature, self.problems))
            self.problems.extend(p for p in other.problems if _signature(p) not in seen)
        self.units += other.units
        self.objects.update(other.objects)
        self.object_frames += other.object_frames
        self.classifications.update(other.classifications)
        self.ledger.update(other.ledger)
        self.left_out.update(other.left_out)
        self.carried += other.carried
        self.repeated += other.repeated
        for k, v in other.stages.items():
            self.stages[k] += v


def _signature(p: Problem) -> tuple[Any, ...]:
    return p.code, p.severity, p.message, p.location


#: the shard key of what comes after every data unit (problems of none: a reader's after its last unit)
_LAST = "\U0010ffff"


def _merge_workers(report: Report, base: int, children: Sequence[Report]) -> None:
    """The problems the worker processes found after the fork (``report``'s own from its ``base``-th on, and each
    child's), in the order of the data units' shard keys (:attr:`Report.tags`), each process's in its own order
    for one key, and a problem that another process found too (work they all repeat: reading a unit that either
    may convert) once. Why: which process converts a unit of a zone depends on their speed in that run
    (:attr:`_Shard.zones`); in this order the report is the same in every run, and, when the reader yields its
    units in title order, the same as one process's."""
    def keyed(r: Report, first: int) -> list[str]:
        keys = [_LAST] * (len(r.problems) - first)
        tags = [(i - first, k) for i, k in r.tags if i >= first]
        for (i, key), (j, _) in pairwise([*tags, (len(keys), _LAST)]):
            keys[i:j] = [key] * (j - i)
        return keys

    entries = [(key, 0, n, p) for n, (key, p) in enumerate(zip(keyed(report, base), report.problems.items[base:],
                                                                strict=True))]
    for proc, child in enumerate(children, 1):
        entries += [(key, proc, n, p) for n, (key, p) in enumerate(zip(keyed(child, 0), child.problems.items,
                                                                        strict=True))]
    entries.sort(key=lambda e: e[:3])
    owner = {_signature(p): 0 for p in report.problems.items[:base]}
    report.problems.truncate(base)
    for _, proc, _, p in entries:
        if owner.setdefault(_signature(p), proc) == proc:
            report.problems.append(p)


def _ontology(ontology: Ontology | str | Path) -> Ontology:
    return ontology if isinstance(ontology, Ontology) else Ontology.load(ontology)


def _registry(plugins: Sequence[str | Path] | None, registry: Any = None) -> Any:
    if registry is not None:  # (the CLI's: plugins are loaded once per run)
        return registry
    from predport import plugins as plugin_loader

    return plugin_loader.load(list(plugins or []))


#: options of the core (the Python API's ``options`` keys): maps and filters applied to every reader's output,
#: and the provenance a conversion records in its manifest
CORE_OPTIONS = ("class_map", "image_map", "min_confidence", "top_k", "model", "model_version", "note")


def filters_of(options: dict[str, Any]) -> Filters:
    """The run's confidence filters, from its options (checked: a bad value is a usage error)."""
    return Filters(_number(options.get("min_confidence"), "min_confidence", 0.0, 1.0),
                   _whole(options.get("top_k"), "top_k"))


def files_named(options: dict[str, Any], chosen: Sequence[tuple[Path, Any, ReadContext]]) -> dict[str, str]:
    """The files that the run's options name (the core's maps; each chosen reader's own, as ``reader.option``), for
    its provenance."""
    out = {k: str(v) for k in ("class_map", "image_map") if isinstance(v := options.get(k), str | Path)
           and Path(v).is_file()}
    out.update({f"{r.name}.{k}": str(v) for _, r, c in chosen for k, v in c.options.items()
                if isinstance(v, str | Path) and Path(v).is_file()})
    return out


def _number(v: Any, name: str, lo: float, hi: float) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise PredportError(f"{name} {v!r} is not a number") from None
    if not lo <= x <= hi:
        raise PredportError(f"{name} {v!r} is not in [{lo:g}, {hi:g}]")
    return x


def _whole(v: Any, name: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | str) or not str(v).isdigit() or int(v) < 1:
        raise PredportError(f"{name} {v!r} is not a whole number of at least 1")
    return int(v)


def provenance(paths: Sequence[Path], options: dict[str, Any], filters: Filters,
               option_files: dict[str, str] | None = None) -> dict[str, Any]:
    """What the manifest records of how a branch was made: the model, its version, a note, the filters, every
    source file's size and SHA-256 (a directory: each file in it but its images and videos, which are counted:
    a dataset directory may hold gigabytes of them, and they are not the predictions), the files options named
    (``--images``, ``--class-map``, ...), and the predport version."""
    import mimetypes

    from predport import __version__

    inside = {x for p in paths if not p.is_file() for x in p.rglob("*") if x.is_file()}
    media = {x for x in inside if (mimetypes.guess_type(x.name)[0] or "").split("/")[0] in ("image", "video")}
    files = sorted({p for p in paths if p.is_file()} | (inside - media))
    out: dict[str, Any] = {k: options[k] for k in ("model", "model_version", "note") if options.get(k)}
    if filters:
        out["filters"] = filters.as_dict()
    out["sources"] = [_digest(f) for f in files]
    if media:
        out["media_not_hashed"] = len(media)
    if option_files:
        out["option_files"] = {k: _digest(Path(v)) for k, v in sorted(option_files.items())}
    out["predport_version"] = __version__
    return out


class _Background:
    """A value computed beside the run, in a forked process at the lowest priority: the digests of many small
    files are Python work, which a thread would do holding the GIL, taken from the run (the 5,000 label files
    of the bench's YOLO workload: 0.33 s, most of it added to the run's time in a thread). In a thread where no
    process can be forked (hashlib releases the GIL on a large chunk, so a big file's digest still overlaps)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        import multiprocessing

        self.value: Any = None
        self.error: BaseException | str | None = None
        self.thread: Any = None
        self.proc: Any = None
        # (where processes fork; a daemonic process, such as a Dask worker, may not start one)
        if hasattr(os, "fork") and not multiprocessing.current_process().daemon:
            ctx = multiprocessing.get_context("fork")
            self.receive, send = ctx.Pipe(duplex=False)
            self.proc = ctx.Process(target=self._child, args=(make, send), name="predport-provenance", daemon=True)
            self.proc.start()
            send.close()
            return
        import threading

        def run() -> None:
            try:
                self.value = make()
            except BaseException as e:  # (raised where the value is wanted)
                self.error = e

        self.thread = threading.Thread(target=run, name="predport-provenance", daemon=True)
        self.thread.start()

    @staticmethod
    def _child(make: Callable[[], Any], send: Any) -> None:
        die_with_parent()
        with contextlib.suppress(OSError):  # (the run's own processes first: this one takes what they leave idle)
            os.nice(19)
        try:
            send.send(("ok", make()))
        except BaseException as e:
            send.send(("error", f"{type(e).__name__}: {e}"))
        finally:
            send.close()

    def __call__(self) -> Any:
        if self.proc is not None:
            try:
                kind, value = self.receive.recv()
            except EOFError:  # (joined first: the pipe can close before the process is reaped)
                self.proc.join()
                kind, value = "error", f"the process that computed it {exit_text(self.proc.exitcode)}"
            self.proc.join()
            self.receive.close()
            self.proc = None
            self.value, self.error = (value, None) if kind == "ok" else (None, value)
        elif self.thread is not None:
            self.thread.join()
        if self.error is not None:
            raise PredportError(f"cannot read a source to record its SHA-256: {self.error}") from (
                self.error if isinstance(self.error, BaseException) else None)
        return self.value

    def stop(self) -> None:
        """End the process, if the value is no longer wanted (a failed run)."""
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.terminate()
            self.proc.join()
            self.receive.close()
            self.proc = None


def _digest(path: Path) -> dict[str, Any]:
    """A file's path (as given), size and SHA-256."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):  # (the GIL is released while a large chunk is hashed)
            h.update(chunk)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": h.hexdigest()}


def expand(sources: Sequence[str | Path]) -> list[Path]:
    """Files and directories as given; glob patterns (``preds/**/*.json``) expanded, sorted."""
    out: list[Path] = []
    for s in sources:
        path = Path(s)
        if path.exists():
            out.append(path)
        elif glob.has_magic(str(s)):
            matches = sorted(glob.glob(str(s), recursive=True))
            if not matches:
                raise PredportError(f"{s}: no file matches")
            out.extend(Path(m) for m in matches)
        else:
            raise PredportError(f"{path}: no such file or directory")
    return out


def _contexts(paths: list[Path], fmt: str | None, ctx: ReadContext, registry: Any, options: dict[str, Any],
              reader_args: Sequence[Sequence[str]]) -> list[tuple[Path, Any, ReadContext]]:
    """Every source with its reader and that reader's context (its own options, the shared problem sink),
    before anything is read, so that a bad option or an unrecognised file stops the run at once."""
    unknown = sorted(set(options) - set(CORE_OPTIONS) - registry.dests())
    if unknown:
        raise PredportError(f"unknown option(s) {', '.join(map(repr, unknown))}: not predport's "
                            f"({', '.join(CORE_OPTIONS)}) nor any reader's")
    if fmt and reader_args:
        strings = {o for a in registry.option_actions(registry.reader(fmt).name) for o in a.option_strings}
        foreign = sorted({group[0] for group in reader_args if group and group[0] not in strings})
        if foreign:
            raise PredportError(f"reader {fmt!r} has no option {', '.join(foreign)}")
    contexts: dict[str, ReadContext] = {}
    out = []
    for path in paths:
        reader = registry.reader(fmt) if fmt else registry.detect(path)
        if reader.name not in contexts:
            contexts[reader.name] = replace(ctx, options=registry.options(reader.name, options, reader_args))
            ctx.problems.extend(cannot_carry(reader, ctx.ontology))
        out.append((path, reader, contexts[reader.name]))
    return out


def cannot_carry(reader: Any, ontology: Ontology) -> list[Problem]:
    """Warnings: the ontology asks for what the reader, by its declared capabilities, cannot carry."""
    caps = getattr(reader, "capabilities", None)
    if caps is None:
        return []
    where = Location(ontology.origin)
    out = []
    if not caps.attributes:
        required = [(o.name, a.name) for o in ontology.objects.values() for a in o.attributes.values()
                    if a.required and a.parent is None]
        if required:
            named = ", ".join(f"{a!r} of {o!r}" for o, a in required[:5]) + (" ..." if len(required) > 5 else "")
            out.append(Problem("reader.cannot_carry", "warning", f"the ontology requires attribute(s) {named}, which "
                               f"reader {reader.name!r} does not carry: its objects will have no answer to them",
                               where))
    if not caps.classifications:
        needed = [c.name for c in ontology.classifications.values() if c.root is not None and c.root.required]
        if needed:
            out.append(Problem("reader.cannot_carry", "warning", f"the ontology requires classification(s) "
                               f"{', '.join(map(repr, needed[:5]))}, which reader {reader.name!r} does not carry",
                               where))
    if ontology.objects and not any(o.shape in caps.shapes for o in ontology.objects.values()):
        out.append(Problem("reader.cannot_carry", "warning", f"no object class of the ontology has a shape reader "
                           f"{reader.name!r} produces ({', '.join(sorted(caps.shapes))})", where))
    return out


def _read(path: Path, reader: Any, ctx: ReadContext) -> Iterator[tuple[DataUnit, ReadContext]]:
    # (a folder that files_under or listing cannot list while this reader reads is reported, in whatever reader)
    told = UNLISTED.set(ctx.unlisted)
    try:
        for unit in reader.read(path, ctx):
            yield unit, ctx
    except PredportError:
        raise
    except Exception as e:  # a reader's bug: say whose, and where, instead of a bare traceback
        raise PredportError(f"reader {reader.name!r} failed on {path}: {describe(e)}") from e
    finally:
        with contextlib.suppress(ValueError):  # (a generator closed in another context: that one never had it)
            UNLISTED.reset(told)


def _mapped(stream: Iterator[tuple[DataUnit, ReadContext]], ont: Ontology, classes: ClassMap,
            images: ImageMap | None, report: Report, mine: Callable[[str], bool]) -> Iterator[DataUnit]:
    """The core's maps applied to every unit the readers yield: --class-map to the class names of readers that
    did not resolve classes themselves, --image-map to titles (images sent to frames of a video are held
    until the input ends, then merged). A unit the image map lacks is reported; its records are counted as
    reported by the process that owns it (every worker process reads every unit)."""
    if not classes and images is None:
        for unit, _ in stream:
            yield unit
        return
    videos: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    empty: list[str] = []
    for unit, rctx in stream:
        if classes and not rctx.resolved_classes:
            unit = boxmod.plain(unit)  # (the class map rewrites the classes of plain tables)
            map_classes(unit, classes, ont)
        if images is None or not isinstance(unit, dict):
            yield unit
            continue
        target = images.target(unit)  # type: ignore[arg-type]
        title = str(unit.get("title"))
        if target is None:
            if not mine(title):
                continue
            if _has_records(unit):  # type: ignore[arg-type]
                report.problems.append(Problem("unit.unmapped", "error", f"data unit {title!r} is not in --image-map:"
                                               " its records are not converted", Location.from_source(
                                                   unit.get("source"))))
                _tally(unit, None, report)
            else:
                empty.append(title)
        elif target[1] is None:
            yield {**unit, "title": target[0]}  # type: ignore[typeddict-item]
        else:
            videos.setdefault(target[0], []).append((target[1], boxmod.plain(unit)))  # (merged: of plain tables)
    for title, frames in videos.items():
        video, left_out = merge_video(title, frames)
        if mine(title):
            for bad, problem in left_out:
                report.problems.append(problem)
                _tally(bad, None, report)
        yield video  # type: ignore[misc]
    if empty:  # (the same problem from every worker: the merged report has it once)
        report.problems.append(Problem(
            "unit.unmapped", "info", f"{len(empty)} data unit(s) without predictions are not in --image-map and "
            f"were left out: {', '.join(map(repr, empty[:5]))}" + (" ..." if len(empty) > 5 else ""),
            Location(images.origin if images is not None else "")))


class Repeats:
    """Several sources may yield the same data unit when all but one of them have nothing in it (shards of COCO
    results sharing one --images file list every image): the one with records is converted, units without any
    are held until the input ends (:attr:`held`: converted then, unless records came), and the repeats are
    counted (``report.repeated``). Two yields that disagree on the frame (kind, sizes) are both converted, and
    validation reports the later one as a duplicate."""

    def __init__(self, report: Report, frame: Callable[[Any], tuple[Any, ...]] | None = None,
                 records: Callable[[Any], bool] | None = None) -> None:
        self.report = report
        # (a data unit's frame and whether it has records; the Dask driver gives its manifest entries' instead)
        self.frame = frame or _frame
        self.records = records or _has_records
        self.held: dict[str, Any] = {}  # units without records, by title
        self.frames: dict[str, tuple[Any, ...]] = {}  # the frame of every unit converted, by title

    def admit(self, unit: Any) -> list[Any]:
        """The units to convert now, in order (none while ``unit`` is held or is a repeat without records)."""
        title = unit.get("title") if isinstance(unit, dict) else None
        if type(title) is not str:
            return [unit]
        frame, empty = self.frame(unit), not self.records(unit)
        held = self.held.get(title)
        seen = self.frames.get(title) or (self.frame(held) if held is not None else None)
        if seen is None:  # the first
            if empty:
                self.held[title] = unit
                return []
            self.frames[title] = frame
            return [unit]
        if seen == frame and (empty or held is not None):  # a repeat without records, or the records of one held
            self.report.repeated += 1
            if empty:
                return []
            del self.held[title]
            self.frames[title] = frame
            return [unit]
        self.frames.setdefault(title, frame)
        return [self.held.pop(title), unit] if held is not None else [unit]

    def repeat(self, title: str, frame: tuple[Any, ...]) -> bool:
        """What :meth:`admit` does with a unit without records whose title was converted with the same frame, from
        its title and frame alone: it is counted as a repeat (True). (A driver of tasks has tens of thousands of
        such units: shards of results that share one --images file each yield every image.)"""
        if self.frames.get(title) != frame:
            return False
        self.report.repeated += 1
        return True


def dropped_note(n: int, out: Path | str | None) -> Problem:
    return Problem("output.dropped", "info", f"{n} object(s) carry COCO ground truth's area / iscrowd / bbox, which "
                   "label rows cannot hold: not written (predport evaluate reads them from the source)",
                   Location(str(out)))


def repeated_note(n: int) -> Problem:
    return Problem("unit.repeated", "info", f"{n} data unit(s) came again from another source, one of the two "
                   "without records (e.g. shards of results sharing one --images file): each is written once",
                   Location(""))


def _frame(unit: dict[str, Any]) -> tuple[Any, ...]:
    """What two yields of one data unit must agree on: its kind and sizes."""
    images = unit.get("images")
    return (unit.get("kind"), unit.get("width"), unit.get("height"), unit.get("frame_count"),
            tuple((im.get("title"), im.get("width"), im.get("height")) for im in images
                  if isinstance(im, dict)) if isinstance(images, list) else None)


def _has_records(unit: dict[str, Any]) -> bool:
    table = unit.get("boxes")
    return bool(unit.get("objects") or unit.get("classifications")
                or (type(table) is dict and table.get("class")) or (type(table) is boxmod.BoxSlice and len(table)))


def read(sources: Sequence[str | Path], ontology: Ontology | str | Path, fmt: str | None = None,
         options: dict[str, Any] | None = None, plugins: Sequence[str | Path] | None = None,
         problems: Problems | None = None, *, registry: Any = None,
         reader_args: Sequence[Sequence[str]] = ()) -> Iterator[DataUnit]:
    """Yield the data units of every source, read by ``fmt`` or by the detected reader, with the core's maps
    applied; reader problems go to ``problems``. ``reader_args``: reader options as command-line tokens."""
    ont = _ontology(ontology)
    report = Report()
    if problems is not None:
        report.problems = problems
    opts = dict(options or {})
    ctx = _context(ont, report.problems, opts)
    chosen = _contexts(expand(sources), fmt, ctx, _registry(plugins, registry), opts, reader_args)
    return map(boxmod.plain, _mapped(chain.from_iterable(_read(*c) for c in chosen), ont, ctx.classes, ctx.images,
                                     report, lambda title: True))


def _context(ont: Ontology, problems: Problems, options: dict[str, Any]) -> ReadContext:
    return ReadContext(ont, problems, classes=ClassMap.load(options.get("class_map")),
                       images=ImageMap.load(options.get("image_map")))


#: with a plan, how much of a worker's share on each side of a boundary between two workers' ranges either of them
#: may convert (:attr:`_Shard.zones`): 0.2 evens out one process running up to 1.5x slower than the other
ZONE = 0.2


@dataclass
class _Shard:
    """Which data units this process converts: every one, or with workers those whose shard key is its own
    (units with the same title, or whose file names could collide, share a shard)."""

    index: int = 0
    count: int = 1  # stays 1 until the fork, so that nothing is skipped before it
    pool: _Workers | None = None  # set before the fork: workers post their progress there
    shared: Shared | None = None  # the documents parsed before the fork (with workers)
    #: with a reader's plan (:meth:`plan`): the shard keys where one worker's range of them ends and the next one's
    #: begins; else a shard is the keys of one residue of their CRC-32
    bounds: list[str] | None = None
    #: with a plan, per boundary ``b`` (1 .. workers - 1) between worker ``b - 1``'s range and worker ``b``'s, the
    #: shard keys around it (``zones[b - 1]``, in key order) that either of the two converts: each takes them once
    #: its own range is done, worker ``b - 1`` from the front and worker ``b`` from the back, until they meet
    #: (:meth:`claim`). Why: a static split waits for the slower process, and on this VM one of two runs up to
    #: 1.5x slower than the other in some runs (the bench's 2-worker run waited 0.00-1.02 s for the other worker,
    #: in its best rounds).
    zones: list[list[str]] = field(default_factory=list)
    zone_of: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (boundary, index in its zone)
    #: shared by the processes (made at the fork): per zone, the index its front taker takes next and the one
    #: after the last its back taker may take
    claims: Any = None
    workers: int = 1  # (the count the run will fork, known before it)
    planned: bool = False  # (a plan is taken once, before the fork: a later source's is not)

    def mine(self, title: str) -> bool:
        """Whether this process may convert the unit (with zones: also when the other may)."""
        return True if self.count == 1 else self.owns(file_key(title))

    def owns(self, key: str) -> bool:
        """:meth:`mine`, by the unit's shard key."""
        if self.count == 1:
            return True
        if self.bounds is not None:
            zone = self.zone_of.get(key)
            if zone is not None:
                return zone[0] in (self.index, self.index + 1)
            return bisect_right(self.bounds, key) == self.index
        return zlib.crc32(key.encode()) % self.count == self.index

    def claim(self, boundary: int, k: int, front: bool) -> bool:
        """Take key ``k`` of a zone: from the front (the worker below it, in increasing ``k``) or the back (the one
        above, in decreasing ``k``); False once the other has taken it (and with it the rest of the way)."""
        at = 2 * (boundary - 1)
        with held(self.claims.get_lock(), self.others_alive):
            first, end = self.claims[at], self.claims[at + 1]
            if not first <= k < end or k != (first if front else end - 1):
                return False
            self.claims[at if front else at + 1] = k + 1 if front else k
            return True

    def others_alive(self) -> bool:
        """Whether the other worker processes still run (asked in the parent; a child waits, and ends with it)."""
        return self.index != 0 or self.pool is None or all(proc.is_alive() for _, proc, _ in self.pool.procs)

    def plan(self, titles: Sequence[str], weights: Sequence[int] | None, cheap: bool = False) -> None:
        """Shards as contiguous ranges of shard keys, of about equal weight, from the units a reader announces
        before it yields any (:meth:`ReadContext.expect`), and, when its units are ``cheap`` to build twice, a
        zone around each boundary that either neighbour converts (:attr:`zones`). Why ranges: each worker's rows
        then follow one another in title order, when the reader yields in title order, and the one-file output is
        mostly its part files one after the other (one part renamed, the rest appended in a few copies) instead of
        every row copied into place: 0.06 s of the 0.13 s that putting the bench's 200 MB of rows in order took
        with 2 workers. Why only cheap units in zones: both neighbours build them, and a reader that traces masks
        while it builds its units did 1.6x the work with 2 workers (the bench's 40k masks: 30.9 CPU-s of reading
        against 19.3 s in one process)."""
        if self.planned or self.count > 1 or self.workers < 2:
            return
        self.planned = True
        given = [max(1, int(w)) for w in weights] if weights is not None and len(weights) == len(titles) else None
        weight: dict[str, int] = {}
        for title, w in zip(titles, given or [1] * len(titles), strict=True):
            key = file_key(title)
            weight[key] = weight.get(key, 0) + w
        total, n = sum(weight.values()), self.workers
        bounds: list[str] = []
        zones: list[list[str]] = [[] for _ in range(n - 1)]
        running = 0
        for key in sorted(weight):
            # where the key's middle falls, in shares of the total (a key is never split)
            at = (2 * running + weight[key]) * n / (2 * total)
            # a range ends where the next key's middle passes its share
            if len(bounds) < n - 1 and at >= len(bounds) + 1:
                bounds.append(key)
            b = round(at)
            if cheap and 1 <= b < n and abs(at - b) < ZONE:
                self.zone_of[key] = (b, len(zones[b - 1]))
                zones[b - 1].append(key)
            running += weight[key]
        self.bounds, self.zones = bounds, zones


@dataclass
class _Baseline:
    """A report as it was at the fork: a worker sends only what it added after it (the parent has the rest)."""

    problems: int
    ledger: Counter[tuple[str, str]]
    errors: int

    @classmethod
    def of(cls, report: Report) -> _Baseline:
        return cls(len(report.problems), Counter(report.ledger), report.problems.errors)

    def since(self, report: Report) -> Report:
        out = Report(units=report.units, objects=report.objects, object_frames=report.object_frames,
                     classifications=report.classifications, left_out=report.left_out, carried=report.carried,
                     repeated=report.repeated)
        out.problems.extend(report.problems.items[self.problems:])
        out.tags = [(i - self.problems, k) for i, k in report.tags if i >= self.problems]
        out.ledger = report.ledger - self.ledger
        out.stages = defaultdict(float, {k: v for k, v in report.stages.items() if k in ("read", "validate", "write")})
        return out


class _Workers:
    """The run's other worker processes (``multiprocessing``, fork context), started once the input is parsed
    so that they share it copy-on-write. Each converts its shard (``work``) into the shared staging directory
    and sends back its report and manifest entries, or its exception, over a pipe; progress goes through a
    shared array. Any failure stops them all; a worker that dies says how."""

    def __init__(self, count: int, shard: _Shard, report: Report, work: Callable[[], list[dict[str, Any]]]) -> None:
        import multiprocessing  # (only with workers: it costs 30 ms to import)

        ctx = multiprocessing.get_context("fork")
        self.board = ctx.Array("q", 3 * count, lock=False)  # per worker: units, objects, errors since the fork
        if shard.zone_of:  # (a zone starts whole: nothing taken from its front, its back at its end)
            shard.claims = ctx.Array("q", list(chain.from_iterable((0, len(z)) for z in shard.zones)))
        self.baseline = _Baseline.of(report)
        self.procs: list[tuple[int, Any, Any]] = []  # (index, process, receiving end)
        shard.count, shard.pool = count, self
        sys.stdout.flush()
        sys.stderr.flush()
        for k in range(1, count):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=self._child, args=(k, send, shard, report, work), name=f"predport-worker-{k}")
            proc.start()
            send.close()  # (the child's copy is the only one left: its end reads as EOF when the child is gone)
            self.procs.append((k, proc, receive))
        faults.point("forked")

    def _child(self, k: int, send: Any, shard: _Shard, report: Report,
               work: Callable[[], list[dict[str, Any]]]) -> None:
        die_with_parent()
        shard.index = k
        if shard.shared is not None:
            shard.shared.open = False  # (and its documents are held until this process exits)
        try:
            units = work()
            send.send(("ok", self.baseline.since(report), units))
        except BaseException as e:  # the parent says what went wrong (with the last frames, if it is a bug)
            send.send(("error", str(e) if isinstance(e, PredportError) else describe(e), None))
        finally:
            send.close()

    def post(self, k: int, report: Report) -> None:
        """Worker ``k``'s progress, on the board."""
        self.board[3 * k: 3 * k + 3] = [report.units, sum(report.objects.values()),
                                         report.problems.errors - self.baseline.errors]

    def tally(self, own: Tally) -> Tally:
        b = self.board
        n = len(b) // 3
        return Tally(own.units + sum(b[3 * k] for k in range(1, n)),
                     own.objects + sum(b[3 * k + 1] for k in range(1, n)),
                     own.errors + sum(b[3 * k + 2] for k in range(1, n)))

    def collect(self, waiting: Callable[[], None] | None) -> list[tuple[Report, list[dict[str, Any]]]]:
        """Every worker's report and manifest entries; raises if one failed (the others are stopped)."""
        import multiprocessing.connection

        pending: dict[Any, tuple[int, Any]] = {receive: (k, proc) for k, proc, receive in self.procs}
        results: dict[int, tuple[Report, list[dict[str, Any]]]] = {}
        while pending:
            ready: list[Any] = multiprocessing.connection.wait(list(pending), timeout=0.2)
            for receive in ready:
                k, proc = pending.pop(receive)
                try:
                    kind, payload, units = receive.recv()
                except EOFError:  # gone without a word: killed, or crashed in C
                    proc.join()
                    raise PredportError(f"worker {k} {exit_text(proc.exitcode)}; nothing was written") from None
                proc.join()
                if kind == "error":
                    raise PredportError(f"worker {k} failed: {payload}\nnothing was written")
                results[k] = (payload, units)
            if waiting is not None:
                waiting()
        return [results[k] for k in sorted(results)]  # (in the workers' order, whichever ended first)

    def stop(self) -> None:
        """Stop and reap the workers still running (the run is over)."""
        for _, proc, receive in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
            receive.close()


def _run(sources: Sequence[str | Path], ontology: Ontology | str | Path, branch: str | None, out: Path | None,
         fmt: str | None, options: dict[str, Any] | None, plugins: Sequence[str | Path] | None,
         workers: int = 1, keep_going: bool = False, progress: Callable[[Tally], None] | None = None,
         registry: Any = None, reader_args: Sequence[Sequence[str]] = (),
         then: Callable[[Path], None] | None = None, keep: list[ResolvedUnit] | None = None,
         given: Iterable[DataUnit] | None = None, when: datetime | None = None,
         hold: list[Any] | None = None, memo: dict[Any, Any] | None = None, with_provenance: bool = True,
         seen: list[dict[str, Any]] | None = None) -> Report:
    """The run behind :func:`convert`, :func:`validate` and :func:`resolve`. ``hold``: units without records that
    no other unit of the input replaced (:class:`Repeats`) are appended to it instead of converted (a task of
    :mod:`predport.core.cluster`, whose driver converts those another task has no records for). ``memo``: the
    readers' :attr:`ReadContext.memo` (a task's: shared with the other tasks of its process).
    ``with_provenance=False``: the manifest records none (a task whose driver records the run's). ``seen``: every
    unit converted (or tried: it may have errors), as :func:`light` says it, in order (for a task's driver)."""
    t0 = time.perf_counter()
    ont = _ontology(ontology)
    paths = expand(sources) if given is None else []
    report = Report(sources=[str(s) for s in sources])
    if branch is not None:
        report.problems.extend(check_branch(branch))
    if out is not None:
        check_target(out)
    opts = dict(options or {})
    filters = filters_of(opts)
    shard = _Shard(workers=workers)
    ctx = _context(ont, report.problems, opts)
    ctx.shard = shard.mine
    if memo is not None:
        ctx.memo = memo
    if workers > 1:
        ctx.shared = shard.shared = Shared()
        ctx.workers = workers
        if len(paths) == 1:  # (with several sources, one reader's plan would not cover the others' units)
            ctx.plan = shard.plan
    if given is None:
        chosen = _contexts(paths, fmt, ctx, _registry(plugins, registry), opts, reader_args)
        read: Iterator[tuple[DataUnit, ReadContext]] = chain.from_iterable(_read(*c) for c in chosen)
    else:
        chosen, read = [], ((unit, ctx) for unit in given)
    files = files_named(opts, chosen)
    writer = BranchWriter(out, branch or "", ont, report.sources, when=when) if out is not None else None
    if writer is not None:
        report.problems.extend(stale(writer))
    units = _mapped(read, ont, ctx.classes, ctx.images, report, shard.mine)
    titles: dict[str, Any] = {}
    repeats = Repeats(report)

    def work() -> list[dict[str, Any]]:
        """Convert this process's share of the units (after the first, which every process has): its own range,
        then what it can take of the zones beside it (:attr:`_Shard.zones`)."""
        stages, clock = report.stages, time.perf_counter
        stream = _chain(first, units)
        zoned: dict[int, dict[int, list[Any]]] = {}  # boundary -> index in its zone -> its units, held till then
        tags = report.tags if shard.count > 1 else None  # (a unit's problems begin here: read, then converted)
        while True:
            t, n = clock(), len(report.problems)
            unit = next(stream, _END)
            stages["read"] += clock() - t
            if unit is _END:
                if tags is not None:
                    _tag(tags, n, _LAST)
                break
            if tags is not None:
                key = file_key(_title(unit))
                _tag(tags, n, key)
                if not shard.owns(key):
                    continue
                zone = shard.zone_of.get(key)
                if zone is not None:
                    zoned.setdefault(zone[0], {}).setdefault(zone[1], []).append(unit)
                    continue
            convert(unit)
        for boundary, waiting in sorted(zoned.items(), reverse=True):  # (the zone above first: from its front)
            front = boundary == shard.index + 1
            size = len(shard.zones[boundary - 1])
            for k in range(size) if front else range(size - 1, -1, -1):
                if not shard.claim(boundary, k, front):
                    break
                for unit in waiting.pop(k, ()):
                    convert(unit, tags)
            waiting.clear()  # (the other's: it converts them)
        for late in repeats.held.values():
            if hold is not None:
                hold.append(late)
                continue
            if tags is not None:
                _tag(tags, len(report.problems), file_key(_title(late)))
            if seen is not None:
                seen.append(light(late))
            _one(late, ont, report, titles, writer, keep_going, keep)
            tick()
        if tags is not None:
            _tag(tags, len(report.problems), _LAST)
        report.count_rows()
        if writer is not None:
            writer.flush()  # (a worker process ends without flushing its files)
        return writer.units if writer is not None else []

    def convert(unit: Any, tags: list[tuple[int, str]] | None = None) -> None:
        if tags is not None:
            _tag(tags, len(report.problems), file_key(_title(unit)))
        if filters:  # (in the process that converts the unit: each one counts what it leaves out once)
            unit = filters.apply_any(unit, report.ledger, ont)
        for admitted in repeats.admit(unit):
            if seen is not None:
                seen.append(light(admitted))
            _one(admitted, ont, report, titles, writer, keep_going, keep)
            tick()

    def tick() -> None:
        if progress is not None:
            if shard.pool is None:
                progress(own())
            elif shard.index == 0:
                progress(shard.pool.tally(own()))
            else:
                shard.pool.post(shard.index, report)

    def own() -> Tally:
        return Tally(report.units, sum(report.objects.values()) + report.pending, report.problems.errors)

    pool: _Workers | None = None
    background: _Background | None = None
    collecting = gc.isenabled()
    try:
        # The hot path makes no reference cycles (units, resolved records and rows are trees, freed by
        # reference counting), so the cyclic collector only costs time here: every few hundred allocations
        # it would walk the live objects, the parsed input included. Paused for the run, collected after.
        gc.disable()
        if writer is not None and with_provenance:
            # the sources' SHA-256, beside the run (started before the parse: it has the core the parse leaves idle)
            background = _Background(lambda: provenance(paths, opts, filters, files))
            writer.provenance = background
        t = time.perf_counter()
        report.stages["setup"] += t - t0
        first = next(units, None)
        report.stages["parse"] += time.perf_counter() - t
        gc.freeze()  # and after a fork, untouched pages of the parsed input stay shared
        if workers > 1 and first is not None and hasattr(os, "fork"):
            for c in [ctx, *(c for _, _, c in chosen)] if given is None else [ctx]:
                c.workers = 1  # (from here each process has a core: a later source is not parsed in parts as well)
            pool = _Workers(workers, shard, report, work)
        if shard.shared is not None:
            shard.shared.open = False
        work()
        if pool is not None:
            mine = own()  # (before the merges)
            t = time.perf_counter()
            children = []
            for child, entries in pool.collect((lambda: progress(pool.tally(mine))) if progress else None):
                report.merge(child, problems=False)
                children.append(child)
                if writer is not None:
                    writer.units.extend(entries)
            _merge_workers(report, pool.baseline.problems, children)
            report.stages["merge"] += time.perf_counter() - t
        if report.repeated:
            report.problems.append(repeated_note(report.repeated))
        t = time.perf_counter()
        if writer is not None and (report.ok or keep_going):
            if report.carried:
                report.problems.append(dropped_note(report.carried, out))
            if then is None:
                report.written = writer.commit()
            else:  # the rows are used where they are (an upload), and never put in place of `out`
                then(writer.seal())
        report.stages["commit"] += time.perf_counter() - t
    finally:
        if pool is not None:
            pool.stop()
        if background is not None:
            background.stop()
        if shard.shared is not None:  # (freed now, when no worker shares their pages any more)
            shard.shared.documents.clear()
        gc.unfreeze()
        if collecting:
            gc.enable()
        if writer is not None:
            writer.abort()
    report.seconds = time.perf_counter() - t0
    return report


def _tag(tags: list[tuple[int, str]], n: int, key: str) -> None:
    """Problems from the ``n``-th on are of the unit with shard key ``key`` (a tag no problem came after is
    replaced: tags grow with the units that have problems, not with all units)."""
    if tags and tags[-1][0] == n:
        tags[-1] = (n, key)
    else:
        tags.append((n, key))


def records_file(unit: Any) -> str | None:
    """The file a data unit's records come from, when it is not the file the unit itself comes from (COCO
    results: the unit is an image of the --images file, its records a results file's); else None."""
    if not isinstance(unit, dict):
        return None
    src = unit.get("source")
    own = src.get("file") if isinstance(src, dict) else None
    boxes = unit.get("boxes")
    table_src = boxes.source() if type(boxes) is boxmod.BoxSlice else (
        boxes.get("source") if isinstance(boxes, dict) else None)
    found = table_src.get("file") if isinstance(table_src, dict) else None
    objects = unit.get("objects")
    for rec in objects if found is None and isinstance(objects, list) else ():
        rec_src = rec.get("source") if isinstance(rec, dict) else None
        if isinstance(rec_src, dict) and isinstance(rec_src.get("file"), str):
            found = rec_src["file"]
            break
    return found if isinstance(found, str) and found != own else None


def first_at(where: Location, records: str | None) -> str:
    """Where the first unit of a title comes from, as a duplicate's message says it."""
    return f"{where}" + (f", with records from {records}" if records else "")


def duplicate(title: str, first: str, records: str | None, where: Location) -> Problem:
    """A data unit whose title was taken: said with where the first came from (:func:`first_at`) and, when its
    records come from another file than the unit (shards of COCO results), that file."""
    again = f"; again with records from {records}" if records else ""
    return Problem("unit.duplicate", "error", f"data unit {title!r} appears twice (first at {first}){again}", where)


def light(unit: Any) -> dict[str, Any]:
    """What the rule for titles that several sources yield needs of a unit (:class:`Repeats`, on a driver's side):
    its title, frame and whether it has records, as a manifest entry says them; and where it comes from (for a
    duplicate, said as validation says it)."""
    if not isinstance(unit, dict):
        return {"title": None}
    return {"title": unit.get("title"), "kind": unit.get("kind"), "width": unit.get("width"),
            "height": unit.get("height"), "objects": int(_has_records(unit)), "classifications": 0,
            "where": Location.from_source(unit.get("source")), "from": records_file(unit)}


def stale(writer: BranchWriter) -> list[Problem]:
    """What creating the writer's staging directory swept away, said."""
    return [Problem("output.stale", "info", (
        f"restored {writer.out.name} from {r.path.name}, left by an interrupted run (process {r.pid})"
        if r.restored else f"removed {r.path.name}, left by a run whose process ({r.pid}) has ended"),
        Location(str(r.path))) for r in writer.removed]


def _title(unit: Any) -> str:
    title = unit.get("title") if isinstance(unit, dict) else None
    return title if isinstance(title, str) else ""


def _chain(first: DataUnit | None, rest: Iterator[DataUnit]) -> Iterator[DataUnit]:
    if first is not None:
        yield first
        yield from rest


_END: Any = object()


def _one(unit: DataUnit, ont: Ontology, report: Report, titles: dict[str, Any], writer: BranchWriter | None,
         keep_going: bool, keep: list[ResolvedUnit] | None = None) -> None:
    t = time.perf_counter()
    ru, found = _validate(unit, ont, titles, report)
    t1 = time.perf_counter()
    report.stages["validate"] += t1 - t
    report.problems.extend(found)
    codes = sorted({p.code for p in found if p.severity == "error"})
    if ru is None or codes:  # this unit has errors: not written
        if keep_going and isinstance(unit, dict):
            report.left_out[str(unit.get("title"))] = codes
        return
    if keep is not None:
        keep.append(ru)
    if writer is not None and (report.problems.ok or keep_going):
        writer.write(ru)
        report.carried += _carried(ru)
        report.stages["write"] += time.perf_counter() - t1


def _carried(ru: ResolvedUnit) -> int:
    """How many of the unit's object frames carry COCO evaluation fields, which a label row cannot hold."""
    n = sum(1 for o in ru.objects for f in o.frames if "coco" in f)
    if ru.boxes is not None and not {"area", "iscrowd"}.isdisjoint(ru.boxes.columns()):
        n += len(ru.boxes)
    return n


def _validate(unit: DataUnit, ont: Ontology, titles: dict[str, Any],
              report: Report) -> tuple[ResolvedUnit | None, list[Problem]]:
    report.units += 1
    title = unit.get("title") if isinstance(unit, dict) else None
    if isinstance(title, str):
        where = Location.from_source(unit.get("source"))
        if title in titles:  # (not written: its records are reported, each in its group)
            _tally(unit, None, report)
            return None, [duplicate(title, first_at(*titles[title]), records_file(unit), where)]
        titles[title] = (where, records_file(unit))  # (said only for a duplicate)
    ru, found = check_unit(unit, ont)
    _tally(unit, ru, report)
    if ru is not None:  # count what is valid (what a write would contain)
        rejected = ru.rejected
        for o in ru.objects:
            if not rejected or not any(key in rejected for key in o.records):
                report.objects[o.ontology.name] += 1
                report.object_frames += len(o.frames)
        if ru.boxes is not None and ru.boxes.sliced is not None:
            if report.rows and report.rows[-1].sliced.shared is not ru.boxes.sliced.shared:  # type: ignore[union-attr]
                report.count_rows()  # (another source's table: the last one's rows counted, and it let go)
            report.rows.append(ru.boxes)  # (rows of a shared table: counted with the others of their table)
            report.pending += len(ru.boxes)
        elif ru.boxes is not None:
            report.object_frames += ru.boxes.count_objects(report.objects)
        for c in ru.classifications:
            report.classifications[c.ontology.name] += 1
    return ru, found


def _tally(unit: Any, ru: ResolvedUnit | None, report: Report) -> None:
    """Count the unit's grouped input records as converted or reported."""
    ledger = report.ledger
    if ru is not None:
        rejected = ru.rejected
        objects = unit.get("objects") if isinstance(unit, dict) else None
        for kind, index, group in ru.grouped:
            n = _frames(objects[index]) if kind == "objects" and isinstance(objects, list) else 1
            ledger[(group, "reported" if (kind, index) in rejected else "converted")] += n
        if ru.boxes is not None:  # the rows that passed the bulk checks
            if ru.boxes.sliced is None:  # (else counted with the others of its table: Report.count_rows)
                ru.boxes.count_groups(ledger)
        elif ("boxes", -1) in rejected:
            _table_reported(unit, ledger)
        return
    for kind in ("objects", "classifications"):  # not resolvable at all: every grouped record is reported
        records = unit.get(kind) if isinstance(unit, dict) else None
        for rec in records if isinstance(records, list) else []:
            name = record_group(rec)
            if name is not None:
                ledger[(name, "reported")] += _frames(rec) if kind == "objects" else 1
    _table_reported(unit, ledger)


def _frames(rec: Any) -> int:
    """An object record stands for one input entity per frame (a track of a video is one box per frame)."""
    frames = rec.get("frames") if isinstance(rec, dict) else None
    return len(frames) if isinstance(frames, list) and frames else 1


def _table_reported(unit: Any, ledger: Counter[tuple[str, str]]) -> None:
    """Every row of a box table that could not be taken at all counts as reported, in its group."""
    table = boxmod.plain(unit).get("boxes") if isinstance(unit, dict) else None
    if not isinstance(table, dict):
        return
    classes, cls = table.get("classes"), table.get("class")
    if not (isinstance(classes, list) and isinstance(cls, list)):
        return
    for k in range(len(cls)):
        src = boxmod.row_source(table, k)  # type: ignore[arg-type]
        if "group" in src:
            ledger[(src["group"], "reported")] += 1


def validate(sources: Sequence[str | Path], ontology: Ontology | str | Path, fmt: str | None = None,
             branch: str | None = None, options: dict[str, Any] | None = None,
             plugins: Sequence[str | Path] | None = None, workers: int = 1,
             progress: Callable[[Tally], None] | None = None, *, registry: Any = None,
             reader_args: Sequence[Sequence[str]] = ()) -> Report:
    """Read and validate every source; nothing is written. ``report.ok`` is False on any error.

    ``options``: the core's (``class_map``, ``image_map``: file paths) and the readers' (by destination
    name, e.g. ``images`` for the COCO reader's ``--images``); each reader takes the ones it declares.
    ``registry``: plugins already loaded (:func:`predport.plugins.load`), instead of loading ``plugins``.
    ``reader_args``: reader options as command-line tokens (``[option, *values]`` each).
    With ``workers`` and several sources, each worker process takes whole sources (as :func:`convert` does)."""
    if workers > 1 and _by_source(sources, None):
        from predport.core import cluster

        return cluster.validate(sources, _ontology(ontology), branch, cluster.Processes(workers), fmt,  # type: ignore[no-any-return]
                                options, plugins, registry, progress, reader_args)
    return _run(sources, ontology, branch, None, fmt, options, plugins, workers, False, progress, registry,
                reader_args)


def resolve(sources: Sequence[str | Path], ontology: Ontology | str | Path, fmt: str | None = None,
            options: dict[str, Any] | None = None, plugins: Sequence[str | Path] | None = None, *,
            registry: Any = None, reader_args: Sequence[Sequence[str]] = (),
            units: Iterable[DataUnit] | None = None) -> tuple[list[ResolvedUnit], Report]:
    """Read and validate every source exactly as :func:`validate` does (or take ``units``, data units already
    in memory), and keep what validation made of each valid one (for evaluation). The resolved units are
    complete only when ``report.ok``."""
    keep: list[ResolvedUnit] = []
    report = _run(sources, ontology, None, None, fmt, options, plugins, 1, False, None, registry, reader_args,
                  keep=keep, given=units)
    return keep, report


def _by_source(sources: Sequence[str | Path], out: Path | None) -> bool:
    """Whether workers take whole sources (:class:`predport.core.cluster.Processes`) rather than share each one's
    parse: with several sources into one file, or validated, where processes fork. (Into a directory, the run's
    own workers share the sources: a task's rows are one part file.)"""
    import multiprocessing

    return ((out is None or is_file_output(out)) and hasattr(os, "fork")
            and not multiprocessing.current_process().daemon and len(expand(sources)) > 1)


def convert(sources: Sequence[str | Path], ontology: Ontology | str | Path, branch: str, out: str | Path,
            fmt: str | None = None, options: dict[str, Any] | None = None,
            plugins: Sequence[str | Path] | None = None, workers: int = 1, keep_going: bool = False,
            progress: Callable[[Tally], None] | None = None, *, registry: Any = None,
            reader_args: Sequence[Sequence[str]] = (), then: Callable[[Path], None] | None = None,
            dask: Any = None) -> Report:
    """Read, validate and write label rows for ``branch`` into ``out``: all or nothing, or with
    ``keep_going`` every valid data unit (``report.left_out`` says which were not written, and why).
    ``then``: instead of replacing ``out``, call it with the directory of complete rows (the run's staging
    directory beside ``out``), which is removed after; for uploads that keep no copy.
    ``dask``: run on a Dask cluster instead (a ``distributed.Client``, ``"local"`` for a LocalCluster, or a
    scheduler address; see :mod:`predport.core.cluster`): a task per source, ``out`` one ``.jsonl`` file
    (a path or an fsspec URL).
    The other parameters are :func:`validate`'s."""
    if dask is not None:
        if workers > 1 or then is not None:  # (the tasks load the plugins themselves: a registry is not sent)
            raise PredportError("--dask and --workers do not go together: on a cluster, a task per source")
        from predport.core import cluster

        return cluster.convert(sources, ontology, branch, str(out), dask, fmt, options, plugins, keep_going,  # type: ignore[no-any-return]
                               reader_args)
    if workers > 1 and then is None and _by_source(sources, Path(out)):
        from predport.core import cluster

        return cluster.convert(sources, ontology, branch, str(out), cluster.Processes(workers), fmt, options,  # type: ignore[no-any-return]
                               plugins, keep_going, reader_args, registry, progress)
    return _run(sources, ontology, branch, Path(out), fmt, options, plugins, workers, keep_going, progress,
                registry, reader_args, then)
