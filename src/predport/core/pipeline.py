"""read -> normalise -> validate -> write, for the Python API and the CLI alike."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.problems import Location, PredportError, Problem, Problems
from predport.core.reader import ReadContext, Reader
from predport.core.validate import ResolvedUnit, check_branch, validate_unit
from predport.core.writer import BranchWriter, check_target


@dataclass
class Report:
    """What a run did: every problem, and counts of what was read and converted."""

    problems: Problems = field(default_factory=Problems)
    sources: list[str] = field(default_factory=list)
    units: int = 0
    objects: Counter[str] = field(default_factory=Counter)  # valid object instances per class
    object_frames: int = 0
    classifications: Counter[str] = field(default_factory=Counter)
    #: input entities per group (e.g. COCO category) and outcome ("converted" / "reported")
    ledger: Counter[tuple[str, str]] = field(default_factory=Counter)
    written: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.problems.ok

    def summary(self) -> dict[str, Any]:
        return {"sources": len(self.sources), "data_units": self.units, "objects": dict(self.objects),
                "object_frames": self.object_frames, "classifications": dict(self.classifications),
                "problems": dict(self.problems.by_code), "errors": self.problems.errors,
                "per_group": self.per_group(),
                "written": str(self.written) if self.written else None, "seconds": round(self.seconds, 3)}


    def per_group(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (group, outcome), n in sorted(self.ledger.items()):
            out.setdefault(group, {"converted": 0, "reported": 0})[outcome] = n
        return out


def _ontology(ontology: Ontology | str | Path) -> Ontology:
    return ontology if isinstance(ontology, Ontology) else Ontology.load(ontology)


def _registry(plugins: Sequence[str | Path] | None) -> Any:
    from predport import plugins as plugin_loader

    return plugin_loader.load(list(plugins or []))


def read(sources: Sequence[str | Path], ontology: Ontology | str | Path, fmt: str | None = None,
         options: dict[str, Any] | None = None, plugins: Sequence[str | Path] | None = None,
         problems: Problems | None = None, ledger: Counter[tuple[str, str]] | None = None,
         registry: Any = None) -> Iterator[DataUnit]:
    """Yield the data units of every source, read by ``fmt`` or by the detected reader. Reader problems
    go to ``problems``, per-group counts of reported input entities to ``ledger``."""
    reg = registry or _registry(plugins)
    ctx = ReadContext(_ontology(ontology), problems if problems is not None else Problems(), dict(options or {}),
                      ledger if ledger is not None else Counter())
    chosen: list[tuple[Path, Reader]] = []
    for s in sources:
        path = Path(s)
        if not path.exists():
            raise PredportError(f"{path}: no such file or directory")
        chosen.append((path, reg.reader(fmt) if fmt else reg.detect(path)))
    for path, reader in chosen:
        yield from reader.read(path, ctx)


def _run(sources: Sequence[str | Path], ontology: Ontology | str | Path, branch: str | None, out: Path | None,
         fmt: str | None, options: dict[str, Any] | None, plugins: Sequence[str | Path] | None) -> Report:
    t0 = time.perf_counter()
    ont = _ontology(ontology)
    report = Report(sources=[str(s) for s in sources])
    problems = report.problems
    if branch is not None:
        problems.extend(check_branch(branch))
    if out is not None:
        check_target(out)
    units = read(sources, ont, fmt, options, plugins, problems, report.ledger)
    writer = BranchWriter(out, branch or "", ont, report.sources) if out is not None else None
    titles: dict[str, Any] = {}
    try:
        for unit in units:
            ru = _validate(unit, ont, problems, titles, report)
            if writer is not None and ru is not None and problems.ok:
                writer.write(ru)
        if writer is not None and problems.ok:
            report.written = writer.commit()
    finally:
        if writer is not None:
            writer.abort()
    report.seconds = time.perf_counter() - t0
    return report


def _validate(unit: DataUnit, ont: Ontology, problems: Problems, titles: dict[str, Any],
              report: Report) -> ResolvedUnit | None:
    report.units += 1
    title = unit.get("title") if isinstance(unit, dict) else None
    if isinstance(title, str):
        if title in titles:
            problems.append(Problem("unit.duplicate", "error",
                                    f"data unit {title!r} appears twice (first at {titles[title]})",
                                    Location.from_source(unit.get("source"))))
            return None
        titles[title] = Location.from_source(unit.get("source"))
    ru = validate_unit(unit, ont, problems)
    _tally(unit, ru, report)
    if ru is not None:
        for o in ru.objects:
            report.objects[o.ontology.name] += 1
            report.object_frames += len(o.frames)
        for c in ru.classifications:
            report.classifications[c.ontology.name] += 1
    return ru


def _tally(unit: Any, ru: ResolvedUnit | None, report: Report) -> None:
    for kind in ("objects", "classifications"):
        records = unit.get(kind) if isinstance(unit, dict) else None
        for i, rec in enumerate(records if isinstance(records, list) else []):
            group = rec.get("source", {}).get("group") if isinstance(rec, dict) else None
            if isinstance(group, str):
                bad = ru is None or (kind, i) in ru.rejected
                report.ledger[(group, "reported" if bad else "converted")] += 1


def validate(sources: Sequence[str | Path], ontology: Ontology | str | Path, fmt: str | None = None,
             branch: str | None = None, options: dict[str, Any] | None = None,
             plugins: Sequence[str | Path] | None = None) -> Report:
    """Read and validate every source; nothing is written. ``report.ok`` is False on any error."""
    return _run(sources, ontology, branch, None, fmt, options, plugins)


def convert(sources: Sequence[str | Path], ontology: Ontology | str | Path, branch: str, out: str | Path,
            fmt: str | None = None, options: dict[str, Any] | None = None,
            plugins: Sequence[str | Path] | None = None) -> Report:
    """Read, validate and write label rows for ``branch`` into ``out``: all or nothing."""
    return _run(sources, ontology, branch, Path(out), fmt, options, plugins)
