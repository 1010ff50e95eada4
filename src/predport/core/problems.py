"""Data problems: collected, never raised one at a time.

A :class:`Problem` is one thing wrong (or worth saying) about the user's data. Every check in predport
*appends* problems to a :class:`Problems` collection and carries on, so one run reports everything that is
wrong with an input, each problem with:

* a stable ``code`` (dotted, lower case; listed in :data:`CODES` with what it means; codes are never
  renamed, so scripts may rely on them),
* a ``severity``: ``error`` blocks writing, ``warning`` and ``info`` never do,
* a :class:`Location`: the source file and, inside it, a JSON pointer (RFC 6901), a 1-based line number,
  or a record index -- whatever the format has. Text output renders it as ``file#pointer`` (or
  ``file:line``).

Exceptions are reserved for "cannot proceed" (:class:`PredportError`: an unreadable ontology, an unknown
format, a broken plugin); they are always chained to their cause.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


class PredportError(Exception):
    """predport cannot proceed (bad usage, unreadable ontology, unknown format, broken plugin)."""


#: The core's problem codes, with their meanings. Readers declare their own (``Reader.codes``, prefixed with
#: the reader's name, e.g. ``coco.traced``) and upload declares its in :mod:`predport.core.upload`; all of them
#: are in :data:`CODES`.
CORE_CODES: dict[str, str] = {
    # input that cannot be read
    "source.unreadable": "a source file cannot be opened or parsed, or a folder of sources cannot be listed",
    "source.unsupported": "a record of a kind this reader does not convert (e.g. a DICOM label row)",
    "source.invalid": "a source record does not have the structure its format requires",
    # schema
    "schema.invalid": "the internal record breaks the JSON Schema (schemas/data_unit.schema.json)",
    # ontology references
    "class.unknown": "the object class is not in the ontology (a near miss is suggested)",
    "class.ambiguous": "the class name matches several ontology objects; use the feature hash",
    "class.name_mismatch": "both a name and a feature hash were given and they disagree",
    "class.shape_mismatch": "the geometry does not fit the shape of the ontology class",
    "classification.unknown": "the classification is not in the ontology",
    "classification.overlap": "the same classification is on overlapping frames of one data unit",
    "classification.no_answer": "a classification instance has no answer",
    "attribute.unknown": "the attribute does not belong to that object or classification",
    "attribute.ambiguous": "the attribute name matches several attributes; use the feature hash",
    "option.unknown": "the option is not an option of that attribute",
    "answer.type_mismatch": "the answer's kind (radio/checklist/text/numeric) differs from the attribute's type",
    "answer.parent_not_selected": "a nested answer whose parent option is not selected",
    "answer.duplicate": "the same attribute is answered twice (on overlapping frames for dynamic answers)",
    "answer.dynamic_on_image": "a dynamic (per-frame) answer on a still image or image group (kept, as Encord does)",
    "answer.frames_on_static": "frame ranges given for an attribute that is not dynamic",
    "answer.frames_without_object": "a dynamic answer on frames where the object has no geometry",
    # geometry
    "geometry.not_finite": "a coordinate is NaN or infinite",
    "geometry.out_of_frame": "a coordinate lies outside the frame ([0, 1] after normalisation)",
    "geometry.degenerate": "zero-area box, polygon ring with < 3 points, polyline with < 2 points, ...",
    "geometry.converted": "the input's shape was given to a class of another shape and converted (a box as its "
                          "polygon, a circle as a polygon, a mask traced to polygons, with the IoU)",
    "bitmask.size_mismatch": "the bitmask's size differs from the frame's pixel size",
    "bitmask.invalid_rle": "the bitmask RLE string does not decode to exactly width x height pixels",
    "skeleton.unknown_vertex": "a skeleton vertex that is not in the class's template",
    "skeleton.no_template": "the ontology has no template for a skeleton class: vertices are not checked",
    "skeleton.duplicate_vertex": "the same skeleton vertex twice in one instance",
    # frames and instances
    "frame.out_of_range": "a frame number outside the data unit",
    "frame.duplicate": "one object instance has two geometries on the same frame",
    "frame.size_unknown": "the pixel size needed for this record is unknown",
    "frame.too_large": "the frame has more pixels than predport decodes masks for (2^30)",
    "confidence.out_of_range": "a confidence that is not a finite number in [0, 1]",
    "instance.conflicting_class": "one instance id used with different classes in one data unit",
    "unit.duplicate": "two data units with the same title",
    "unit.repeated": "data units that several sources yield, all but one without records (e.g. shards of COCO "
                     "results sharing one --images file): written once",
    "unit.unmapped": "--image-map is given and has no entry for this data unit (its records are not converted)",
    "boxes.invalid": "a box table whose columns differ in length or whose class indices point nowhere",
    "unit.frame_count_unknown": "the video's frame count is unknown: frame numbers are not range-checked",
    # run level
    "reader.cannot_carry": "the ontology asks for what the chosen reader cannot carry (e.g. required attributes)",
    "branch.invalid": "the branch name is not a valid prediction branch name",
    "output.dropped": "fields a label row cannot hold (COCO ground truth's area, iscrowd, bbox) were not written",
    "output.stale": "a staging directory left by an earlier run whose process is gone was removed (or restored); "
                    "or a remote parts directory whose Dask driver stopped its heartbeat",
}

_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


class CodeBook(Mapping[str, str]):
    """Every problem code with its meaning: the core's, upload's, every built-in reader's, and those of every
    third-party reader loaded so far (a plugin registry adds its readers' codes as it loads them).

    Codes are declared, never registered as a side effect of an import: the core in :data:`CORE_CODES`,
    upload in ``predport.core.upload.CODES``, a reader in its ``codes`` attribute. Reading the book for the
    first time loads the built-in readers, so it is complete right after ``import predport``. A code is
    dotted lower case; two declarations of one code must agree on its meaning.
    """

    def __init__(self, core: Mapping[str, str]) -> None:
        self._codes: dict[str, str] = {}
        self._origins: dict[str, str] = {}
        self._complete = False
        self.declare(core, "predport")

    def declare(self, codes: Mapping[str, str], origin: str) -> None:
        """Add ``codes`` (code -> meaning) declared by ``origin``; a malformed code or a second, different
        meaning of a known code raises :class:`PredportError` naming both origins."""
        if not isinstance(codes, Mapping):
            raise PredportError(f"{origin}: codes must be a mapping of code -> meaning, not {type(codes).__name__}")
        for code, meaning in codes.items():
            if not (isinstance(code, str) and _CODE.fullmatch(code)):
                raise PredportError(f"{origin}: problem code {code!r} is not dotted lower case (like 'coco.traced')")
            if not (isinstance(meaning, str) and meaning.strip()):
                raise PredportError(f"{origin}: problem code {code!r} needs a meaning (a non-empty string)")
            known = self._codes.get(code)
            if known is not None and known != meaning:
                raise PredportError(f"{origin} declares problem code {code!r} as {meaning!r}, but "
                                    f"{self._origins[code]} declares it as {known!r}")
            if known is None:
                self._codes[code] = meaning
                self._origins[code] = origin

    def origin(self, code: str) -> str:
        """Who declared ``code``: ``predport``, ``predport.core.upload`` or a reader's plugin."""
        self._load()
        return self._origins[code]

    def _load(self) -> None:
        if self._complete:
            return
        self._complete = True
        from predport import plugins
        from predport.core import upload

        self.declare(upload.CODES, "predport.core.upload")
        plugins.load(entry_points=False)  # the built-in readers: they declare theirs as they are loaded

    def __getitem__(self, code: str) -> str:
        self._load()
        return self._codes[code]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(dict(self._codes))

    def __len__(self) -> int:
        self._load()
        return len(self._codes)

    def __contains__(self, code: object) -> bool:
        self._load()
        return code in self._codes


def escape_token(token: str | int) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    """Build a JSON pointer from unescaped tokens: ``pointer("a/b", 3) == "/a~1b/3"``."""
    return "".join("/" + escape_token(t) for t in tokens)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file and a place inside it.

    :param file: the source file as the user named it (or ``<ontology>``, ``<command line>`` ...).
    :param pointer: a JSON pointer into that file (``/1532/bbox``), for JSON inputs.
    :param line: a 1-based line number, for text inputs.
    :param record: a record index or id, where neither pointer nor line apply.
    :param field: the path inside predport's internal record (``frames/0/geometry/w``) when the problem
        concerns a normalised value that has no exact counterpart in the source.
    """

    file: str = ""
    pointer: str | None = None
    line: int | None = None
    record: int | str | None = None
    field: str | None = None

    @classmethod
    def from_source(cls, source: Mapping[str, Any] | None, field: str | None = None) -> Location:
        if not source or not isinstance(source, Mapping):  # (a broken record's source locates nothing)
            return cls(field=field)
        return cls(source.get("file", ""), source.get("pointer"), source.get("line"), source.get("record"), field)

    def __str__(self) -> str:
        text = self.file or "<input>"
        if self.pointer:
            text += "#" + self.pointer
        elif self.line is not None:
            text += f":{self.line}"
        elif self.record is not None:
            text += f"#record={self.record}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k in ("file", "pointer", "line", "record", "field") if (v := getattr(self, k)) is not None}


@dataclass(frozen=True, slots=True)
class Problem:
    """One located data problem. ``str(problem)`` is ``file#pointer: message [code]``."""

    code: str
    severity: Severity
    message: str
    location: Location = field(default_factory=Location)
    #: the input's own category of the entity (e.g. a COCO category): the problem counts ``entities`` input
    #: entities of it as reported instead of converted, in the run's per-group counts
    group: str | None = field(default=None, compare=False)
    #: how many input entities of ``group`` the problem stands for, not converted (an error: 1; a note that
    #: says that N entities were left out on purpose: N; a note about an entity that was converted: 0)
    entities: int = field(default=-1, compare=False)

    def __post_init__(self) -> None:
        if self.entities < 0:  # (frozen: set through object.__setattr__)
            object.__setattr__(self, "entities", 1 if self.severity == "error" else 0)

    def __str__(self) -> str:
        where = f" (at {self.location.field})" if self.location.field else ""
        tag = "" if self.severity == "error" else f"{self.severity}: "
        return f"{self.location}: {tag}{self.message}{where} [{self.code}]"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message,
                "location": self.location.as_dict()}


class Problems:
    """An append-only collection of problems with counts by severity and by code."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.by_code: Counter[str] = Counter()
        self.errors = 0

    def add(self, code: str, message: str, location: Location | None = None,
            severity: Severity = "error") -> None:
        self.append(Problem(code, severity, message, location or Location()))

    def append(self, problem: Problem) -> None:
        self.items.append(problem)
        self.by_code[problem.code] += 1
        if problem.severity == "error":
            self.errors += 1

    def extend(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            self.append(p)

    def truncate(self, n: int) -> list[Problem]:
        """Remove the problems after the first ``n`` and return them (the counts follow)."""
        removed, self.items = self.items[n:], self.items[:n]
        for p in removed:
            self.by_code[p.code] -= 1
            if not self.by_code[p.code]:
                del self.by_code[p.code]
            if p.severity == "error":
                self.errors -= 1
        return removed

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ok(self) -> bool:
        return self.errors == 0


#: Every problem code predport and the loaded readers emit, with its meaning (see :class:`CodeBook`).
CODES = CodeBook(CORE_CODES)
