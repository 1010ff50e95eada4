"""What the checks of one data unit share, and how their problems are gathered.

Checks are generators: they *yield* the problems they find, each made by :meth:`UnitContext.problem` from
the record's own ``source`` (the way jsonschema's ``iter_errors`` yields errors that know their path), and
the caller decides what a problem means for the record (:func:`collect`). No check appends to a shared sink
or compares error counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.problems import Location, Problem, Severity
from predport.core.validate.resolved import frame_count, frame_sizes


class UnitContext:
    """The unit under validation: its kind, frame sizes and count, and where its problems are located."""

    def __init__(self, unit: DataUnit) -> None:
        self.unit = unit
        self.kind = unit["kind"]
        self.sizes = frame_sizes(unit)
        self.count = frame_count(unit)
        self.unit_source = unit.get("source")
        self.grouped: list[tuple[str, int, str]] = []  # (list name, index, group) of the records seen

    def problem(self, code: str, msg: str, source: Any, fld: str | None = None,
                severity: Severity = "error") -> Problem:
        """A problem located at ``source`` (a record's source; the unit's when the record has none, or names no
        file)."""
        if not (isinstance(source, dict) and isinstance(source.get("file"), str)):
            source = self.unit_source
        return Problem(code, severity, msg, Location.from_source(source, fld))

    def size(self, frame: int) -> tuple[int | None, int | None]:
        if self.kind == "image_group":
            return self.sizes[frame] if 0 <= frame < len(self.sizes) else (None, None)
        return self.sizes[0]

    def frame_ok(self, frame: int) -> bool:
        return frame >= 0 and (self.count is None or frame < self.count)

    def frames_text(self) -> str:
        if self.kind == "image":
            return "an image has only frame 0"
        return f"{self.count} frames" if self.count is not None else "unknown frame count"


def collect(sink: list[Problem], found: Iterable[Problem]) -> bool:
    """Add what a check yields to ``sink``; True when any of it is an error (the record is rejected)."""
    bad = False
    for p in found:
        sink.append(p)
        if p.severity == "error":
            bad = True
    return bad


def resolve_feature(ctx: UnitContext, ref: dict[str, str], lookup: Callable[[dict[str, str]], Any],
                    names: Iterable[str], what: str, code: str, source: Any) -> tuple[Any, list[Problem]]:
    """The ontology node a reference names, or None; with the problems (unknown with the near miss,
    ambiguous, or a name that disagrees with the hash)."""
    found = lookup(ref)
    label = ref.get("name") or ref.get("hash")
    if found is None:
        hint = ""
        if "name" in ref and "hash" not in ref:
            near = Ontology.suggest(ref["name"], names)
            hint = f" (did you mean {near!r}?)" if near else ""
        return None, [ctx.problem(code, f"{what} {label!r} is not in the ontology{hint}", source)]
    if isinstance(found, list):
        hashes = ", ".join(f.hash for f in found)
        return None, [ctx.problem(code.split(".")[0] + ".ambiguous", f"{what} name {label!r} matches several "
                                  f"ontology entries ({hashes}); give the feature hash", source)]
    if "hash" in ref and "name" in ref and ref["name"] != found.name:
        return found, [ctx.problem("class.name_mismatch", f"{what} hash {ref['hash']!r} is {found.name!r} in the "
                                   f"ontology, not {ref['name']!r}", source)]
    return found, []
