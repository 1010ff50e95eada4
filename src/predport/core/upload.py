"""The writer's second destination: a live Encord project's prediction branch, through the encord SDK.

Rows are never built here: the single writer writes a directory, this module re-validates it against the
project's own ontology and sends its rows. The flow (reference §7): list the data units on the branch, one
bundle per branch, initialise, **replace** each unit's branch content with the written row, save in bundles.
``attach_to_project`` is never used (it retargets rows to MAIN) and ``main`` is never written. A unit whose
branch already holds exactly the written content is left alone, so re-running an interrupted or repeated
upload finishes the job without redoing or duplicating anything.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from predport.core.ontology import Ontology
from predport.core.problems import Location, PredportError, Problems
from predport.core.validate import check_branch
from predport.core.writer import ZERO

T = TypeVar("T")

#: The problem codes of uploads (part of :data:`predport.CODES`).
CODES = {
    "upload.unit_missing": "a data unit of the upload is not in the project (matched by data hash, then title)",
    "upload.unit_ambiguous": "several data units of the project have this title; give data hashes",
    "upload.kind_mismatch": "the project's data unit is of another kind (image / image group / video)",
}


@dataclass
class Connection:
    """How to reach Encord. Secrets are read from files or the environment, never from the command line,
    and never printed."""

    project: str
    ssh_key_file: str | None = None
    token_file: str | None = None
    domain: str | None = None
    retries: int = 5  # predport's own retries of a whole bundle, on top of the SDK's per-request retries
    backoff: float = 2.0  # seconds before the first retry; doubles each time
    sdk_retries: int = 3
    sdk_backoff: float = 1.5

    def open(self) -> Any:
        """The SDK's Project (imports the SDK only now: it takes a second to import)."""
        from encord import EncordUserClient
        from encord.http.constants import RequestsSettings

        settings = RequestsSettings(max_retries=self.sdk_retries, backoff_factor=self.sdk_backoff)
        kwargs: dict[str, Any] = {"requests_settings": settings}
        if self.domain:
            kwargs["domain"] = self.domain
        token = _read_secret(self.token_file) if self.token_file else os.environ.get("ENCORD_TOKEN")
        try:
            if token and not self.ssh_key_file:
                client = EncordUserClient.create_with_bearer_token(token, **kwargs)
            else:
                key = _read_secret(self.ssh_key_file) if self.ssh_key_file else None
                client = EncordUserClient.create_with_ssh_private_key(key, **kwargs)
        except PredportError:
            raise
        except Exception as e:
            raise PredportError(f"cannot create an Encord client: {_explain(e)}") from None
        return self.call(lambda: client.get_project(self.project), f"open project {self.project}")

    def call(self, fn: Callable[[], T], what: str) -> T:
        """Run an SDK call, retrying transient failures (rate limits, server errors, lost connections)."""
        from encord import exceptions as ex

        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except (ex.AuthenticationError, ex.AuthorisationError) as e:
                raise PredportError(f"{what}: not allowed ({type(e).__name__}): check the SSH key or token and "
                                    "that its user may access the project") from None
            except ex.ResourceNotFoundError:
                raise PredportError(f"{what}: not found (wrong project hash or --domain?)") from None
            except Exception as e:
                if not _transient(e) or attempt == self.retries:
                    raise PredportError(f"{what} failed: {_explain(e)}") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


def _read_secret(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise PredportError(f"cannot read the credentials file {path}: {e.strerror}") from None


def _transient(e: Exception) -> bool:
    import requests
    from encord import exceptions as ex

    return isinstance(e, ex.RateLimitExceededError | ex.GenericServerError | ex.UnknownException |
                      ex.TimeOutError | ex.RequestException | requests.RequestException | ConnectionError)


def _explain(e: Exception) -> str:
    from encord import exceptions as ex

    if isinstance(e, ex.RateLimitExceededError):
        return "rate limited by Encord after all retries; wait and re-run (finished units are skipped)"
    text = str(e).split(" timestamp=")[0]
    return f"{type(e).__name__}: {text[:300]}"


@dataclass
class PlanEntry:
    title: str
    file: str
    action: str  # create | replace | unchanged
    before: tuple[int, int]  # objects, classifications on the branch now
    after: tuple[int, int]

    def __str__(self) -> str:
        return (f"{self.action:9} {self.title}: objects {self.before[0]} -> {self.after[0]}, "
                f"classifications {self.before[1]} -> {self.after[1]}")


@dataclass
class UploadReport:
    branch: str = ""
    problems: Problems = field(default_factory=Problems)
    plan: list[PlanEntry] = field(default_factory=list)
    saved: int = 0
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.problems.ok


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a predport output (a directory, or a one-file ``FILE.jsonl[.gz]``)."""
    from predport.core.output import open_output

    return open_output(directory).manifest


def _content(d: dict[str, Any]) -> str:
    """A row's content for "is it already there?": without row timestamps, dynamic actions unordered (the
    SDK reverses them on every parse)."""
    d = {k: v for k, v in d.items() if k not in ("created_at", "last_edited_at")}
    d["object_actions"] = {k: sorted(map(json.dumps, v.get("actions", []))) for k, v in d["object_actions"].items()}
    return json.dumps(d, sort_keys=True)


def _counts(row: Any) -> tuple[int, int]:
    return len(row.get_object_instances()), len(row.get_classification_instances())


def _retarget(written: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The written row with the live row's identity (label / data / dataset hashes, branch, data unit keys):
    what ``from_labels_dict`` needs to replace the live row's content."""
    d = dict(written)
    for k in ("label_hash", "data_hash", "dataset_hash", "dataset_title", "branch_name", "created_at",
              "label_status", "annotation_task_status", "is_shadow_data"):
        if k in live:
            d[k] = live[k]
    live_units = sorted(live["data_units"].items(), key=lambda kv: int(kv[1].get("data_sequence") or 0))
    mine = sorted(written["data_units"].values(), key=lambda u: int(u.get("data_sequence") or 0))
    d["data_units"] = {h: {**du, "labels": m["labels"]} for (h, du), m in zip(live_units, mine, strict=True)}
    return d


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def upload(directory: str | Path, conn: Connection, dry_run: bool = False, bundle_size: int = 100,
           project: Any = None) -> UploadReport:
    """Send a directory written by ``convert`` to its branch of ``conn.project`` (see the module doc)."""
    from predport.core.output import open_output
    from predport.core.pipeline import validate

    directory = Path(directory)
    out = open_output(directory)
    manifest = out.manifest
    branch = manifest["branch"]
    report = UploadReport(branch=branch, dry_run=dry_run)
    report.problems.extend(check_branch(branch))
    if not report.ok:
        return report
    project = project or conn.open()
    ontology = Ontology.from_dict(project.ontology_structure.to_dict(), f"project {conn.project} ontology")
    # validated again, against the project's own ontology, before anything is sent
    checked = validate([directory], ontology, fmt="encord", branch=branch)
    report.problems.extend(checked.problems)
    if not report.ok:
        return report
    rows = conn.call(lambda: project.list_label_rows_v2(branch_name=branch), f"list data units on {branch!r}")
    by_hash = {r.data_hash: r for r in rows}
    by_title: dict[str, list[Any]] = {}
    for r in rows:
        by_title.setdefault(r.data_title, []).append(r)
    targets: list[tuple[dict[str, Any], Any]] = []
    for unit in manifest["units"]:
        where = Location(out.where(unit))
        row = by_hash.get(unit.get("data_hash") or ZERO)
        if row is None:
            found = by_title.get(unit["title"], [])
            if len(found) > 1:
                report.problems.add("upload.unit_ambiguous", f"{len(found)} data units are titled {unit['title']!r}",
                                    where)
                continue
            row = found[0] if found else None
        if row is None:
            report.problems.add("upload.unit_missing", f"the project has no data unit {unit['title']!r}", where)
            continue
        value = getattr(row.data_type, "value", row.data_type)
        kind = {"image": "image", "img_group": "image_group", "video": "video"}.get(str(value).lower())
        if kind is not None and kind != unit["kind"]:  # an unknown (newer) data type is left to the platform
            report.problems.add("upload.kind_mismatch", f"{unit['title']!r} is a {kind} in the project, a "
                                f"{unit['kind']} here", where)
            continue
        targets.append((unit, row))
    if not report.ok:
        return report
    new = {id(r) for _, r in targets if r.label_hash is None}  # no row on the branch yet: created by initialise
    _initialise(conn, project, [r for _, r in targets], dry_run)
    changed = []
    for unit, row in targets:
        after = (unit["objects"], unit["classifications"])
        written = out.row(unit)
        name = unit.get("file") or f"line {unit['line']}"
        if id(row) in new:
            report.plan.append(PlanEntry(unit["title"], name, "create", (0, 0), after))
            if not dry_run:
                row.from_labels_dict(_retarget(written, row.to_encord_dict()))
                changed.append(row)
            continue
        before_dict = row.to_encord_dict()
        before = _counts(row)
        row.from_labels_dict(_retarget(written, before_dict))  # local only until saved
        same = _content(row.to_encord_dict()) == _content(before_dict)
        report.plan.append(PlanEntry(unit["title"], name, "unchanged" if same else "replace", before, after))
        if not same:
            changed.append(row)
    if not dry_run:
        _save(conn, project, changed, branch, bundle_size, report)
    return report


def _initialise(conn: Connection, project: Any, rows: list[Any], dry_run: bool) -> None:
    # one bundle per branch: every row here is on the same branch. In a dry run only rows that already exist
    # are fetched (a GET); creating a row (PUT) is a write.
    todo = [r for r in rows if not dry_run or r.label_hash is not None]

    def run() -> None:
        pending = [r for r in todo if not r.is_labelling_initialised]
        if pending:
            with project.create_bundle() as bundle:
                for r in pending:
                    r.initialise_labels(bundle=bundle)

    conn.call(run, "initialise the label rows")


def _save(conn: Connection, project: Any, rows: list[Any], branch: str, bundle_size: int,
          report: UploadReport) -> None:
    for chunk in _chunks(rows, bundle_size):
        for r in chunk:
            if r.branch_name != branch:  # never write another branch, least of all MAIN
                raise PredportError(f"refusing to save {r.data_title!r}: it is on branch {r.branch_name!r}")

        def run(chunk: list[Any] = chunk) -> None:
            with project.create_bundle(bundle_size=bundle_size) as bundle:
                for r in chunk:
                    r.save(bundle=bundle)

        try:
            conn.call(run, f"save {len(chunk)} label row(s)")
        except PredportError as e:
            raise PredportError(f"{e}. {report.saved} of {len(rows)} row(s) were saved; re-run the same command "
                                "to finish (saved rows are skipped)") from None
        report.saved += len(chunk)


def branch_counts(project: Any, conn: Connection) -> dict[str, list[tuple[str, int, int]]]:
    """Every branch of the project and, per data unit that has a row on it, its objects and classifications."""
    out: dict[str, list[tuple[str, int, int]]] = {}
    names = conn.call(lambda: list(project.list_branches()), "list branches")
    for name in names:
        def listing(name: str = name) -> list[Any]:
            return list(project.list_label_rows_v2(branch_name=name))

        rows = [r for r in conn.call(listing, f"list {name!r}") if r.label_hash is not None]
        _initialise(conn, project, rows, dry_run=True)
        out[name] = [(r.data_title, *_counts(r)) for r in rows]
    return out


def delete_branch(project: Any, conn: Connection, name: str, dry_run: bool = False,
                  bundle_size: int = 100) -> UploadReport:
    """Empty branch ``name`` on every data unit (refuses ``main`` and other non-prediction names)."""
    report = UploadReport(branch=name, dry_run=dry_run)
    report.problems.extend(check_branch(name))
    if not report.ok:
        return report
    rows = conn.call(lambda: project.list_label_rows_v2(branch_name=name), f"list data units on {name!r}")
    rows = [r for r in rows if r.label_hash is not None]
    _initialise(conn, project, rows, dry_run=True)
    changed = []
    for r in rows:
        before = _counts(r)
        report.plan.append(PlanEntry(r.data_title, "", "empty" if any(before) else "unchanged", before, (0, 0)))
        if any(before):
            d = r.to_encord_dict()
            d.update(object_answers={}, classification_answers={}, object_actions={})
            for du in d["data_units"].values():
                du["labels"] = {} if d["data_type"] == "video" else {"objects": [], "classifications": []}
            r.from_labels_dict(d)
            changed.append(r)
    if not dry_run:
        _save(conn, project, changed, name, bundle_size, report)
    return report
