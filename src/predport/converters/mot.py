"""Reader ``mot``: MOTChallenge sequences (``gt/gt.txt`` or ``det/det.txt``, with ``seqinfo.ini`` or ``img1/``),
and tracker results (one ``<sequence>.txt`` per sequence).

``frame, id, left, top, width, height, c7, class, visibility`` (comma separated; results have ``x, y, z``
after c7). Frames are 1-based: MOT frame f is frame f - 1. A track id is an instance (every row of id -1 is an
instance of its own). Column 7 is a confidence, except in ``gt.txt``, where it is the "consider" flag: rows
flagged 0 are not converted (counted in a note). Classes: ``gt/labels.txt`` (class id k is its line k) where
there is one, else MOTChallenge's classes (1 pedestrian, 2 person on vehicle, 3 car, ...); a row without a
class is a pedestrian. The data unit is a video titled by the sequence's name (``seqinfo.ini``, else its
folder); size, length and frame rate from ``seqinfo.ini``, else from ``img1/``. Visibility becomes the answer
to an attribute ``visibility`` where the class has one.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import predport
from predport.core import answers
from predport.core import images as imagemod
from predport.core.model import DataUnit
from predport.core.ontology import OntologyObject
from predport.core.problems import Location
from predport.core.reader import listing

#: the shapes a box can become, preferred first (to choose among ontology objects of one name)
BOXES = ("bounding_box", "rotatable_bounding_box", "polygon")

CLASSES = ["pedestrian", "person on vehicle", "car", "bicycle", "motorbike", "non motorized vehicle",
           "static person", "distractor", "occluder", "occluder on the ground", "occluder full", "reflection",
           "crowd"]


class MotReader(predport.BaseReader):
    name = "mot"
    description = "MOTChallenge tracks: gt/gt.txt, det/det.txt or tracker results, with seqinfo.ini or img1/"
    capabilities = predport.Capabilities(frozenset({"bounding_box"}), confidence=True, attributes=True, tracks=True)
    codes: ClassVar[Mapping[str, str]] = {
        "mot.bad_row": "a row that is not frame, id and a box in numbers",
        "mot.not_carried": "gt rows flagged 0 (not to be considered), and visibilities without an attribute",
        "mot.no_scores": "results rows whose confidence is -1 (unset): confidence 1.0",
    }

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--sequences", metavar="DIR", help="where the sequences (<name>/seqinfo.ini or "
                           "<name>/img1/) of tracker results (<name>.txt) are")

    def detect(self, path: Path) -> predport.Detection:
        found = _sequences(path, None)
        if not found:
            return predport.Detection(0, "no gt/gt.txt, det/det.txt or comma-separated MOT rows")
        rows = found[0][1]
        if not _looks_mot(rows):
            return predport.Detection(0, f"{rows.name}: not MOT rows")
        return predport.Detection(0.9, "MOT rows: frame, id, left, top, width, height, ...")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        sequences = Path(ctx.options["sequences"]) if ctx.options.get("sequences") else None
        found = _sequences(path, sequences)
        if not found:
            ctx.report("source.invalid", "no gt/gt.txt, det/det.txt or MOT rows", Location(str(path)))
        for seq, rows, gt in found:
            unit = _unit(seq, rows, gt, ctx)
            if unit is not None and ctx.mine(unit["title"]):
                yield unit


def _sequences(path: Path, sequences: Path | None) -> list[tuple[Path, Path, bool]]:
    """(the sequence folder, the rows file, whether it is ground truth) of each sequence under ``path``: a
    sequence folder (gt/gt.txt or det/det.txt), a folder of them (a benchmark split), a rows file, or a folder
    of tracker results (one <sequence>.txt each; their sequence folders in ``sequences`` when given)."""
    if path.is_file():
        if path.suffix != ".txt":
            return []
        if path.parent.name in ("gt", "det"):
            return [(path.parent.parent, path, path.name == "gt.txt")]
        return [(sequences / path.stem if sequences else path.parent, path, False)]
    if not path.is_dir():
        return []
    for rel, gt in (("gt/gt.txt", True), ("det/det.txt", False)):
        if (path / rel).is_file():
            return [(path, path / rel, gt)]
    # (one listing, sorted by name, for both the sequence folders and the rows files: a folder of 10,000 images
    # took 0.1 s to detect as Paths made, sorted and stat-ed twice over)
    entries = listing(path)
    split = [s for name, is_dir in entries if is_dir for s in _sequences(path / name, sequences)
             if s[0] == path / name]
    if split:
        return split
    return [(sequences / Path(name).stem if sequences else path, path / name, False) for name, _ in entries
            if name.endswith(".txt") and name != "labels.txt"]


def _looks_mot(rows: Path) -> bool:
    try:
        lines = predport.head_lines(rows)
    except OSError:
        return False
    return bool(lines) and 2 * sum(map(_mot_row, lines)) > len(lines)  # (most: a broken row is reported later)


def _mot_row(line: str) -> bool:
    cells = [c.strip() for c in line.split(",")]
    if len(cells) < 6:
        return False
    try:
        [float(c) for c in cells[:6]]
    except ValueError:
        return False
    return True


def _listing(directory: Path) -> list[Path]:
    """The entries of the frames directory seqinfo.ini names ([] when there is none; one the system will not list
    is reported)."""
    try:
        if not directory.is_dir():
            return []
    except (OSError, ValueError):  # (a name the system refuses: NUL in it, say)
        return []
    return [directory / name for name, _ in listing(directory)]


def _unit(seq: Path, rows: Path, gt: bool, ctx: predport.ReadContext) -> DataUnit | None:
    import configparser  # (here: every run imports the plugins, few read MOT)

    info = configparser.ConfigParser()
    ini = seq / "seqinfo.ini"
    sequence: dict[str, str] = {}
    if ini.is_file():
        try:
            info.read(ini, encoding="utf-8")
            sequence = {k.lower(): v for k, v in info["Sequence"].items()} if "Sequence" in info else {}
        except (configparser.Error, UnicodeDecodeError) as e:
            ctx.report("source.invalid", f"cannot read seqinfo.ini: {e}", Location(str(ini)))
    title = sequence.get("name") or (seq.name if rows.name in ("gt.txt", "det.txt") else rows.stem)
    width, height = _int(sequence.get("imwidth")), _int(sequence.get("imheight"))
    length, fps = _int(sequence.get("seqlength")), _float(sequence.get("framerate"))
    frames_dir = seq / (sequence.get("imdir") or "img1")
    listed = _listing(frames_dir) if width is None or height is None or length is None else []
    if listed:
        images = sorted(p for p in listed if p.suffix in imagemod.EXTENSIONS)
        if images:
            size = imagemod.size(images[0])
            if size is not None and (width is None or height is None):
                width, height = size
            length = length or len(images)
    labels_file = rows.parent / "labels.txt"
    names = [line.strip() for line in labels_file.read_text("utf-8", "replace").splitlines()] \
        if labels_file.is_file() else CLASSES
    unit: dict[str, Any] = {"title": title, "kind": "video", "width": width, "height": height,
                            "frame_count": length, "fps": fps, "objects": [], "classifications": [],
                            "source": {"file": str(rows)}}
    tracks: dict[str, dict[str, Any]] = {}
    flagged: Counter[str] = Counter()  # gt rows flagged 0, per class
    unsized: Counter[str] = Counter()  # rows that cannot be normalised, per class
    unscored = 0  # results rows whose confidence is -1 (unset)
    visibility_lost: Counter[str] = Counter()  # why
    name = str(rows)
    try:
        lines = rows.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        ctx.report("source.unreadable", f"cannot read: {e}", Location(name))
        return None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        where = Location(name, line=n)
        try:
            frame, ident = int(float(cells[0])), int(float(cells[1]))
            left, top, w, h = (float(c) for c in cells[2:6])
            c7 = float(cells[6]) if len(cells) > 6 else 1.0
            cls = int(float(cells[7])) if gt and len(cells) > 7 else -1
            visibility = float(cells[8]) if gt and len(cells) > 8 else None
        except (ValueError, IndexError, OverflowError):
            ctx.report("mot.bad_row", f"not frame, id and a box in numbers: {line[:60]!r}", where)
            continue
        label = names[cls - 1] if 0 < cls <= len(names) else (str(cls) if cls > 0 else "pedestrian")
        if gt and c7 == 0:
            flagged[label] += 1
            continue
        target = ctx.resolve_class(label, cls if cls > 0 else None, shapes=BOXES)
        if not isinstance(target, OntologyObject):
            ctx.report(target[0], target[1], where, group=label)
            continue
        if width is None or height is None:
            unsized[label] += 1
            continue
        record: dict[str, Any] = {"frame": frame - 1, "source": {"file": name, "line": n, "group": label},
                                  "geometry": {"shape": "bounding_box", "x": left / width, "y": top / height,
                                               "w": w / width, "h": h / height}}
        if not gt:
            if c7 == -1:
                unscored += 1
            else:
                record["confidence"] = c7
        key = f"track-{ident}" if ident >= 0 else f"l{n}"
        obj = tracks.get(key)
        if obj is None:
            obj = tracks[key] = {"id": key, "class": {"hash": target.hash}, "frames": []}
            unit["objects"].append(obj)
        elif obj["class"]["hash"] != target.hash:  # (one track, two classes: validation says so)
            obj = {"id": key, "class": {"hash": target.hash}, "frames": []}
            unit["objects"].append(obj)
        obj["frames"].append(record)
        if visibility is not None:
            answers.put(obj, target, "visibility", visibility, frame - 1, visibility_lost)
    for label, k in sorted(unsized.items()):
        ctx.report("frame.size_unknown", f"{k} row(s) of {label!r} not converted: the frame size is unknown (no "
                   f"seqinfo.ini or img1/ in {seq}; for tracker results, give --sequences DIR)", Location(name),
                   group=label, entities=k)
    for label, k in sorted(flagged.items()):
        ctx.report("mot.not_carried", f"{k} row(s) of {label!r} flagged 0 (not to be considered): not converted",
                   Location(name), "info", group=label, entities=k)
    if unscored:
        ctx.report("mot.no_scores", f"{unscored} row(s) with confidence -1 (unset): confidence 1.0", Location(name),
                   "info")
    for why, k in sorted(visibility_lost.items()):
        ctx.report("mot.not_carried", f"visibility of {k} row(s) not carried: {why}", Location(name), "info")
    return unit  # type: ignore[return-value]


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _float(v: str | None) -> float | None:
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [MotReader()]
