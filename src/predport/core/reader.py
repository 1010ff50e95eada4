"""What a reader is (:class:`Reader`; the full contract is in :mod:`predport.hookspecs`) and what it is given
(:class:`ReadContext`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from predport.core.maps import ClassMap, ImageMap, Resolved
from predport.core.model import DataUnit, Ref
from predport.core.ontology import Ontology
from predport.core.problems import Location, PredportError, Problem, Problems, Severity

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Detection:
    """A reader's verdict on an input: ``score`` in [0, 1] (0 = cannot read it) and why."""

    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a reader's output can hold (``predport formats`` shows it; the conformance kit checks it). Before
    converting, predport warns when the ontology asks for something the chosen reader cannot carry."""

    shapes: frozenset[str]  # the geometry shapes it can yield
    confidence: bool = False  # per-object confidences from the input (else every confidence is 1.0)
    attributes: bool = False  # answers to object attributes
    tracks: bool = False  # instances over several frames (videos)
    classifications: bool = False  # frame-level classifications

    def __str__(self) -> str:
        extra = [k for k in ("confidence", "attributes", "tracks", "classifications") if getattr(self, k)]
        return ", ".join(sorted(self.shapes)) + ("; " + ", ".join(extra) if extra else "")


@runtime_checkable
class Reader(Protocol):
    """The reader contract: any object with these members is a reader (no base class is needed).

    Optional members, looked up with ``getattr``: ``codes`` (a mapping of the problem codes the reader emits,
    beyond the core's, to their meanings), ``add_arguments(group)`` (the reader's own command-line options) and
    ``capabilities`` (a :class:`Capabilities`: what its output can hold). :class:`BaseReader` provides them.
    See :mod:`predport.hookspecs` for what each member must do.
    """

    name: str
    description: str

    def detect(self, path: Path) -> Detection: ...

    def read(self, path: Path, ctx: ReadContext) -> Iterator[DataUnit]: ...


class BaseReader:
    """A convenience base class for readers: no options and no codes of its own until a subclass adds them.
    Subclasses set ``name`` and ``description`` and implement ``detect`` and ``read``."""

    name: str = ""
    description: str = ""
    #: problem codes this reader emits beyond the core's (code -> meaning), prefixed with its name
    codes: ClassVar[Mapping[str, str]] = {}
    #: what the reader's output can hold (None: not declared)
    capabilities: ClassVar[Capabilities | None] = None

    def detect(self, path: Path) -> Detection:
        raise NotImplementedError

    def read(self, path: Path, ctx: ReadContext) -> Iterator[DataUnit]:
        raise NotImplementedError

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        """Add the reader's own command-line options to ``group`` (their values reach ``read`` as
        ``ctx.options``). Another reader may offer an option of the same name: each gets its own value."""


@dataclass
class Shared:
    """The documents parsed before worker processes fork, which they share copy-on-write. Every process holds
    them until the workers are done: freed when a reader is done with them, their objects' reference counts
    would be written, copying every page of them first (0.35 CPU-s with 2 workers on the bench's 500k boxes).
    After the fork ``open`` is False: documents parsed later are each process's own, freed as usual."""

    documents: list[Any] = field(default_factory=list)
    open: bool = True


@dataclass
class ReadContext:
    """Given to :meth:`Reader.read`: the target ontology, the reader's options, the core's class map and the
    problem sink."""

    ontology: Ontology
    problems: Problems = field(default_factory=Problems)
    #: this reader's options: its own (declared with ``add_arguments``; defaults filled in) by destination name
    options: dict[str, Any] = field(default_factory=dict)
    #: the run's ``--class-map`` (see :mod:`predport.core.maps`)
    classes: ClassMap = field(default_factory=ClassMap)
    #: the run's ``--image-map``, applied by the core to every unit the reader yields
    images: ImageMap | None = None
    #: set by the pipeline when work is shared between processes: whether this one converts a title
    shard: Callable[[str], bool] | None = None
    #: True once the reader resolved a class through this context: the core then does not map its class
    #: references again
    resolved_classes: bool = False
    #: set by the pipeline while it parses the input that worker processes will share: ``load_json`` puts each
    #: document there too, so that a worker never frees it (see :class:`Shared`)
    shared: Shared | None = field(default=None, repr=False, compare=False)
    #: the run's worker processes (``--workers``): a reader may parse a big source in as many parts at once
    #: (:meth:`decode_parts`)
    workers: int = 1
    #: set by the pipeline when workers may share the units by ranges of titles (see :meth:`expect`)
    plan: Callable[[Sequence[str], Sequence[int] | None, bool], None] | None = field(default=None, repr=False,
                                                                               compare=False)
    #: what a reader keeps for the whole run, for all its sources: the parsed and indexed file that every source
    #: refers to (the COCO reader's ``--images``), say, instead of once per source. Every reader's context of the
    #: run shares the one dict, so a key names the reader and what the value is made of (a file's path, size and
    #: modification time: the value is stale when they change). With workers taking whole sources, each process
    #: shares it between the sources it takes.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def report(self, code: str, message: str, location: Location, severity: Severity = "error",
               group: str | None = None, entities: int | None = None) -> None:
        """Report a problem. With ``group`` (the input's class, e.g. the COCO category) it also counts input
        entities of that group as reported instead of converted, in the run's per-group counts: ``entities``
        of them (default: 1 for an error, which leaves its entity out, else 0). A note that N entities were
        left out on purpose (MOT rows flagged 0, KITTI DontCare regions) passes ``entities=N``."""
        self.problems.append(Problem(code, severity, message, location, group,
                                     -1 if entities is None else entities))

    def unlisted(self, folder: Path, error: OSError) -> None:
        """Report a folder the system will not list (once a run): the files in it are not read. The core calls
        it for every folder that :func:`files_under` or :func:`listing` cannot list while a reader reads (not
        while it detects: detection cannot report)."""
        said = self.memo.setdefault("predport.unlisted", set())
        if str(folder) not in said:
            said.add(str(folder))
            self.report("source.unreadable", f"cannot list it ({error.strerror or error}): no file in it is read",
                        Location(str(folder)))

    def load_json(self, path: Path) -> tuple[bool, Any]:
        """(True, document) for a readable JSON file; (False, None) after reporting why it is not."""
        from predport.core import jsonio

        try:
            doc = jsonio.load(path)
        except (OSError, ValueError) as e:
            self.report("source.unreadable", f"cannot read JSON: {e}", Location(str(path)))
            return False, None
        self.keep(doc)
        return True, doc

    def decode(self, path: Path, kind: Any) -> Any:
        """The file's JSON decoded straight into ``kind``, a msgspec type, and checked against it in the same
        C pass; None when it does not fit (or is not JSON, or cannot be read). Nothing is reported: the reader
        then reads the file with ``load_json``, as any other. Nor is the result held: a reader that keeps it
        passes it to :meth:`keep`.

        For a reader's fast path on the usual shape of its format: the bench's 500k plain COCO results decode
        into typed records in 0.27 s, where orjson takes 0.40 s to build dicts whose types then need their own
        passes. ``kind`` must admit only what orjson parses to the same values (ints within +-2**53: beyond
        2**64 orjson makes floats), so that both routes see the same input."""
        from predport.core import jsonio

        return jsonio.decode(path, kind)

    def decode_parts(self, path: Path, kind: Any, extract: Callable[[Any], T], part_bytes: int = 4 << 20
                     ) -> list[T] | None:
        """:meth:`decode` for a file that is one JSON array, in parts at once: the array is cut at element
        boundaries into pieces of at least ``part_bytes`` (up to 8 for each of :attr:`workers` processes), each
        decoded into ``kind`` (a msgspec list type) and given to ``extract``, by :attr:`workers` processes (this
        one and others forked for it) that each take the next piece when they are free; the extracts come back in
        file order, pickled (so they should be compact: numpy columns, not records; never None). None, as for
        :meth:`decode`, when the file does not fit ``kind``. When a piece does not (a cut that fell inside a
        string, say, which no piece of a valid array can end in), the whole file is decoded here.

        Why: the parse of one big file is the serial part of a run with workers, before they fork. The bench's
        500k plain COCO results (72 MB) decode and become columns in 0.39-0.49 s in two halves, against 0.54-0.66 s
        whole (three runs each, on the 2-core development VM: two processes do not quite make twice the speed
        there, and the cut, the fork and the columns' way back cost 0.05-0.08 s). In 16 pieces taken as the
        processes are free: 0.37-0.43 s, against 0.38-0.55 s in two halves (six interleaved runs), as one
        process often runs slower than the other there."""
        import os

        from predport.core import jsonio
        from predport.core.parallel import fork_map

        _UNFREED.pop(os.getpid(), None)  # (the records of the file before, this process's: freed now)
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed below; forked processes read their pieces from it)
        except OSError:
            return None
        with f:
            fd = f.fileno()
            before = os.fstat(fd)
            if self.workers > 1 and before.st_size >= 2 * part_bytes:
                # (more pieces than processes: each takes the next one when it is free)
                cuts = jsonio.split_file(fd, before.st_size,
                                         min(PIECES_PER_WORKER * self.workers, before.st_size // part_bytes))
                if len(cuts) > 1:
                    room = before.st_size * 3 // 2  # (room for a process's columns: 56 bytes a record of 45+)
                    here = os.getpid()
                    buffer = bytearray()  # (each process's own, after the fork: a piece is read into it)

                    def part(k: int) -> T | None:
                        view = jsonio.read_piece(fd, cuts, k, buffer)
                        if view is None:
                            return None
                        try:
                            records = jsonio.decode_bytes(view, kind)
                        finally:
                            view.release()
                        if os.getpid() != here or EXITS_UNFREED:
                            # records left for the process's exit to free: a forked one's, after its extract is
                            # sent (freeing 250k records one by one took 35 ms, which this process waited for),
                            # and this one's when the command exits without freeing anything
                            _unfreed().append(records)
                        return None if records is None else extract(records)

                    try:
                        parts = fork_map(part, range(len(cuts)), room, self.workers)
                    except PredportError as e:  # (a process that failed or died: which file it was parsing)
                        raise PredportError(f"{path}: {e}") from e
                    after = os.fstat(fd)
                    if all(p is not None for p in parts) and (after.st_size, after.st_mtime_ns) == (
                            before.st_size, before.st_mtime_ns):  # (else it changed meanwhile: read it whole)
                        return parts  # type: ignore[return-value]
        try:
            data = jsonio.read_buffer(path)
        except OSError:
            return None
        whole = jsonio.decode_bytes(data, kind)
        data = bytearray()  # (the file's bytes freed before the records are extracted)
        if whole is not None and EXITS_UNFREED:
            _unfreed().append(whole)  # (500k records took 70 ms to free)
        return None if whole is None else [extract(whole)]

    def keep(self, doc: Any) -> None:
        """Hold a parsed document for the run when worker processes will share it (see :class:`Shared`)."""
        if self.shared is not None and self.shared.open:
            self.shared.documents.append(doc)

    def expect(self, titles: Sequence[str], weights: Sequence[int] | None = None, cheap: bool = False) -> None:
        """Announce, before yielding any, the titles of the data units this source will yield (``weights``: how
        much work each is to convert, e.g. its boxes). With workers, the pipeline may then give each a contiguous
        range of titles of about equal weight; which process converts which unit is all it changes. Optional:
        without it, units are shared by a hash of their titles.

        ``cheap``: building a unit costs little next to converting it (a range of rows of a shared table, say).
        The units around each boundary between two ranges then go to whichever of the two processes is free first,
        and both build them (``mine`` is True in both). Not for a reader whose own work per unit is the larger
        part (decoding and tracing masks): both would do it."""
        if self.plan is not None and self.images is None:  # (an image map renames the titles: not these)
            self.plan(titles, weights, cheap)

    def mine(self, title: str) -> bool:
        """False when another worker process converts the data unit titled ``title``: a reader may then skip
        building it (an optimisation only; the pipeline drops other workers' units anyway)."""
        if self.shard is None or self.images is not None:  # (an image map may rename it: keep it)
            return True
        return self.shard(title)

    def resolve_class(self, label: str | None, ident: Any = None, shapes: Sequence[str] = ()) -> Resolved:
        """The ontology object for an input class -- through ``--class-map`` by the input's class id
        (``ident``), then by its name (``label``), else by exact name -- or ``(code, message)`` saying why
        there is none, with the near miss when there is one. For readers that need the target's shape.
        ``shapes``: the shapes the input's geometry can become, preferred first: when several ontology objects
        have the name, the one of the first shape that only one of them has is chosen."""
        self.resolved_classes = True
        return self.classes.resolve(self.ontology, label, ident, shapes)

    def class_ref(self, label: str, ident: Any = None) -> Ref:
        """The ``class`` reference for a record of input class ``label`` (id ``ident``): ``--class-map``
        applied. Readers whose input has class ids use it; the others may simply write ``{"name": label}``."""
        self.resolved_classes = True
        return self.classes.ref(self.ontology, label, ident)  # type: ignore[return-value]


def file_head(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` bytes of a file: what a reader's ``detect`` looks at. Never the whole file: detection
    runs every reader on every source, and one that read a 72 MB source whole cost the bench 58 ms (and would
    hold a 10 GB source in memory). Raises OSError as ``open`` does."""
    with open(path, "rb") as f:
        return f.read(size)


def head_lines(path: Path, count: int = 5, size: int = 65536) -> list[str]:
    """The first ``count`` lines of a text file that are not blank, stripped, decoded as UTF-8 (an undecodable
    byte replaced), from its first ``size`` bytes; a line that ``size`` cuts short is left out, unless it is the
    only one. Raises OSError as ``open`` does."""
    head = file_head(path, size)
    if len(head) == size and b"\n" in head:  # (the file goes on: its last line here is cut)
        head = head[:head.rindex(b"\n")]
    lines = (line.strip() for line in head.decode("utf-8", "replace").splitlines())
    return [line for line in lines if line][:count]


#: what is told of a folder that cannot be listed while a reader reads: the pipeline sets it to the reader's
#: :meth:`ReadContext.unlisted` around each ``read`` (a context variable: each thread of a Dask worker has its own)
UNLISTED: ContextVar[Callable[[Path, OSError], None] | None] = ContextVar("predport_unlisted", default=None)


def _tell_unlisted(folder: str | Path, error: OSError, unlisted: Callable[[Path, OSError], None] | None) -> None:
    tell = unlisted or UNLISTED.get()
    if tell is not None:
        tell(Path(folder), error)


def files_under(root: Path, match: Callable[[str], bool], limit: int | None = None, *,
                unlisted: Callable[[Path, OSError], None] | None = None) -> list[Path]:
    """The files below ``root`` (recursively) whose names ``match``, in the order ``sorted(root.rglob(...))``
    gives them, and only the first ``limit`` of them when it is given. Like ``rglob``, it does not descend into a
    symlinked folder; unlike it, only files are taken (a folder named ``x.json`` is not one), and a folder the
    system will not list (or an entry whose type it will not tell) is not passed over without a word: it is given
    to ``unlisted`` (folder, error), by default the reading reader's :meth:`ReadContext.unlisted`, which reports
    it. (Outside a read, in detection, nothing is told.)

    Why: each directory is listed and sorted by name as the walk reaches it, and the walk stops at ``limit``,
    where ``sorted(rglob())[:limit]`` made a ``Path`` of every entry of the whole tree and sorted them all. A
    detector looks at a few files: on a YOLO dataset of 10,000 files, detecting its format took 0.2 s, most of it
    other readers listing every file to look at their first three."""
    import os

    out: list[Path] = []

    def walk(folder: str) -> bool:  # (True: the limit is reached)
        try:
            with os.scandir(folder) as found:
                entries = sorted(found, key=lambda e: e.name)
        except OSError as err:  # (rglob passes over a folder it may not list, or one removed meanwhile)
            _tell_unlisted(folder, err, unlisted)
            return False
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if walk(e.path):
                        return True
                elif match(e.name) and e.is_file():
                    out.append(Path(e.path))
                    if limit is not None and len(out) >= limit:
                        return True
            except OSError as err:
                _tell_unlisted(e.path, err, unlisted)
        return False

    walk(str(root))
    return out


def listing(folder: Path, *, unlisted: Callable[[Path, OSError], None] | None = None) -> list[tuple[str, bool]]:
    """A folder's entries by name, sorted, each with whether it is a folder (a symlink to one is, as for
    ``Path.is_dir``); [] for a folder the system will not list, which is given to ``unlisted`` as by
    :func:`files_under`. One ``os.scandir``: no ``Path`` per entry, and no stat where the directory says the
    type."""
    import os

    out = []
    try:
        with os.scandir(folder) as entries:
            for e in entries:
                try:
                    out.append((e.name, e.is_dir()))
                except OSError:
                    out.append((e.name, False))
    except OSError as err:
        _tell_unlisted(folder, err, unlisted)
        return []
    return sorted(out)


#: how many pieces :meth:`ReadContext.decode_parts` cuts a file into per process (at most)
PIECES_PER_WORKER = 8
#: per process (by pid), the records :meth:`ReadContext.decode_parts` leaves for its exit to free: a process forked
#: to decode pieces, until it exits; this one's last file's when it exits without freeing them
#: (:data:`EXITS_UNFREED`), those of the file before freed as the next is decoded (a run's memory holds one file's
#: records, not all of them). A forked process never frees what it inherited: that would write the reference counts
#: of the parent's records, and so copy their pages first.
_UNFREED: dict[int, list[Any]] = {}
#: set by the command (:func:`predport.cli.run`), which exits without the interpreter's teardown: what is left for
#: the exit to free is never freed, one object at a time (a library caller's records are freed as the run goes)
EXITS_UNFREED = False


def _unfreed() -> list[Any]:
    import os

    return _UNFREED.setdefault(os.getpid(), [])
