"""The conformance kit: the checks every reader passes, ours and third-party ones, in one line of a test module.

    # tests/test_conformance.py of a plugin (pytest; the plugin installed, or listed in a plugins file)
    from predport.testing import Sample, conformance

    TestCsvBoxes = conformance("csvboxes", [Sample("tests/data/boxes.csv", "tests/data/ontology.json", entities=7)])

``conformance(reader, samples)`` returns a pytest test class; pytest collects it because its name starts with
``Test``. The reader is loaded the way ``predport`` loads it (built-ins, entry points, and ``plugins`` files), so
the kit also checks its registration. Each :class:`Sample` is an input the reader reads, an ontology it converts
against, and the number of input entities in it. The checks:

``test_declares``
    a name, a description, :class:`~predport.Capabilities`, and problem codes prefixed with the reader's name.
``test_detects_its_samples``
    automatic detection (no ``--from``) picks the reader for each of its samples.
``test_leaves_other_formats_alone``
    on every built-in reader's samples (:func:`samples`), detection still picks that reader: this one does not
    claim, or tie with, another format's files.
``test_detects_from_a_head``
    detection reads the first bytes of a file, not all of it: on a copy of each sample whose data files are grown
    to 64 MB (zeros after their content), ``detect`` allocates less than 8 MB, and still recognises it.
``test_output_follows_the_schema``
    every data unit read from a sample is valid against the internal JSON Schema.
``test_every_entity_converted_or_reported``
    converting a sample (``keep_going``) accounts for all ``entities``: the run's per-group counts of converted
    and reported entities add up to it. An entity is an object on one frame or a classification; records carry
    the input's class as ``source.group``, and problems about an entity that is not converted pass ``group=``
    (see :meth:`predport.ReadContext.report`). Every problem has a declared code and names its file.
``test_capabilities_are_honest``
    the samples' output holds only what the reader declares it carries (shapes, confidences, attributes, tracks,
    classifications), and shows everything it declares: each declared capability needs a sample that has it.
``test_reports_folders_it_cannot_list``
    for each folder of a sample that is a directory (the sample's own included), a run in which the system will
    not list that folder (as for a folder without read permission) still accounts for every entity, or reports
    ``source.unreadable`` at that folder: files are never left out without a word. Readers list folders with
    :func:`predport.files_under` and :func:`predport.listing`, which report it.
``test_survives_mutated_inputs``
    seeded mutations of each sample (files truncated, emptied, deleted; lines dropped, doubled, swapped; numbers
    replaced by NaN, huge or malformed values; bytes that are not UTF-8) never raise: the run reports problems,
    each with a declared code and its file. 24 per sample; ``PREDPORT_MUTATIONS=500`` explores further.

Built-in readers ship their samples in ``predport/samples/`` (``samples.yaml`` lists them); :func:`ontology` builds
an ontology for a sample from class names and shapes. The kit needs pytest (imported when ``conformance`` is
called).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from predport.core.problems import CODES
from predport.core.reader import Capabilities, Reader

SHAPES = frozenset({"bounding_box", "rotatable_bounding_box", "polygon", "polyline", "point", "bitmask", "skeleton"})
ATTRIBUTE_TYPES = {"radio", "checklist", "text", "numeric"}


@dataclass(frozen=True)
class Sample:
    """An input for the kit: ``path`` (a file or directory the reader reads), ``ontology`` (a JSON file, or an
    ontology dict), ``entities`` (how many input entities it holds: objects on one frame each, and
    classifications) and the reader's ``options`` (by destination name, as ``predport.convert`` takes them)."""

    path: Path | str
    ontology: Path | str | Mapping[str, Any]
    entities: int
    options: Mapping[str, Any] = field(default_factory=dict)
    reader: str | None = None  # whose sample it is (set for built-in samples)

    def __str__(self) -> str:
        return f"{self.reader + ':' if self.reader else ''}{Path(self.path).name}"


def _hash(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:8]


def ontology(objects: Mapping[str, str | Sequence[str]], *, attributes: Mapping[str, Sequence[Mapping[str, Any]]]
             | None = None, skeletons: Mapping[str, Sequence[str]] | None = None,
             classifications: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """An Encord ontology structure (``OntologyStructure.to_dict()`` form) with deterministic feature hashes.

    ``objects``: class name -> shape, or -> several shapes (one object per shape, all of that name).
    ``attributes``: class name -> attributes, each ``{"name", "type": radio|checklist|text|numeric, "options":
    [labels], "dynamic": bool}``. ``skeletons``: class name -> vertex names (for skeleton classes).
    ``classifications``: name -> one attribute of that name, as in ``attributes``."""
    attributes, skeletons = attributes or {}, skeletons or {}

    def attrs(owner: str, specs: Sequence[Mapping[str, Any]], prefix: str) -> list[dict[str, Any]]:
        out = []
        for k, spec in enumerate(specs, start=1):
            kind = spec.get("type", "radio")
            if kind not in ATTRIBUTE_TYPES:
                raise ValueError(f"attribute type {kind!r}: one of {sorted(ATTRIBUTE_TYPES)}")
            a: dict[str, Any] = {"id": f"{prefix}.{k}", "name": spec["name"], "type": kind,
                                 "featureNodeHash": _hash(owner, spec["name"]),
                                 "required": bool(spec.get("required", False)), "dynamic": bool(spec.get("dynamic"))}
            if kind in ("radio", "checklist"):
                a["options"] = [{"id": f"{prefix}.{k}.{j}", "label": str(o), "value": str(o).lower(),
                                 "featureNodeHash": _hash(owner, spec["name"], str(o))}
                                for j, o in enumerate(spec.get("options", []), start=1)]
            out.append(a)
        return out

    objs: list[dict[str, Any]] = []
    templates: list[dict[str, Any]] = []
    for name, shapes in objects.items():
        for shape in [shapes] if isinstance(shapes, str) else list(shapes):
            if shape not in SHAPES:
                raise ValueError(f"shape {shape!r}: one of {sorted(SHAPES)}")
            n = len(objs) + 1
            h = _hash(name, shape)
            objs.append({"id": str(n), "name": name, "color": "#000000", "shape": shape, "featureNodeHash": h,
                         "attributes": attrs(h, attributes.get(name, []), str(n))})
            if shape == "skeleton" and name in skeletons:
                templates.append({"template": {
                    "name": f"{name} template", "shape": "skeleton", "width": 100.0, "height": 100.0,
                    "feature_node_hash": h, "skeletonEdges": {},
                    "skeleton": {str(k): {"x": 0.0, "y": 0.0, "name": v, "color": "#000000", "value": v,
                                          "featureHash": _hash(h, v)} for k, v in enumerate(skeletons[name])}}})
    classes = [{"id": str(k), "featureNodeHash": _hash("classification", name),
                "attributes": attrs(_hash("classification", name), [{**spec, "name": name}], str(k))}
               for k, (name, spec) in enumerate((classifications or {}).items(), start=1)]
    out: dict[str, Any] = {"objects": objs, "classifications": classes}
    if templates:
        out["skeleton_templates"] = templates
    return out


@cache
def _listing() -> tuple[Path, dict[str, Any]]:
    import yaml

    base = Path(str(resources.files("predport").joinpath("samples")))
    return base, yaml.safe_load((base / "samples.yaml").read_text("utf-8"))


def samples(reader: str | None = None) -> list[Sample]:
    """The built-in readers' samples (of ``reader`` only, when given), from ``predport/samples/samples.yaml``;
    options naming a file or directory of the samples are given as its path."""
    base, listed = _listing()
    out = []
    for s in listed["samples"]:
        if reader is None or s["reader"] == reader:
            options = {k: str(base / v) if isinstance(v, str) and (base / v).exists() else v
                       for k, v in (s.get("options") or {}).items()}
            out.append(Sample(base / s["path"], base / s["ontology"], int(s["entities"]), options, s["reader"]))
    return out


def unshown(reader: str) -> dict[str, str]:
    """The capabilities of built-in reader ``reader`` that no sample shows, with why (``samples.yaml``)."""
    return dict(_listing()[1].get("unshown", {}).get(reader, {}))


def _ontology_file(sample: Sample, tmp: Path) -> Path:
    if isinstance(sample.ontology, Mapping):
        path = tmp / "ontology.json"
        path.write_text(json.dumps(sample.ontology))
        return path
    return Path(sample.ontology)


# -- what the output holds ----------------------------------------------------------------------------------

def carried(units: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    """What data units hold, in :class:`~predport.Capabilities` terms: {"shapes": {...}, "features": {...}}."""
    shapes: set[str] = set()
    features: set[str] = set()
    for u in units:
        for obj in u.get("objects") or []:
            frames = obj.get("frames") or []
            for f in frames:
                shapes.add(f.get("geometry", {}).get("shape"))
                if f.get("confidence") is not None:
                    features.add("confidence")
            if obj.get("answers"):
                features.add("attributes")
            if len({f.get("frame") for f in frames}) > 1:
                features.add("tracks")
        table = u.get("boxes")
        if table:
            shapes.add("bounding_box")
            if table.get("confidence") is not None:
                features.add("confidence")
        if u.get("classifications"):
            features.add("classifications")
    shapes.discard(None)  # type: ignore[arg-type]
    return {"shapes": shapes, "features": features}


def _declared(caps: Capabilities) -> set[str]:
    return {k for k in ("confidence", "attributes", "tracks", "classifications") if getattr(caps, k)}


# -- mutations ----------------------------------------------------------------------------------------------

_BINARY = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_BAD_NUMBERS = [b"nan", b"NaN", b"inf", b"-1e309", b"1e400", b"99999999999999999999999", b"-0", b"1,5", b"",
                b"0x10", b"\xff\xfe"]


def mutations(sample: Path, tmp: Path, seed: int = 0, count: int = 24) -> Iterator[tuple[str, Path]]:
    """``count`` mutated copies of ``sample`` (a file or a directory) under ``tmp``, each with what was done."""
    rnd = random.Random(seed)
    for k in range(count):
        root = tmp / f"m{k}"
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        copy = root / sample.name
        if sample.is_dir():
            shutil.copytree(sample, copy)
            files = sorted(p for p in copy.rglob("*") if p.is_file())
        else:
            shutil.copy2(sample, copy)
            files = [copy]
        if not files:
            continue
        text = [f for f in files if f.suffix.lower() not in _BINARY]
        target = rnd.choice(text if text and rnd.random() < 0.85 else files)  # (mostly the annotations)
        data = target.read_bytes()
        what, data2 = _mutate(data, rnd, sample.is_dir())
        if data2 is None:
            target.unlink()
        else:
            target.write_bytes(data2)
        yield f"{target.relative_to(root)}: {what}", copy


def _mutate(data: bytes, rnd: random.Random, deletable: bool) -> tuple[str, bytes | None]:
    lines = data.splitlines(keepends=True)
    numbers = list(_NUMBER.finditer(data))
    choices = ["truncate", "empty", "drop line", "double line", "swap lines", "not utf-8", "number", "number",
               "number", "garbage line"] + (["delete"] if deletable else [])
    kind = rnd.choice(choices)
    if kind == "truncate":
        cut = rnd.randrange(len(data)) if data else 0
        return f"truncated at byte {cut}", data[:cut]
    if kind == "empty":
        return "emptied", b""
    if kind == "delete":
        return "deleted", None
    if kind in ("drop line", "double line", "swap lines") and len(lines) > 1:
        i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
        if kind == "drop line":
            return f"line {i + 1} dropped", b"".join(lines[:i] + lines[i + 1:])
        if kind == "double line":
            return f"line {i + 1} doubled", b"".join(lines[:i + 1] + lines[i:])
        lines[i], lines[j] = lines[j], lines[i]
        return f"lines {i + 1} and {j + 1} swapped", b"".join(lines)
    if kind == "not utf-8":
        at = rnd.randrange(len(data) + 1)
        return f"bytes ff fe c3 28 at {at}", data[:at] + b"\xff\xfe\xc3\x28" + data[at:]
    if kind == "number" and numbers:
        m = rnd.choice(numbers)
        bad = rnd.choice(_BAD_NUMBERS)
        return f"number {m.group().decode()} at byte {m.start()} -> {bad!r}", data[:m.start()] + bad + data[m.end():]
    at = data.rfind(b"\n", 0, rnd.randrange(len(data) + 1)) + 1 if data else 0
    return f"a garbage line at byte {at}", data[:at] + b"{[<x y z>]} 1 2 3\n" + data[at:]


# -- the suite ------------------------------------------------------------------------------------------------

#: the size :func:`_grown` gives a sample's data files
BIG = 64 << 20
#: the files that hold a sample's records (not its side files: a names list or a sequence's .ini is read whole)
_DATA_SUFFIXES = frozenset({".json", ".jsonl", ".xml", ".txt", ".csv"})


def _unlistable(patch: Any, folder: Path) -> None:
    """Make the system refuse to list ``folder`` (``os.scandir`` and ``os.listdir`` raise EACCES for it, as for a
    folder without read permission; its entries can still be opened by name), through pytest's ``monkeypatch``."""
    import errno

    target = os.path.realpath(folder)

    def refusing(real: Any) -> Any:
        def call(path: Any = ".") -> Any:
            if not isinstance(path, int) and os.path.realpath(os.fsdecode(path)) == target:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
            return real(path)
        return call

    patch.setattr(os, "scandir", refusing(os.scandir))
    patch.setattr(os, "listdir", refusing(os.listdir))


def _grown(sample: Path, tmp: Path, size: int) -> Path:
    """A copy of ``sample`` (a file or a directory) whose data files are ``size`` bytes: their content, then
    zeros (sparse: nothing is written). Side files named like a names list keep their size."""
    dst = tmp / sample.name
    if sample.is_dir():
        shutil.copytree(sample, dst)
        files = [p for p in dst.rglob("*") if p.is_file() and p.suffix in _DATA_SUFFIXES and "names" not in p.name
                 and "classes" not in p.name]
    else:
        tmp.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sample, dst)
        files = [dst]
    for f in files:
        with open(f, "r+b") as out:
            out.truncate(max(size, out.seek(0, os.SEEK_END)))
    return dst


def conformance(reader: str, samples_: Sequence[Sample] | None = None, *,
                plugins: Sequence[str | Path] = (), unshown_: Mapping[str, str] | None = None,
                mutations_per_sample: int | None = None) -> type:
    """A pytest test class running the kit for the reader named ``reader`` on ``samples_`` (default: the
    built-in samples of that reader). ``plugins``: local plugins files to load besides the built-ins and
    the installed entry points. ``unshown_``: declared capabilities no sample can show, each with why (the
    kit then checks only that no sample exceeds them; built-in readers' come from ``samples.yaml``)."""
    import pytest

    import predport
    from predport import plugins as pluginmod

    # (PREDPORT_MUTATIONS=500 explores further, as FUZZ_EXPLORE does for the fuzz tests)
    tries = mutations_per_sample if mutations_per_sample is not None else int(os.environ.get("PREDPORT_MUTATIONS",
                                                                                            "24"))
    waived = dict(unshown_) if unshown_ is not None else unshown(reader) if samples_ is None else {}
    own = list(samples_) if samples_ is not None else samples(reader)
    own = [s if s.reader else Sample(s.path, s.ontology, s.entities, s.options, reader) for s in own]
    others = [s for s in samples() if s.reader != reader]
    folders = [s for s in own if Path(s.path).is_dir()]

    @cache
    def registry() -> Any:
        return pluginmod.load([Path(p) for p in plugins])

    def the_reader() -> Reader:
        return registry().reader(reader)  # type: ignore[no-any-return]

    def run(sample: Sample, path: Path, tmp: Path, write: bool) -> predport.Report:
        ont = _ontology_file(sample, tmp)
        if write:
            return predport.convert([path], ont, "conformance", tmp / "out", fmt=reader,
                                    options=dict(sample.options), keep_going=True, registry=registry())
        return predport.validate([path], ont, fmt=reader, options=dict(sample.options), registry=registry())

    def located(report: predport.Report, what: str) -> None:
        for p in report.problems:
            assert p.code in CODES, f"{what}: problem code {p.code!r} is not declared ({p})"
            assert p.location.file, f"{what}: a problem without its file: {p}"

    def accounted(report: predport.Report) -> int:
        """The entities a run converted, reported or filtered, over all groups."""
        return sum(g["converted"] + g["reported"] + g.get("filtered", 0) for g in report.per_group().values())

    class Conformance:
        """The reader conformance kit (see :mod:`predport.testing`)."""

        def test_declares(self) -> None:
            r = the_reader()
            assert r.name == reader and isinstance(r.description, str) and r.description.strip()
            caps = getattr(r, "capabilities", None)
            assert isinstance(caps, Capabilities), f"{reader}: declare capabilities = predport.Capabilities(...)"
            assert caps.shapes and caps.shapes <= SHAPES, f"{reader}: shapes {sorted(caps.shapes)} not all in " \
                                                          f"{sorted(SHAPES)}"
            for code, meaning in (getattr(r, "codes", None) or {}).items():
                assert code.startswith(reader + "."), f"{reader}: code {code!r} is not prefixed with {reader}."
                assert isinstance(meaning, str) and meaning.strip(), f"{reader}: code {code!r} has no meaning"

        @pytest.mark.parametrize("sample", own, ids=str)
        def test_detects_its_samples(self, sample: Sample) -> None:
            path = Path(sample.path)
            verdict = the_reader().detect(path)
            assert verdict.score > 0, f"{reader} does not recognise its sample {path}: {verdict.reason}"
            chosen = registry().detect(path)
            assert chosen.name == reader, f"detection picks {chosen.name!r} for {reader}'s sample {path}"

        @pytest.mark.parametrize("sample", others, ids=str)
        def test_leaves_other_formats_alone(self, sample: Sample) -> None:
            path = Path(sample.path)
            the_reader().detect(path)  # (must not raise)
            chosen = registry().detect(path)
            assert chosen.name == sample.reader, f"detection picks {chosen.name!r} for {sample.reader}'s " \
                                                 f"sample {path}"

        @pytest.mark.parametrize("sample", own, ids=str)
        def test_detects_from_a_head(self, sample: Sample, tmp_path: Path) -> None:
            import tracemalloc

            big = _grown(Path(sample.path), tmp_path / "big", BIG)
            tracemalloc.start()
            try:
                verdict = the_reader().detect(big)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < BIG // 8, f"{reader}'s detect took {peak / 2**20:.0f} MB on {sample}'s files grown to " \
                                    f"{BIG >> 20} MB: read the first KB (predport.file_head), not the whole file"
            assert verdict.score > 0, f"{reader} does not recognise its sample once grown: {verdict.reason}"

        @pytest.mark.parametrize("sample", own, ids=str)
        def test_output_follows_the_schema(self, sample: Sample, tmp_path: Path) -> None:
            from predport.core import schema

            problems = predport.Problems()
            units = list(predport.read([sample.path], _ontology_file(sample, tmp_path), fmt=reader,
                                       options=dict(sample.options), problems=problems, registry=registry()))
            assert units, f"{reader} read no data unit from {sample.path}"
            for u in units:
                json.dumps(u)
                errs = schema.errors(u)
                assert not errs, f"{u.get('title')!r}: {errs[:3]}"

        @pytest.mark.parametrize("sample", own, ids=str)
        def test_every_entity_converted_or_reported(self, sample: Sample, tmp_path: Path) -> None:
            report = run(sample, Path(sample.path), tmp_path, write=True)
            located(report, str(sample))
            seen = accounted(report)
            assert seen == sample.entities, (
                f"{sample}: {sample.entities} entities, the run accounts for {seen} (converted and reported per "
                f"group: {report.per_group()}). Records carry source.group; problems about an entity pass group=")

        def test_capabilities_are_honest(self, tmp_path: Path) -> None:
            caps = the_reader().capabilities  # type: ignore[attr-defined]
            assert isinstance(caps, Capabilities)
            shapes: set[str] = set()
            features: set[str] = set()
            for sample in own:
                units = list(predport.read([sample.path], _ontology_file(sample, tmp_path), fmt=reader,
                                           options=dict(sample.options), problems=predport.Problems(),
                                           registry=registry()))
                found = carried(units)
                assert found["shapes"] <= caps.shapes, f"{sample} yields shapes {sorted(found['shapes'])}, " \
                                                       f"declared {sorted(caps.shapes)}"
                assert found["features"] <= _declared(caps), f"{sample} carries {sorted(found['features'])}, " \
                                                             f"declared {sorted(_declared(caps))}"
                shapes |= found["shapes"]
                features |= found["features"]
            missing = sorted(((caps.shapes - shapes) | (_declared(caps) - features)) - waived.keys())
            assert not missing, f"{reader} declares {missing}, which no sample shows: add a sample that has them"
            assert not waived.keys() & (shapes | features), f"{reader}: a sample shows what unshown_ waives"

        if folders:  # (a reader whose samples are all files has no such test)
            @pytest.mark.parametrize("sample", folders, ids=str)
            def test_reports_folders_it_cannot_list(self, sample: Sample, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
                root = Path(sample.path)
                units = run(sample, root, tmp_path / "all", write=True).units
                for k, folder in enumerate([root, *sorted(p for p in root.rglob("*") if p.is_dir())]):
                    with monkeypatch.context() as m:
                        _unlistable(m, folder)
                        report = run(sample, root, tmp_path / str(k), write=True)
                    located(report, f"{sample}, {folder} unlistable")
                    seen = accounted(report)
                    told = [p for p in report.problems if p.code == "source.unreadable"
                            and os.path.realpath(p.location.file) == os.path.realpath(folder)]
                    assert (seen == sample.entities and report.units == units) or told, (
                        f"{sample}: with {folder} unlistable the run accounts for {seen} of {sample.entities} "
                        f"entities and writes {report.units} of {units} data units, and it does not report the "
                        "folder: list folders with predport.files_under / predport.listing")

        @pytest.mark.parametrize("sample", own, ids=str)
        def test_survives_mutated_inputs(self, sample: Sample, tmp_path: Path) -> None:
            seed = int(hashlib.sha1(str(sample).encode()).hexdigest()[:8], 16)
            for what, path in mutations(Path(sample.path), tmp_path / "m", seed, tries):
                try:
                    the_reader().detect(path)
                    report = run(sample, path, tmp_path, write=False)
                except Exception as e:
                    raise AssertionError(f"{sample}, mutated ({what}): {type(e).__name__}: {e}") from e
                located(report, f"{sample}, mutated ({what})")

    Conformance.__name__ = Conformance.__qualname__ = f"Conformance_{reader}"
    return Conformance
