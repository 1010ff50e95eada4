"""Conversion on a Dask cluster: for prediction sets that outgrow one machine (many shards on shared or object
storage).

The run is a ``dask.bag`` over the sources (one task per source: a file, or a directory a reader reads whole),
computed on a ``distributed`` scheduler. Each task runs predport's own one-process pipeline on its source --
read, validate, write -- into a part file of the one-file output (``FILE.jsonl`` / ``FILE.jsonl.gz``), and
returns its report (problems, counts, ledger), its rows' manifest entries and its sources' SHA-256. The driver
merges the reports; titles that two tasks both produced are the same ``unit.duplicate`` error a one-process run
reports. Then, all or nothing:

* a data error (without ``keep_going``) or a task that raises: the parts are removed, nothing is written;
* otherwise the driver assembles the parts into the file, rows ordered by title (the bytes a one-process run
  writes, its timestamp aside: every task is given the driver's), puts the file in place and writes the
  manifest last: the manifest is the commit marker, and gives each row's offset, length and CRC-32, so a reader
  (:func:`predport.core.output.open_output`) tells a complete output from one whose run stopped between the two.

Sources and the output may be fsspec URLs: local paths, ``memory://`` (tests), ``s3://`` when s3fs is installed.
A task reads a remote source through a local copy in its own temporary directory (readers read files); problems
still name the URL. Parts are written beside the output (``.<name>.predport-parts-<token>/``: in the driver's
staging directory when the output is local, which then must be on storage every worker sees). A remote parts
directory holds the driver's heartbeat; the next run into the output removes those of dead drivers
(:func:`sweep_parts`).

Task granularity is the source: a single 2 GB results file is one task (use ``--workers`` on one machine for
that); a thousand shards are a thousand tasks.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from predport.core import faults
from predport.core.ontology import Ontology
from predport.core.problems import Location, PredportError, Problem, Problems
from predport.core.writer import BranchWriter, file_manifest, is_file_output


@dataclass
class _Task:
    """What every task is given (pickled to the workers once per task)."""

    ontology: dict[str, Any]
    origin: str
    branch: str
    fmt: str | None
    options: dict[str, Any]
    plugins: list[str]
    keep_going: bool
    reader_args: list[list[str]]
    when: datetime
    gz: bool
    parts: str  # where parts go: a local directory or an fsspec URL
    provenance: bool = True  # (False: the driver records the run's, :class:`Processes`)
    #: the task writes beside the parts and renames its rows into place (:class:`Processes`, whose driver ends every
    #: task before it removes the parts; on Dask a task still running would write into the removed directory)
    beside: bool = False


def is_url(s: str) -> bool:
    """Whether ``s`` is an fsspec URL other than a local file's."""
    return "://" in s and not s.startswith("file://")


def _local(s: str) -> str:
    return s.removeprefix("file://")


def expand(sources: Sequence[str | Path]) -> list[str]:
    """Sources as given, glob patterns expanded (sorted), for local paths and fsspec URLs alike."""
    import fsspec

    out: list[str] = []
    for src in map(str, sources):
        if not is_url(src):
            from predport.core.pipeline import expand as local_expand

            out.extend(str(p) for p in local_expand([_local(src)]))
            continue
        fs, path = fsspec.core.url_to_fs(src)
        protocol = src.split("://", 1)[0]
        if fs.exists(path):
            out.append(src)
            continue
        matches = sorted(fs.glob(path)) if any(c in path for c in "*?[") else []
        if not matches:
            raise PredportError(f"{src}: no such file or directory")
        out.extend(m if "://" in m else f"{protocol}://{m.lstrip('/')}" if protocol == "memory" else f"{protocol}://{m}"
                   for m in matches)
    return out


@dataclass(frozen=True)
class Processes:
    """Instead of a Dask cluster: ``count`` processes of this machine, forked (``--workers`` with several sources
    into one file). A task per source, as on Dask, or per run of sources when they are many
    (:data:`TASKS_PER_PROCESS`); each process takes the next task as soon as it is free, the largest first.

    Why: the workers of one run share a parse (:mod:`predport.core.pipeline`), so with several sources every
    worker parsed every source after the first, and 2 workers took 0.97x the time of one on the bench's 10 shards
    (3.51 s against 3.62 s); a source is now parsed once, by the process that converts it (1.86-2.16 s, against
    2.57-3.27 s with one process, in two bench runs)."""

    count: int


def run_task(k: int, sources: list[str], task: _Task, registry: Any = None,
             progress: Callable[[Any], None] | None = None, memo: dict[Any, Any] | None = None) -> dict[str, Any]:
    """One task: its sources through the one-process pipeline into part ``k``. Raises only when it cannot
    proceed (the driver then removes every part). Units without records that nothing in the task replaced are
    returned (``held``) for the driver to convert, unless another task has records for them: shards of results
    that share one --images file each yield every image, and the driver writes each once. (Not when a source is
    a URL: their problems would name the task's local copy.) ``registry``, ``progress``, ``memo``: a forked
    task's (see :class:`Processes`; the readers' memo is shared by the tasks of a process)."""
    from predport.core import pipeline

    with tempfile.TemporaryDirectory(prefix="predport-task-") as tmp:
        local, options, reader_args, renames = _localised(sources, task, tmp)
        fetched = sum(1 for src in sources if is_url(src))
        ont = Ontology(task.ontology, task.origin)
        out: Path | None = None
        done: dict[str, Any] = {}
        if task.parts:  # (else a run that writes nothing: validate)
            name = "part.jsonl.gz" if task.gz else "part.jsonl"
            # (in forked processes, the task writes beside the parts, and its rows are renamed into place, not
            # copied)
            out = Path(_local(task.parts), f"task-{k:06d}", name) if task.beside else Path(tmp, name)
            out.parent.mkdir(exist_ok=True)

        def keep(staging: Path) -> None:  # (the rows of the task, sealed: ordered by title, with a manifest)
            import orjson

            done["manifest"] = orjson.loads((staging / "manifest.json").read_bytes())
            part = f"part-task-{k:06d}"  # (not a process's own part, part-<pid>: the driver writes one)
            if task.beside:
                os.replace(staging / "data", Path(_local(task.parts), part))
            else:
                _put(staging / "data", task.parts, part)
            done["part"] = part

        held: list[Any] | None = None if renames else []
        seen: list[dict[str, Any]] = []
        if memo is None:  # (on Dask: the worker process's, for the tasks of this run it takes; not for files that
            # options name as URLs: each task's copy of them is another file)
            memo = _worker_memo(task.when) if len(renames) == fetched else {}
        try:
            report = pipeline._run(local, ont, task.branch or None, out, task.fmt, options, task.plugins, 1,
                                   task.keep_going, progress, registry, reader_args, keep, when=task.when, hold=held,
                                   memo=memo, with_provenance=task.provenance, seen=seen)
        finally:
            if task.beside and out is not None:
                shutil.rmtree(out.parent, ignore_errors=True)
        report.sources = list(sources)
        # (the driver says unit.repeated and output.dropped once, for the whole run: report.repeated and
        # report.carried carry the task's counts)
        kept = Problems()
        kept.extend(_renamed(p, renames) for p in report.problems if p.code not in ("unit.repeated", "output.dropped"))
        report.problems = kept
        for u in seen if renames else ():
            if "where" in u and u["where"].file:
                u["where"] = replace(u["where"], file=_rename(u["where"].file, renames))
            if u.get("from"):
                u["from"] = _rename(u["from"], renames)
        manifest = done.get("manifest", {})
        units = manifest.get("units", [])
        for u in units:
            u["part"] = done["part"]
        prov = manifest.get("provenance", {})
        for s in [*prov.get("sources", []), *prov.get("option_files", {}).values()]:
            s["path"] = _rename(s["path"], renames)
        return {"k": k, "report": report, "units": units, "provenance": prov, "held": held or [], "seen": seen}


def _localised(sources: list[str], task: _Task, tmp: str) -> tuple[list[str], dict[str, Any], list[list[str]],
                                                                    dict[str, str]]:
    """A task's sources, options and reader options with a local copy (under ``tmp``) of every file named by an
    fsspec URL; and the copies' URLs by path (for problem locations and provenance)."""
    local: list[str] = []
    renames: dict[str, str] = {}
    for n, src in enumerate(sources):
        if is_url(src):
            local.append(_fetch(src, Path(tmp, "in", str(n))))
            renames[local[-1]] = src
        else:
            local.append(src)
    options = dict(task.options)
    for name, value in task.options.items():  # (files that options name, as URLs: a local copy each)
        options[name] = _fetched(value, Path(tmp, "options", name), renames)
    reader_args = [[a[0], *(_fetched(v, Path(tmp, "options", a[0].lstrip("-")), renames) for v in a[1:])]
                   for a in task.reader_args]
    return local, options, reader_args, renames


def recount(sources: list[str], task: _Task, registry: Any, titles: set[str]) -> Any:
    """What a task of ``sources`` counted for its units titled ``titles`` (objects, frames, classifications and
    the ledger, as a report), from the sources read again: the driver takes them back when another task took
    those titles first, a duplicate across tasks, which one process counts as reported. (An error, and rare: no
    task records every unit's counts for it.)"""
    from predport.core import pipeline

    ont = Ontology(task.ontology, task.origin)
    counted = pipeline.Report()  # (its problems: those the task found in the units, which one process does not)
    filters = pipeline.filters_of(task.options)
    with tempfile.TemporaryDirectory(prefix="predport-recount-") as tmp:
        local, options, reader_args, renames = _localised(sources, task, tmp)
        for unit in pipeline.read(local, ont, task.fmt, options, task.plugins, Problems(),
                                  registry=registry, reader_args=reader_args):
            if isinstance(unit, dict) and unit.get("title") in titles:
                if filters:  # (as the task did: what they left out stays counted as filtered)
                    unit = filters.apply_any(unit, counted.ledger, ont)
                _, found = pipeline._validate(unit, ont, {}, counted)
                counted.problems.extend(_renamed(p, renames) for p in found)
    counted.count_rows()
    return counted


#: the readers' memo (:attr:`predport.ReadContext.memo`) of this process's Dask tasks: (the run's time, the memo)
_MEMO: list[Any] = [None, {}]


def _worker_memo(run: datetime) -> dict[Any, Any]:
    """The memo the tasks of run ``run`` share in this process: a Dask worker converts many shards, each of which
    would parse and index the --images file they share. Only the latest run's is kept (a long-lived worker would
    otherwise hold every run's)."""
    if _MEMO[0] != run:
        _MEMO[:] = [run, {}]
    memo: dict[Any, Any] = _MEMO[1]
    return memo


def _fetch(url: str, into: Path) -> str:
    """A local copy of a file or directory at an fsspec URL, under ``into`` with its own name."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    dest = into / (Path(path).name or "source")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fs.isdir(path):
        fs.get(path, str(dest), recursive=True)
    elif "memory" in fs.protocol:  # (in one read: memory://'s open files share their position between threads)
        dest.write_bytes(fs.cat_file(path))
    else:  # (streamed: a shard may be larger than the memory a task has)
        fs.get_file(path, str(dest))
    return str(dest)


def _fetched(value: Any, into: Path, renames: dict[str, str]) -> Any:
    """An option's value, a local copy of it when it is an fsspec URL."""
    if not (isinstance(value, str) and is_url(value)):
        return value
    local = _fetch(value, into)
    renames[local] = value
    return local


def _put(path: Path, parts: str, name: str) -> None:
    if is_url(parts):
        import fsspec

        fs, base = fsspec.core.url_to_fs(parts)
        fs.put_file(str(path), f"{base.rstrip('/')}/{name}")
    else:
        shutil.copyfile(path, Path(_local(parts), name))


def _rename(path: str, renames: dict[str, str]) -> str:
    for local, url in renames.items():
        if path == local or path.startswith(local + "/"):
            return url + path[len(local):]
    return path


def _renamed(p: Problem, renames: dict[str, str]) -> Problem:
    if not renames or not p.location.file:
        return p
    return replace(p, location=replace(p.location, file=_rename(p.location.file, renames)))


def _quiet_failures() -> Any:
    """A worker plugin that drops distributed's "Compute Failed" log record (with its task's repr and
    traceback) from the LocalCluster that ``--dask local`` starts: predport says that a task failed, with its
    exception and last frames, so the user's stderr would say it twice. A cluster given by address logs on
    its own workers, as its owner configured them."""
    import logging

    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietFailures(WorkerPlugin):
        name = "predport-quiet-failures"

        def setup(self, worker: Any) -> None:
            logging.getLogger("distributed.worker").addFilter(_not_compute_failed)

    return QuietFailures()


def _not_compute_failed(record: Any) -> bool:
    return not str(record.msg).startswith("Compute Failed")


def client_for(dask: Any) -> tuple[Any, Any]:
    """A ``distributed.Client`` for ``dask``: a client as it is, ``"local"`` for a LocalCluster (one worker
    process per core, a thread each), or a scheduler address. Returns (client, what to close after)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise PredportError("--dask needs dask and distributed: pip install 'predport[dask]'") from None
    if not isinstance(dask, str):
        return dask, None
    if dask == "local":
        cluster = LocalCluster(processes=True, threads_per_worker=1, dashboard_address=None)
        client = Client(cluster)
        client.register_plugin(_quiet_failures())

        def close() -> None:
            client.close()
            cluster.close()

        return client, close
    try:
        client = Client(dask, timeout="20s")
    except OSError as e:
        raise PredportError(f"cannot reach the Dask scheduler at {dask}: {e}") from e
    return client, client.close


def convert(sources: Sequence[str | Path], ontology: Ontology | str | Path, branch: str, out: str | Path,
            dask: Any, fmt: str | None = None, options: dict[str, Any] | None = None,
            plugins: Sequence[str | Path] | None = None, keep_going: bool = False,
            reader_args: Sequence[Sequence[str]] = (), registry: Any = None,
            progress: Callable[[Any], None] | None = None) -> Any:
    """:func:`predport.convert` on a Dask cluster (``dask``: a ``distributed.Client``, ``"local"`` or a
    scheduler address) or in :class:`Processes` of this machine; ``out`` a ``.jsonl`` / ``.jsonl.gz`` path or
    URL. Returns the merged report. ``registry`` and ``progress`` (a ``Tally`` now and then) serve
    :class:`Processes` only (a Dask task loads the plugins itself)."""
    from predport.core import pipeline
    from predport.core.validate import check_branch

    t0 = time.perf_counter()
    out = str(out)
    if not is_file_output(Path(out.rsplit("/", 1)[-1])):
        raise PredportError(f"--dask writes one file: --out must end in .jsonl or .jsonl.gz, not {out!r}")
    ont = ontology if isinstance(ontology, Ontology) else _load_ontology(str(ontology))
    urls = [str(p) for p in pipeline.expand(sources)] if isinstance(dask, Processes) else expand(sources)
    report = pipeline.Report(sources=[str(s) for s in sources])
    report.problems.extend(check_branch(branch))
    opts = dict(options or {})
    remote = is_url(out)
    if remote:
        _check_remote_target(out)
    when = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="predport-driver-") as tmp:
        local_out = Path(tmp, out.rsplit("/", 1)[-1]) if remote else Path(_local(out))
        writer = BranchWriter(local_out, branch, ont, report.sources, when=when)
        report.problems.extend(pipeline.stale(writer))
        token = secrets.token_hex(4)
        parts = (f"{out.rsplit('/', 1)[0]}/.{local_out.name}.predport-parts-{token}" if remote
                 else str(writer.staging))
        forked = isinstance(dask, Processes)
        task = _Task(ont.data, ont.origin, branch, fmt, opts, [str(p) for p in plugins or []], keep_going,
                     [list(a) for a in reader_args], when, local_out.name.endswith(".gz"), parts, not forked, forked)
        client, closer = (None, None) if forked else client_for(dask)
        beat = background = None
        try:
            if forked:  # (its provenance computed once, beside the tasks, as one process computes it)
                registry, chosen = _checked(urls, ont, report, opts, fmt, registry, plugins, reader_args)
                filters, files = pipeline.filters_of(opts), pipeline.files_named(opts, chosen)
                background = pipeline._Background(
                    lambda: pipeline.provenance([Path(u) for u in urls], opts, filters, files))
                writer.provenance = background
            if remote:
                import fsspec

                fs, base = fsspec.core.url_to_fs(parts)
                report.problems.extend(sweep_parts(fs, base.rsplit("/", 1)[0], local_out.name))
                fs.makedirs(base, exist_ok=True)
                beat = _Heartbeat(fs, base)
            t = time.perf_counter()
            report.stages["setup"] += t - t0
            results = _forked(urls, task, dask.count, registry, progress) if forked else _compute(client, urls, task)
            report.stages["tasks"] += time.perf_counter() - t  # (the tasks' own read / validate / write: merged)
            t = time.perf_counter()
            provenance: dict[str, Any] = {}
            _merge(results, report, ont, writer, keep_going, progress,
                   lambda sources, titles: recount(sources, task, registry, titles))
            # (a Dask run's provenance from its tasks'; the tasks of forked processes record none: the driver's,
            # above, is the run's)
            for r in results if not forked else ():
                prov = r["provenance"]  # (every task's sources, in task order)
                sources_seen = provenance.get("sources", []) + prov.get("sources", [])
                media = provenance.get("media_not_hashed", 0) + prov.get("media_not_hashed", 0)
                provenance = {**prov, **provenance, "sources": sources_seen}
                if media:
                    provenance["media_not_hashed"] = media
            report.stages["merge"] += time.perf_counter() - t
            t = time.perf_counter()
            if not (report.ok or keep_going):
                return report
            if report.carried:
                report.problems.append(pipeline.dropped_note(report.carried, out))
            if provenance:
                provenance["sources"] = sorted(provenance["sources"], key=lambda s: s["path"])
                provenance = {k: provenance[k] for k in _ORDER if k in provenance}
                writer.provenance = provenance
            if remote:
                for name in {u["part"] for u in writer.units}:
                    if (writer.staging / name).exists():  # (the driver's own: units that tasks held)
                        continue
                    fs.get_file(f"{base.rstrip('/')}/{name}", str(writer.staging / name))
                staging = writer.seal()
                target_fs, target = fsspec.core.url_to_fs(out)
                target_fs.put_file(str(staging / "data"), target)
                faults.point("file-renamed")
                target_fs.pipe_file(str(file_manifest(Path(target))), (staging / "manifest.json").read_bytes())
                report.written = out  # (a URL: not a local path)
            else:
                report.written = writer.commit()
            report.stages["commit"] += time.perf_counter() - t
            return report
        finally:
            report.seconds = time.perf_counter() - t0
            writer.abort()  # (a local output's parts are in the staging directory: gone with it)
            if beat is not None:
                beat.stop()
            if remote:
                with contextlib.suppress(Exception):
                    fs.rm(base, recursive=True)
            if background is not None:
                background.stop()
            if closer is not None:
                closer()


#: how often a driver says, in its remote parts directory, that it is still running; and after how long without a
#: word a parts directory is a dead run's (a killed driver cannot remove its parts: the next run into the same
#: output does). The margin covers clocks that differ between machines.
HEARTBEAT_S = 60.0
STALE_S = 15 * 60.0


class _Heartbeat:
    """A thread that rewrites ``driver.json`` (the time, this host and process) in a remote parts directory every
    :data:`HEARTBEAT_S` seconds until :meth:`stop`."""

    def __init__(self, fs: Any, base: str, every: float = HEARTBEAT_S) -> None:
        import threading

        self.fs, self.path, self.every = fs, f"{base.rstrip('/')}/driver.json", every
        self.done = threading.Event()
        self.beat()  # (before any part: a directory without it is never newer than its parts)
        self.thread = threading.Thread(target=self.run, name="predport-heartbeat", daemon=True)
        self.thread.start()

    def beat(self) -> None:
        self.fs.pipe_file(self.path, orjson.dumps({"time": time.time(), "host": socket.gethostname(),
                                                   "pid": os.getpid()}))

    def run(self) -> None:
        while not self.done.wait(self.every):
            with contextlib.suppress(Exception):  # (a missed beat is retried; the run itself says what fails)
                self.beat()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def sweep_parts(fs: Any, directory: str, name: str, now: float | None = None) -> list[Problem]:
    """Remove the parts directories of output ``name`` in ``directory`` whose driver has not said it is running
    for :data:`STALE_S` seconds (by its ``driver.json``; one without it, by its files' times); say so."""
    now = time.time() if now is None else now
    out = []
    for path in fs.glob(f"{directory.rstrip('/')}/.{name}.predport-parts-*"):
        try:
            last = orjson.loads(fs.cat_file(f"{path}/driver.json"))["time"]
        except Exception:  # (no heartbeat, or not readable: the newest of its files)
            times = [_modified(fs, p) for p in [path, *fs.find(path)]]
            last = max((t for t in times if t is not None), default=None)
        if not isinstance(last, int | float) or now - last < STALE_S:
            continue
        with contextlib.suppress(Exception):
            fs.rm(path, recursive=True)
            out.append(Problem("output.stale", "info", f"removed {path.rsplit('/', 1)[-1]}, left by a run whose "
                               f"driver last said it was running {(now - last) / 60:.0f} minutes ago",
                               Location(str(path))))
    return out


def _modified(fs: Any, path: str) -> float | None:
    try:
        return float(fs.modified(path).timestamp())
    except Exception:  # (a file system or a pseudo-directory that does not say)
        return None


def _check_remote_target(out: str) -> None:
    """As for a local --out: replace only an earlier predport output (a file with its manifest), or nothing."""
    import fsspec

    fs, target = fsspec.core.url_to_fs(out)
    if fs.exists(target) and not fs.exists(str(file_manifest(Path(target)))):
        raise PredportError(f"{out} exists and is not a predport output file (no {file_manifest(Path(target)).name} "
                            "beside it); choose another --out")


def _frame(entry: dict[str, Any]) -> tuple[Any, ...]:
    """What two yields of one title must agree on, as a manifest entry (or a unit) says it."""
    return entry.get("kind"), entry.get("width"), entry.get("height")


def _records(entry: dict[str, Any]) -> bool:
    return bool(entry["objects"] or entry["classifications"])


def _merge(results: list[dict[str, Any]], report: Any, ont: Ontology, writer: BranchWriter | None,
           keep_going: bool, progress: Callable[[Any], None] | None,
           recount: Callable[[list[str], set[str]], Any] | None = None) -> None:
    """The tasks' results into the run's ``report`` and ``writer`` (None: a run that writes nothing), in task
    order: one process's rule for titles that several sources yield (:class:`pipeline.Repeats`) on every unit the
    tasks converted or tried, then on those they held, which are converted here when no task had records for
    them; a title taken twice is a duplicate, as validation reports it in one process, and its records are
    counted as reported, as one process counts them (what the task counted for it taken back: ``recount``, from a
    task's sources and titles, see :func:`recount`)."""
    from predport.core import pipeline

    repeats = pipeline.Repeats(report, _frame, _records)
    taken: dict[str, tuple[Location, str | None]] = {}  # title -> where its unit and records are from
    titles: dict[str, Any] = {}
    again: dict[int, set[str]] = {}  # task -> the titles of its units with records that were duplicates

    def take(entry: dict[str, Any]) -> None:
        title, where = entry["title"], entry["where"]
        if title in taken:  # (as validation says it in one process, and counts the unit)
            report.problems.append(pipeline.duplicate(title, pipeline.first_at(*taken[title]), entry.get("from"),
                                                      where))
            report.units += "unit" in entry  # (a task counted the units it converted or tried)
            if "task" in entry and _records(entry):
                again.setdefault(entry["task"], set()).add(title)
            if keep_going:
                report.left_out[title] = ["unit.duplicate"]
            return
        taken[title] = (where, entry.get("from"))
        if "unit" in entry:  # (a unit a task held: converted here, into the driver's own part)
            pipeline._one(entry["unit"], ont, report, titles, writer, keep_going)
        elif entry.get("row") is not None and writer is not None:  # (else the task left it out: never replaced by
            writer.units.append(entry["row"])  # an empty one)

    ordered = sorted(results, key=lambda r: r["k"])
    for r in ordered:
        report.merge(r["report"])
        # every unit the task converted or tried, in its order, with the manifest entry of its row when it was
        # written
        rows = {u["title"]: u for u in r["units"]}
        for u in r["seen"]:
            if type(u["title"]) is not str:  # (a unit without a title: it has errors, and was not written)
                continue
            u["row"], u["task"] = rows.get(u["title"]), r["k"]
            for admitted in repeats.admit(u):
                take(admitted)
    # then the units the tasks held (none has records): the same outcome as in their places among the others, as
    # a held unit waits for records anyway. Most are the repeat of a unit taken (each shard of results yields
    # every image of the --images file): counted from title and frame (the whole rule took 0.3 s for 45k).
    for r in ordered:
        for unit in r["held"]:
            if not repeats.repeat(unit["title"], _frame(unit)):
                for admitted in repeats.admit({**pipeline.light(unit), "unit": unit}):
                    take(admitted)
    for held in repeats.held.values():
        take(held)
    report.count_rows()
    if recount is not None:
        sources = {r["k"]: r["report"].sources for r in ordered}
        for k, dups in sorted(again.items()):
            _taken_back(report, recount(sources[k], dups))
    if report.repeated:
        report.problems.append(pipeline.repeated_note(report.repeated))
    if progress is not None:  # (the whole run's, the units the driver converted included)
        progress(pipeline.Tally(report.units, sum(report.objects.values()), report.problems.errors))


def _taken_back(report: Any, counted: Any) -> None:
    """What a task counted and found for units that were duplicates (``counted``) taken out of ``report``: their
    records are reported, in their groups, none is converted (those the filters left out stay filtered, as one
    process filters before it finds a duplicate), and the problems the task found in them are not said (one
    process checks nothing in a duplicate)."""
    from predport.core import pipeline

    drop = Counter(map(pipeline._signature, counted.problems))
    kept = []
    for p in report.problems:
        if drop[pipeline._signature(p)] > 0:
            drop[pipeline._signature(p)] -= 1
        else:
            kept.append(p)
    report.problems.truncate(0)
    report.problems.extend(kept)
    report.objects -= counted.objects
    report.object_frames -= counted.object_frames
    report.classifications -= counted.classifications
    for (group, how), n in counted.ledger.items():
        if how != "filtered":
            report.ledger[(group, how)] -= n
            report.ledger[(group, "reported")] += n
    for key in [key for key, n in report.ledger.items() if n <= 0]:
        del report.ledger[key]


def validate(sources: Sequence[str | Path], ontology: Ontology, branch: str | None, processes: Processes,
             fmt: str | None, options: dict[str, Any] | None, plugins: Sequence[str | Path] | None,
             registry: Any, progress: Callable[[Any], None] | None, reader_args: Sequence[Sequence[str]]) -> Any:
    """:func:`predport.validate` of several sources in :class:`Processes`: a task per source (or run of sources),
    nothing written; the report is one process's."""
    from predport.core import pipeline
    from predport.core.validate import check_branch

    t0 = time.perf_counter()
    urls = [str(p) for p in pipeline.expand(sources)]
    report = pipeline.Report(sources=[str(s) for s in sources])
    if branch is not None:
        report.problems.extend(check_branch(branch))
    opts = dict(options or {})
    registry, _ = _checked(urls, ontology, report, opts, fmt, registry, plugins, reader_args)
    task = _Task(ontology.data, ontology.origin, "", fmt, opts, [str(p) for p in plugins or []], False,
                 [list(a) for a in reader_args], datetime.now(UTC), False, "", False, False)
    t = time.perf_counter()
    report.stages["setup"] += t - t0
    results = _forked(urls, task, processes.count, registry, progress)
    report.stages["tasks"] += time.perf_counter() - t
    t = time.perf_counter()
    _merge(results, report, ontology, None, False, progress,
           lambda sources, titles: recount(sources, task, registry, titles))
    report.stages["merge"] += time.perf_counter() - t
    report.seconds = time.perf_counter() - t0
    return report


def _checked(urls: list[str], ont: Ontology, report: Any, opts: dict[str, Any], fmt: str | None, registry: Any,
             plugins: Sequence[str | Path] | None, reader_args: Sequence[Sequence[str]]) -> tuple[Any, list[Any]]:
    """Before forking :class:`Processes`: the plugins loaded once for every task, and the run's readers and options
    checked (a bad option or filter, an unrecognised file ends the run before anything is read, as in one
    process; the readers' warnings go to ``report`` first, as there). The registry and each source's reader."""
    from predport.core import pipeline

    registry = registry or pipeline._registry(plugins)
    pipeline.filters_of(opts)
    chosen = pipeline._contexts([Path(u) for u in urls], fmt, pipeline._context(ont, report.problems, opts),
                                registry, opts, reader_args)
    return registry, chosen


#: the key order of a one-process run's provenance (so that the manifests are the same bytes)
_ORDER = ("model", "model_version", "note", "filters", "sources", "media_not_hashed", "option_files",
          "predport_version")


#: with :class:`Processes`, at most this many tasks per process: many small sources (a LabelMe or KITTI file per
#: image) go in runs of sources, one task each, since a task costs 30-40 ms of its own
TASKS_PER_PROCESS = 8


def _batches(urls: list[str], n: int) -> list[list[str]]:
    """The sources in at most ``n`` runs that follow one another, of about equal size: each source goes to the run
    whose share of the total its middle falls in."""
    sizes = [max(1, _size(u)) for u in urls]
    total, running = sum(sizes), 0
    out: dict[int, list[str]] = {}
    for url, size in zip(urls, sizes, strict=True):
        out.setdefault(min(n - 1, (2 * running + size) * n // (2 * total)), []).append(url)
        running += size
    return [out[b] for b in sorted(out)]


def _forked(urls: list[str], task: _Task, count: int, registry: Any,
            progress: Callable[[Any], None] | None) -> list[dict[str, Any]]:
    """The tasks in :class:`Processes`: a source each, or runs of sources when they are more than
    :data:`TASKS_PER_PROCESS` a process; each process takes the next task, the largest first. Progress: each task
    posts its tally on a shared board, which this process sums for ``progress`` (at most every 0.1 s)."""
    import multiprocessing

    from predport.core import pipeline
    from predport.core.parallel import fork_map

    batches = _batches(urls, TASKS_PER_PROCESS * count)
    board = multiprocessing.get_context("fork").Array("q", 3 * len(batches), lock=False) if progress else None
    here, shown = os.getpid(), [0.0]
    memo: dict[Any, Any] = {}  # (each process's own after the fork: shared by the tasks it takes)

    def show() -> None:
        if board is not None and progress is not None and time.perf_counter() - shown[0] >= 0.1:
            shown[0] = time.perf_counter()
            progress(pipeline.Tally(sum(board[0::3]), sum(board[1::3]), sum(board[2::3])))

    def one(k: int) -> dict[str, Any]:
        def post(tally: Any) -> None:
            if board is not None:
                board[3 * k: 3 * k + 3] = [tally.units, tally.objects, tally.errors]
                if os.getpid() == here:
                    show()

        # (a task's errors name their source: "reader 'coco' failed on FILE", "FILE: no such file", ...)
        return run_task(k, batches[k], task, registry, post if board is not None else None, memo)

    order = sorted(range(len(batches)), key=lambda k: -sum(map(_size, batches[k])))
    try:
        return fork_map(one, order, 0, count, doing="converting a source", waiting=show)
    except PredportError as e:
        raise PredportError(f"{e}\nnothing was written") from e
    except Exception as e:  # (a bug, in this process's own task: where)
        from predport.core.parallel import describe

        raise PredportError(f"converting a source failed: {describe(e)}\nnothing was written") from e


def _size(path: str) -> int:
    try:
        return os.stat(_local(path)).st_size
    except OSError:
        return 0


def _compute(client: Any, urls: list[str], task: _Task) -> list[dict[str, Any]]:
    import dask.bag as db

    bag = db.from_sequence(list(enumerate(urls)), npartitions=max(1, len(urls)))
    try:
        return bag.map(lambda ku: run_task(ku[0], [ku[1]], task)).compute(scheduler=client)  # type: ignore[no-any-return]
    except Exception as e:  # (a task's PredportError says what it could not do; anything else is a bug: where)
        from predport.core.parallel import describe

        why = str(e) if isinstance(e, PredportError) else describe(e)
        raise PredportError(f"a Dask task failed: {why}\nnothing was written") from e


def _load_ontology(src: str) -> Ontology:
    if not is_url(src):
        return Ontology.load(_local(src))
    import fsspec
    import orjson

    with fsspec.open(src, "rb") as f:
        return Ontology(orjson.loads(f.read()), src)
