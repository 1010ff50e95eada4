"""Reader ``kitti``: KITTI object labels (``label_2/*.txt``, a folder of them, or one file): 15 whitespace
separated columns, a 16th is the score.

``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y [score]``. The box is in pixels of the image of
the same stem (``image_2/`` beside ``label_2/``, ``data/`` beside ``labels/``, beside the labels, or in
``--images``; its size is read from its header). Class
names cannot hold spaces in this format, so ``traffic_light`` also finds an ontology class ``traffic light``.
``DontCare`` rows are regions to ignore, not objects: counted in a note (unless ``--class-map`` maps DontCare to
a class). ``truncated`` and ``occluded`` become answers when the class has attributes of those names; ``alpha``
and the 3D fields (dimensions, location, rotation_y) are not carried (said per file when they hold values).
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

#: where labels and their images are: KITTI's own layout, and FiftyOne's (data/ + labels/)
LABELS, IMAGES = ("label_2", "labels"), ("image_2", "data")
UNSET_3D = {"-1", "-1.0", "-1000", "-1000.0", "-10", "-10.0", "0", "0.0", "0.00"}


class KittiReader(predport.BaseReader):
    name = "kitti"
    description = "KITTI object labels (label_2/*.txt: 15 columns, a 16th is the score)"
    capabilities = predport.Capabilities(frozenset({"bounding_box"}), confidence=True, attributes=True)
    codes: ClassVar[Mapping[str, str]] = {
        "kitti.bad_line": "a line that is not a KITTI object (15 or 16 columns, numbers after the type)",
        "kitti.not_carried": "KITTI fields not carried: DontCare regions, alpha and the 3D fields",
    }

    def detect(self, path: Path) -> predport.Detection:
        files = _files(path, limit=3)
        if not files:
            return predport.Detection(0, "no .txt label files")
        rows = [row for f in files for row in _rows(f)]
        if rows and 2 * sum(map(_kitti_line, rows)) <= len(rows):  # (most lines: a broken one is reported later)
            return predport.Detection(0, f"{files[0].name}: not KITTI lines (a type name and 14 or 15 numbers)")
        return predport.Detection(0.85, "lines of a type name and 14 or 15 numbers (KITTI)")

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--images", metavar="DIR", help="where the images are, when not in image_2/ or beside "
                           "the labels (their sizes are needed)")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        images = Path(ctx.options["images"]) if ctx.options.get("images") else None
        for f in _files(path):
            image = _image(f, images)
            title = image.name if image is not None else f.stem
            if ctx.mine(title):
                yield _unit(f, image, title, ctx)
        for image in _unlabelled(path):  # (an image without a label file: no predictions)
            size = imagemod.size(image)
            if ctx.mine(image.name):
                yield {"title": image.name, "kind": "image", "width": size[0] if size else None,  # type: ignore[misc]
                       "height": size[1] if size else None, "objects": [], "classifications": [],
                       "source": {"file": str(image)}}


def _label_dirs(path: Path) -> list[Path]:
    """``label_2`` folders: the path's own, else any below it (a dataset's training/, or subset folders)."""
    for name in LABELS:
        if (path / name).is_dir():
            return [path / name]
    return _named_dirs(path, LABELS)


def _named_dirs(path: Path, names: tuple[str, ...]) -> list[Path]:
    """The folders named one of ``names`` one or two levels below ``path`` (what ``glob("*/name")`` and
    ``glob("*/*/name")`` find), sorted. The folders below are found by :func:`listing`: the bench's YOLO dataset
    (10,000 files in two folders) took 13 ms with ``glob``, 7 ms so."""
    below: list[Path] = []
    level = [path]
    for _ in range(2):
        level = [folder / name for folder in level for name, is_dir in listing(folder) if is_dir]
        below += level
    return sorted(d / name for d in below for name in names if (d / name).is_dir())


def _files(path: Path, limit: int | None = None) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix == ".txt" else []
    if not path.is_dir():
        return []
    found: list[Path] = []
    for d in _label_dirs(path):
        found += _txt(d, limit - len(found) if limit else None)
        if limit and len(found) >= limit:
            break
    return found or _txt(path, limit)


def _txt(folder: Path, limit: int | None) -> list[Path]:
    """``sorted(folder.glob("*.txt"))[:limit]``, without a Path for every entry of the folder."""
    return [folder / n for n in [n for n, _ in listing(folder) if n.endswith(".txt")][:limit]]


def _unlabelled(path: Path) -> list[Path]:
    """Images in ``image_2`` folders beside ``label_2`` folders (or without one) that have no label file."""
    if not path.is_dir():
        return []
    out = []
    for name, labels_name in zip(IMAGES, LABELS, strict=True):
        found = [path / name] if (path / name).is_dir() else _named_dirs(path, (name,))
        for images in found:
            labels = images.parent / labels_name
            out += [p for p in (images / name for name, _ in listing(images))
                    if p.suffix in imagemod.EXTENSIONS and not (labels / (p.stem + ".txt")).is_file()]
    return out


def _rows(path: Path) -> list[list[str]]:
    """The first lines of a label file, split (none for an empty or unreadable one: no opinion)."""
    try:
        return [line.split() for line in predport.head_lines(path)]
    except OSError:
        return [[]]


def _kitti_line(tokens: list[str]) -> bool:
    if len(tokens) not in (15, 16) or not tokens[0][:1].isalpha():
        return False
    try:
        [float(t) for t in tokens[1:]]
    except ValueError:
        return False
    return True


def _image(label: Path, images: Path | None) -> Path | None:
    places = [images] if images is not None else [label.parent]
    if label.parent.name in LABELS:
        places.insert(0, label.parent.parent / IMAGES[LABELS.index(label.parent.name)])
    for place in places:
        found = imagemod.find(place, label.stem)
        if found is not None:
            return found
    return None


def _unit(f: Path, image: Path | None, title: str, ctx: predport.ReadContext) -> DataUnit:
    name = str(f)
    size = imagemod.size(image) if image is not None else None
    unit: dict[str, Any] = {"title": title, "kind": "image", "width": size[0] if size else None,
                            "height": size[1] if size else None, "objects": [], "classifications": [],
                            "source": {"file": name}}
    try:
        lines = f.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        ctx.report("source.unreadable", f"cannot read: {e}", Location(name))
        return unit  # type: ignore[return-value]
    not_carried: Counter[str] = Counter()
    dont_care = 0
    for n, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = Location(name, line=n)
        kind = tokens[0]
        try:
            numbers = [float(t) for t in tokens[1:]]
        except ValueError:
            numbers = []
        if len(tokens) not in (15, 16) or len(numbers) != len(tokens) - 1:
            ctx.report("kitti.bad_line", f"not a KITTI object line: {line[:60]!r}", where, group=kind)
            continue
        target = ctx.resolve_class(kind, shapes=BOXES)
        if kind == "DontCare" and not isinstance(target, OntologyObject):  # (unless mapped to a class)
            dont_care += 1
            continue
        if not isinstance(target, OntologyObject) and "_" in kind:
            spaced = ctx.resolve_class(kind.replace("_", " "), shapes=BOXES)
            target = spaced if isinstance(spaced, OntologyObject) else target
        if not isinstance(target, OntologyObject):
            ctx.report(target[0], target[1], where, group=kind)
            continue
        if size is None:
            ctx.report("frame.size_unknown", "the image was not found (image_2/ or beside the labels): its size is "
                       "needed to normalise the box", where, group=kind)
            continue
        x1, y1, x2, y2 = numbers[3:7]
        w, h = size
        frame: dict[str, Any] = {"frame": 0, "source": {"file": name, "line": n, "group": kind},
                                 "geometry": {"shape": "bounding_box", "x": x1 / w, "y": y1 / h,
                                              "w": (x2 - x1) / w, "h": (y2 - y1) / h}}
        if len(numbers) == 15:
            frame["confidence"] = numbers[14]
        record: dict[str, Any] = {"id": f"l{n}", "class": {"hash": target.hash}, "frames": [frame]}
        flags = [(f, v) for f, v in (("truncated", tokens[1]), ("occluded", tokens[2])) if v not in ("-1", "-1.0")]
        found = answers.answer_all(target, flags, not_carried)  # (-1: unset, nothing to carry)
        if found:
            record["answers"] = found
        if tokens[3] not in UNSET_3D:
            not_carried["alpha"] += 1
        if any(t not in UNSET_3D for t in tokens[8:15]):
            not_carried["3D fields (dimensions, location, rotation_y)"] += 1
        unit["objects"].append(record)
    if dont_care:
        ctx.report("kitti.not_carried", f"{dont_care} DontCare region(s): regions to ignore, not objects (map "
                   "DontCare to a class with --class-map to convert them)", Location(name), "info", group="DontCare",
                   entities=dont_care)
    if not_carried:
        listed = ", ".join(f"{k} x{v}" for k, v in sorted(not_carried.items()))
        ctx.report("kitti.not_carried", "not carried: " + listed, Location(name), "info")
    return unit  # type: ignore[return-value]


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [KittiReader()]
