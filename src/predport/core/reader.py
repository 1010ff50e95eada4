"""What a reader is (see :mod:`predport.hookspecs` for the contract) and what it is given."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predport.core.model import DataUnit
from predport.core.ontology import Ontology
from predport.core.problems import Location, Problem, Problems, Severity


@dataclass(frozen=True, slots=True)
class Detection:
    """A reader's verdict on an input: ``score`` in [0, 1] (0 = cannot read it) and why."""

    score: float
    reason: str


@dataclass
class ReadContext:
    """Given to :meth:`Reader.read`: the target ontology, the reader's options and the problem sink."""

    ontology: Ontology
    problems: Problems = field(default_factory=Problems)
    options: dict[str, Any] = field(default_factory=dict)

    def report(self, code: str, message: str, location: Location, severity: Severity = "error",
               group: str | None = None) -> None:
        """Report a problem; with ``group`` (e.g. the COCO category) an error also counts one input entity
        of that group as reported instead of converted, in the run's per-group counts."""
        self.problems.append(Problem(code, severity, message, location, group))

    def load_json(self, path: Path) -> tuple[bool, Any]:
        """(True, document) for a readable JSON file; (False, None) after reporting why it is not."""
        from predport.core import jsonio

        try:
            return True, jsonio.load(path)
        except (OSError, ValueError) as e:
            self.report("source.unreadable", f"cannot read JSON: {e}", Location(str(path)))
            return False, None

    def mine(self, title: str) -> bool:
        """False when another worker process converts the data unit titled ``title``: a reader may then skip
        building it (an optimisation only; the pipeline drops other workers' units anyway)."""
        return True


class Reader:
    """Base class for readers; subclasses set ``name`` and ``description`` and implement ``detect`` and
    ``read``."""

    name: str = ""
    description: str = ""

    def detect(self, path: Path) -> Detection:
        raise NotImplementedError

    def read(self, path: Path, ctx: ReadContext) -> Iterator[DataUnit]:
        raise NotImplementedError

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        """Add reader-specific command-line options (optional)."""
