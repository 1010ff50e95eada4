"""Reader ``yolo``: YOLO label files, in the Darknet layout (``obj.data``, ``obj.names``, ``train.txt`` lists,
labels beside the images), the Ultralytics layout (``data.yaml`` / ``dataset.yaml`` with ``names`` as a list or
a mapping, ``images/<split>/`` + ``labels/<split>/``, splits given as folders, list files or lists) and a plain
folder of label files (``classes.txt`` / ``obj.names`` beside them, or none: the class is its index).

One line per object, coordinates normalised to the image: detect ``c cx cy w h``; segment ``c x1 y1 ...``
(an open ring); OBB ``c x1 y1 x2 y2 x3 y3 x4 y4`` (four corners -> a rotatable box with the exact angle, measured
in pixels; a quad that is not a rectangle is reported); pose ``c cx cy w h`` + keypoints ``x y [v]`` per
``kpt_shape`` (-> a skeleton in the class's template order). Any task may end with a confidence column
(``--confidence-column first``: it follows the class, as in globox's Darknet detections), and after it a track
id (ultralytics' tracker): the instance, a track once ``--image-map`` makes the images frames of a video. Which
task a line is: ``--task``, else the target class's shape (a 4-corner polygon and an OBB have the same
columns), else its column count. An empty label file is an image without predictions; an image of a split
without a label file too. Image sizes come from the image files' headers (needed for OBB angles only).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import predport
from predport.core import images as imagemod
from predport.core import shapes
from predport.core.model import DataUnit
from predport.core.ontology import OntologyObject
from predport.core.problems import Location

CONFIGS = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
NAMES = ("obj.names", "classes.txt", "classes.names", "names.txt")
TASKS = ("auto", "detect", "segment", "obb", "pose")
_NOT_LABELS = {n.lower() for n in (*NAMES, "train.txt", "val.txt", "valid.txt", "test.txt", "images.txt")}


class YoloReader(predport.BaseReader):
    name = "yolo"
    description = "YOLO labels (Darknet and Ultralytics layouts): detect, segment, OBB, pose, optional confidences"
    capabilities = predport.Capabilities(frozenset({"bounding_box", "polygon", "rotatable_bounding_box",
                                                    "skeleton"}), confidence=True)
    codes: ClassVar[Mapping[str, str]] = {
        "yolo.bad_line": "a label line that is not a class index and the numbers of a YOLO task",
        "yolo.not_a_rectangle": "an OBB line whose four corners are not a rectangle (in pixels)",
        "yolo.no_image": "label files without their image: titled by their stem, without a pixel size",
        "yolo.keypoints": "pose keypoints that do not fit kpt_shape or the class's skeleton template",
        "yolo.not_carried": "a part of a line the target class cannot hold (a pose line's box or keypoints)",
    }

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--task", choices=TASKS, default="auto",
                           help="what the label lines are (default: from the target class's shape and the columns)")
        group.add_argument("--confidence-column", choices=("last", "first"), default="last",
                           help="where a line's confidence is: last (default; Ultralytics save_conf, YOLOv5/v7) or "
                           "first, after the class (globox's Darknet detections)")
        group.add_argument("--images", metavar="DIR",
                           help="where the images are, when they are not beside or above the labels")

    def detect(self, path: Path) -> predport.Detection:
        if path.is_file():
            if path.name in CONFIGS or path.suffix in (".yaml", ".yml"):
                config = _yaml(path)
                if isinstance(config, dict) and "names" in config:
                    return predport.Detection(0.9, "a YAML dataset file with names (Ultralytics)")
                return predport.Detection(0, "a YAML file without names")
            if path.name == "obj.data":
                return predport.Detection(0.9, "obj.data (Darknet)")
            if path.suffix == ".txt" and path.name.lower() not in _NOT_LABELS:
                return predport.Detection(0.6 if _looks_yolo(path) else 0, "label lines: a class index and "
                                          "normalised numbers" if _looks_yolo(path) else "not YOLO label lines")
            return predport.Detection(0, "not a YOLO label, data.yaml or obj.data file")
        if not path.is_dir():
            return predport.Detection(0, "no such file or directory")
        if any((path / c).is_file() for c in CONFIGS):
            return predport.Detection(0.9, "a folder with data.yaml (Ultralytics)")
        if (path / "obj.data").is_file():
            return predport.Detection(0.9, "a folder with obj.data (Darknet)")
        labels = _label_files(path, limit=5)
        if labels and all(_looks_yolo(f) for f in labels if f.stat().st_size):
            return predport.Detection(0.8, "a folder of YOLO label files (a class index and normalised numbers)")
        return predport.Detection(0, "no data.yaml, obj.data or YOLO label files (class index + 4 or more "
                                     "normalised numbers per line)")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        dataset = _Dataset.find(path, ctx)
        if dataset is None:
            return
        converter = _Lines(ctx, dataset)
        missing: list[str] = []
        batch: list[_File] = []
        size = 1  # (the first unit at once: the run's workers fork after it, and share the rest)
        for label, image in dataset.pairs(ctx.mine):
            title = image.name if image is not None else label.stem
            if image is None:
                missing.append(label.name)
            batch.append(converter.begin(label, image, title))
            if len(batch) >= size:
                yield from converter.finish(batch)
                batch, size = [], BATCH
        yield from converter.finish(batch)
        if missing:
            ctx.report("yolo.no_image", f"{len(missing)} label file(s) without their image ({', '.join(missing[:3])}"
                       f"{' ...' if len(missing) > 3 else ''}): titled by their stem, without a pixel size (use "
                       "--images DIR, or --image-map)", Location(str(path)), "info")


def _yaml(path: Path) -> Any:
    import yaml  # (here: every run imports the plugins, few read YOLO's data.yaml)

    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _looks_yolo(path: Path) -> bool:
    """Whether the first lines of a text file are YOLO label lines."""
    try:
        lines = [line.split() for line in predport.head_lines(path, 5, 4096)]
    except OSError:
        return False
    if not lines:
        return True  # (an empty label file: an image without predictions)
    for tokens in lines:
        if len(tokens) < 5 or not tokens[0].isdigit() or "," in tokens[0]:
            return False
        try:
            values = [float(t) for t in tokens[1:]]
        except ValueError:
            return False
        if not all(-0.5 <= v <= 1.5 for v in values[:4]):  # (normalised, with a margin for OBB corners)
            return False
    return True


def _label_files(directory: Path, limit: int | None = None) -> list[Path]:
    for sub in (directory, directory / "labels"):
        if sub.is_dir():
            out = predport.files_under(sub, _label_name, limit)
            if out:
                return out
    return []


def _label_name(name: str) -> bool:
    return name.endswith(".txt") and name.lower() not in _NOT_LABELS


def _image_name(name: str) -> bool:
    """Whether a file name has an image's suffix (as ``Path.suffix`` has it: ``".png"`` alone has none)."""
    return name.endswith(imagemod.EXTENSIONS) and name not in imagemod.EXTENSIONS


class _Dataset:
    """Where a YOLO dataset's label files, images and class names are."""

    def __init__(self, root: Path, names: list[str] | None, kpt_shape: tuple[int, int] | None,
                 images: list[Path] | None, labels: list[Path] | None, image_dir: Path | None, task: str) -> None:
        self.root, self.names, self.kpt_shape, self.task = root, names, kpt_shape, task
        self.images, self.labels, self.image_dir = images, labels, image_dir

    confidence_first = False  # (--confidence first)

    @classmethod
    def find(cls, path: Path, ctx: predport.ReadContext) -> _Dataset | None:
        found = cls._find(path, ctx)
        if found is not None:
            found.confidence_first = ctx.options.get("confidence_column") == "first"
        return found

    @classmethod
    def _find(cls, path: Path, ctx: predport.ReadContext) -> _Dataset | None:
        opts = ctx.options
        image_dir = Path(opts["images"]) if opts.get("images") else None
        task = opts.get("task") or "auto"
        config = path if path.is_file() and (path.suffix in (".yaml", ".yml") or path.name == "obj.data") else None
        if config is None and path.is_dir():
            config = next((path / c for c in (*CONFIGS, "obj.data") if (path / c).is_file()), None)
        if config is not None and config.name == "obj.data":
            return cls._darknet(config, ctx, image_dir, task)
        if config is not None:
            return cls._ultralytics(config, ctx, image_dir, task)
        if path.is_file():  # one label file
            return cls(path.parent, _names_beside(path.parent), None, None, [path], image_dir, task)
        return cls(path, _names_beside(path), None, None, _label_files(path), image_dir, task)

    @classmethod
    def _ultralytics(cls, config: Path, ctx: predport.ReadContext, image_dir: Path | None,
                     task: str) -> _Dataset | None:
        data = _yaml(config)
        where = Location(str(config))
        if not isinstance(data, dict):
            ctx.report("source.unreadable", "not a YAML mapping", where)
            return None
        root = config.parent / str(data.get("path") or ".")
        if not root.is_dir():
            root = config.parent
        names = _names(data.get("names"), ctx, where)
        kpt = data.get("kpt_shape")
        kpt_shape = (int(kpt[0]), int(kpt[1])) if (isinstance(kpt, list) and len(kpt) == 2
                                                   and all(type(v) is int for v in kpt)) else None
        images: list[Path] = []
        for split in ("train", "val", "test"):
            for entry in _entries(data.get(split)):
                images.extend(_images_of(entry, root, config.parent))
        if not images and (root / "images").is_dir():
            images = predport.files_under(root / "images", _image_name)
        labels = None if images else _label_files(root)
        return cls(root, names, kpt_shape, sorted(set(images)) or None, labels, image_dir, task)

    @classmethod
    def _darknet(cls, config: Path, ctx: predport.ReadContext, image_dir: Path | None, task: str) -> _Dataset:
        values: dict[str, str] = {}
        for line in config.read_text("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            if value:
                values[key.strip()] = value.strip()
        root = config.parent
        names_file = _resolve(values.get("names", "obj.names"), root) or _resolve("obj.names", root)
        names = _lines(names_file) if names_file is not None else None
        images: list[Path] = []
        for key in ("train", "valid", "val", "test"):
            if key in values:
                images.extend(_images_of(values[key], root, root))
        if not images:
            images = predport.files_under(root, _image_name)
        return cls(root, names, None, images or None, None if images else _label_files(root), image_dir, task)

    def pairs(self, mine: Callable[[str], bool]) -> Iterator[tuple[Path, Path | None]]:
        """(label file, image or None) for every image of the dataset (a missing label file: no predictions,
        an empty one yielded as None below) and every label file, whose title (the image's name, else the label
        file's stem) is ``mine``. (Others are not looked for: a worker process skips most of them.)"""
        if self.images is not None:
            for image in self.images:
                if mine(image.name):
                    yield _label_of(image), image
            return
        for label in self.labels or []:
            found = self._image_of(label)
            if mine(found.name if found is not None else label.stem):
                yield label, found

    def _image_of(self, label: Path) -> Path | None:
        places = [label.parent]
        if label.parent.name and label.parent.parent.name == "labels":  # labels/<split>/x.txt -> images/<split>/
            places.append(label.parent.parent.parent / "images" / label.parent.name)
        if label.parent.name == "labels":
            places.append(label.parent.parent / "images")
        if self.image_dir is not None:
            places.insert(0, self.image_dir)
        for place in places:
            found = imagemod.find(place, label.stem)
            if found is not None:
                return found
        return None


def _label_of(image: Path) -> Path:
    """images/<split>/x.jpg -> labels/<split>/x.txt (the last 'images' folder), else x.txt beside it."""
    parts = list(image.parts)
    for k in range(len(parts) - 2, -1, -1):
        if parts[k] == "images":
            candidate = Path(*parts[:k], "labels", *parts[k + 1:]).with_suffix(".txt")
            if candidate.is_file() or not image.with_suffix(".txt").is_file():
                return candidate
    return image.with_suffix(".txt")


def _entries(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str)]
    return []


def _resolve(entry: str, *bases: Path) -> Path | None:
    """A path as a dataset file gives it: relative to one of ``bases``, or with its leading folders dropped
    (list files name images relative to another root, as Darknet's ``data/obj_train_data/1.jpg``)."""
    p = Path(entry)
    if p.is_absolute():
        return p if p.exists() else None
    for base in bases:
        for k in range(len(p.parts)):
            candidate = base / Path(*p.parts[k:])
            if candidate.exists():
                return candidate
    return None


def _images_of(entry: str, root: Path, base: Path) -> list[Path]:
    """A split's images: a folder (recursively), a list file (one path per line) or one image."""
    target = _resolve(entry, root, base)
    if target is None:
        return []
    if target.is_dir():
        return predport.files_under(target, _image_name)
    if target.suffix in imagemod.EXTENSIONS:
        return [target]
    out = []
    for line in _lines(target) or []:
        found = _resolve(line, target.parent, root, base)
        if found is not None:
            out.append(found)
    return out


def _lines(path: Path) -> list[str] | None:
    try:
        return [line.strip() for line in path.read_text("utf-8-sig").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return None


def _names_beside(directory: Path) -> list[str] | None:
    for place in (directory, directory.parent):
        for n in NAMES:
            if (place / n).is_file():
                return _lines(place / n)
        for c in CONFIGS:
            if (place / c).is_file():
                data = _yaml(place / c)
                if isinstance(data, dict):
                    return _names(data.get("names"), None, None)
    return None


def _names(value: Any, ctx: predport.ReadContext | None, where: Location | None) -> list[str] | None:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        try:
            indexed = {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            if ctx is not None and where is not None:
                ctx.report("source.invalid", "names must be a list or a mapping of class index -> name", where)
            return None
        return [indexed.get(k, str(k)) for k in range(max(indexed) + 1)] if indexed else []
    return None


#: label files converted together (:meth:`_Lines.finish`)
BATCH = 512


class _File:
    """A label file read, not yet converted (:meth:`_Lines.begin`): its unit so far, its bytes (None: not read, and
    ``error`` says why; None too for an image without a label file), its lines as numbers (:func:`numeric_lines`;
    None: by their tokens), and ``width``: 5 or 6 for a file of 16 lines or more that all have that many numbers
    (a detect file, which :meth:`_Lines.finish` takes with the others), else 0."""

    __slots__ = ("data", "error", "file", "numbers", "size", "unit", "width")

    def __init__(self, unit: dict[str, Any], file: str, size: tuple[int, int] | None, data: bytes | None,
                 error: OSError | None, numbers: list[list[int | float]] | None, width: int) -> None:
        self.unit, self.file, self.size, self.data, self.error = unit, file, size, data, error
        self.numbers, self.width = numbers, width


class _Lines:
    """Label lines -> records of one data unit."""

    def __init__(self, ctx: predport.ReadContext, dataset: _Dataset) -> None:
        self.ctx, self.dataset = ctx, dataset
        self.names = dataset.names
        self._classes: dict[int, Any] = {}
        self._by_count: dict[tuple[int, int], Any] = {}
        self._box_keys: dict[int, dict[int, tuple[str, str] | None]] = {}  # (by column count: see _boxes)

    def target(self, k: int, count: int = 0) -> tuple[str, Any]:
        """The class label of index k and what it resolves to (an ontology object, or (code, why)); where
        several ontology objects have its name, the one of the shape a line of ``count`` numbers can be."""
        found = self._classes.get(k)
        if found is None:
            names = self.names
            label = names[k] if names is not None and 0 <= k < len(names) else str(k)
            found = self._classes[k] = (label, self.ctx.resolve_class(label, k))
        if not isinstance(found[1], OntologyObject) and found[1][0] == "class.ambiguous" and count:
            key = (k, count)
            if key not in self._by_count:
                self._by_count[key] = (found[0], self.ctx.resolve_class(found[0], k, shapes=self._shapes(count)))
            return self._by_count[key]  # type: ignore[no-any-return]
        return found  # type: ignore[no-any-return]

    def _shapes(self, count: int) -> tuple[str, ...]:
        """The shapes a line of ``count`` numbers (after the class) can be, likeliest first."""
        task = self.dataset.task
        if task != "auto":
            return {"detect": ("bounding_box",), "segment": ("polygon", "bitmask"), "obb": ("rotatable_bounding_box",),
                    "pose": ("skeleton",)}[task]
        if count in (4, 5):
            return ("bounding_box",)
        if count in (8, 9):
            return ("rotatable_bounding_box", "polygon")
        if self.dataset.kpt_shape is not None:
            return ("skeleton", "polygon")
        return ("polygon", "skeleton")

    def begin(self, label: Path, image: Path | None, title: str) -> _File:
        """A label file read (nothing reported yet: problems are reported as its unit is made, in order)."""
        size = imagemod.size(image) if image is not None else None
        unit: dict[str, Any] = {"title": title, "kind": "image", "width": size[0] if size else None,
                                "height": size[1] if size else None, "objects": [], "classifications": [],
                                "source": {"file": str(label)}}
        file = str(label)
        try:
            data = label.read_bytes()
        except FileNotFoundError:
            return _File(unit, file, size, None, None, None, 0)  # (an image without a label file: no predictions)
        except OSError as e:
            return _File(unit, file, size, None, e, None, 0)
        first = data[:256].split(b"\n", 1)[0]
        # (detect lines, of 4 or 5 spaces, as numbers; any other file goes by its tokens, as its lines would)
        numbers = numeric_lines(data) if first.count(b" ") in (4, 5) else None
        width = 0
        if numbers is not None and len(numbers) >= 16 and self.dataset.task in ("auto", "detect"):
            widths = {len(t) for t in numbers if t}
            width = widths.pop() if len(widths) == 1 else 0
        return _File(unit, file, size, data, None, numbers, width if width in (5, 6) else 0)

    def finish(self, files: list[_File]) -> Iterator[DataUnit]:
        """The files' data units, in order. Files of detect lines (:class:`_File` ``width``) whose classes are all
        box classes and whose boxes are all inside the frame become slices of one shared box table (SharedBoxes:
        its rows checked and written a column at a time for all of them); any other file, line by line as before
        (:meth:`_rest`), which gives the same table for those files (a differential test holds the two to the
        same label rows and problems).

        Why: the bench's 5,000 label files of 100 boxes took 150 us a file in numpy calls on their own rows
        (``_boxes``) and 100 us a unit to check their plain tables. Together: 1 worker 3.77 s -> 2.40 s, 2 workers
        2.42 s -> 1.44 s (best of 3 and 5 interleaved runs; one .jsonl on the ordinary disk)."""
        slices = self._shared(files) if sum(f.width > 0 for f in files) > 1 else {}
        for k, f in enumerate(files):
            found = slices.get(k)
            if found is not None:
                f.unit["boxes"] = found
                yield f.unit  # type: ignore[misc]
            else:
                yield self._rest(f)

    def _shared(self, files: list[_File]) -> dict[int, Any]:
        """The slices of one shared table, by file index, for the files whose lines all make boxes of known box
        classes inside the frame (the rows :meth:`_boxes` would take, all of them: the same numbers, by the same
        numpy operations); {} when no file qualifies, or two class indices would share a class entry."""
        import numpy as np

        from predport.core.boxes import SharedBoxes

        parts: dict[int, tuple[Any, ...]] = {}  # file index -> its rows' class indices, x, y, w, h, confidences, width
        for m in (5, 6):
            mine = [k for k, f in enumerate(files) if f.width == m]
            if not mine:
                continue
            given = [[t for t in files[k].numbers or () if t] for k in mine]
            counts = np.array([len(g) for g in given], dtype=np.int64)
            arr = np.fromiter(chain.from_iterable(chain.from_iterable(given)), dtype=np.float64,
                              count=m * int(counts.sum())).reshape(-1, m)
            cls = arr[:, 0]
            whole, x, y, w, h, conf, inside = _detect_columns(arr, m, self.dataset.confidence_first)
            bad = ~(whole & (cls < 2**31) & inside)  # (a file with any other line goes line by line: _rest)
            index = np.where(bad, 0, cls).astype(np.int64)
            for c in sorted(set(index[~bad].tolist())):
                if self._box_key(c, m) is None:
                    bad |= index == c
            failed = np.bincount(np.repeat(np.arange(len(mine)), counts), weights=bad, minlength=len(mine)) > 0
            ends = np.cumsum(counts).tolist()
            for j, k in enumerate(mine):
                if not failed[j]:
                    a, b = ends[j] - len(given[j]), ends[j]
                    parts[k] = (index[a:b], x[a:b], y[a:b], w[a:b], h[a:b], conf[a:b], m)
        if not parts:
            return {}
        used: dict[int, set[tuple[str, str]]] = {}
        for part in parts.values():
            for c in set(part[0].tolist()):
                key = self._box_key(c, part[6])
                if key is None:  # (cannot be: its rows were bad)
                    return {}
                used.setdefault(c, set()).add(key)
        # (class entries in class index order, as a file's own table has them)
        entries: dict[tuple[str, str], int] = {}
        for c in sorted(used):
            if len(used[c]) != 1 or next(iter(used[c])) in entries:
                return {}  # (two class indices of one class entry: the files go one by one)
            entries[next(iter(used[c]))] = len(entries)
        order = sorted(parts)
        ids = np.array(sorted(used), dtype=np.int64)
        rank = np.array([entries[next(iter(used[c]))] for c in sorted(used)], dtype=np.int64)
        lines = [[n for n, t in enumerate(files[k].numbers or (), start=1) if t] for k in order]
        sizes = [len(ns) for ns in lines]
        starts = [0, *np.cumsum(sizes)[:-1].tolist()]
        table = SharedBoxes(
            [{"class": {"hash": h}, "group": g} for h, g in entries],
            {"class": rank[np.searchsorted(ids, np.concatenate([parts[k][0] for k in order]))],
             "id": [f"l{n}" for ns in lines for n in ns],
             **{name: np.concatenate([parts[k][j] for k in order])
                for j, name in ((1, "x"), (2, "y"), (3, "w"), (4, "h"), (5, "confidence"))},
             "line": np.fromiter(chain.from_iterable(lines), dtype=np.int64, count=sum(sizes))},
            units=starts, sources=[{"file": files[k].file} for k in order])
        return {k: table.rows(a, a + n) for k, a, n in zip(order, starts, sizes, strict=True)}

    def _rest(self, f: _File) -> DataUnit:
        """A file's unit, line by line where its lines are not all plain boxes (and its problems reported)."""
        unit, file, size, data, numbers = f.unit, f.file, f.size, f.data, f.numbers
        if data is None:
            if f.error is not None:
                self.ctx.report("source.unreadable", f"cannot read: {f.error}", Location(file))
            return unit  # type: ignore[return-value]
        rows: dict[str, list[Any]] = {k: [] for k in ("class", "id", "x", "y", "w", "h", "confidence", "line")}
        classes: dict[tuple[str, str], int] = {}  # (ontology hash, label): index, in order
        done = self._boxes(numbers, rows, classes) if numbers is not None and len(numbers) >= 16 else set()
        if numbers is None or len(done) < sum(1 for line in numbers if line):  # (lines left: by their tokens)
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as e:
                self.ctx.report("source.unreadable", f"cannot read: {e}", Location(file))
                return unit  # type: ignore[return-value]
            split = [line.split() for line in text.splitlines()]
            if numbers is None:
                done = self._boxes(split, rows, classes) if len(split) >= 16 else set()
            for n, tokens in enumerate(split, start=1):
                if tokens and n not in done:
                    self._line(tokens, n, file, size, unit, rows, classes)
        if rows["class"]:
            unit["boxes"] = {"classes": [{"class": {"hash": h}, "group": g} for h, g in classes],
                             **rows, "source": {"file": file}}
        return unit  # type: ignore[return-value]

    def _boxes(self, split: list[list[str]] | list[list[int | float]], rows: dict[str, list[Any]],
               classes: dict[tuple[str, str], int]) -> set[int]:
        """A file of detect lines (``c cx cy w h [conf]``) of box classes, a column at a time (numpy): the lines
        it took (their boxes inside the frame); the others, and any file of other lines, go line by line. The
        same numbers as :meth:`_line`, which only differs for coordinates off [0, 1] (snapped to the edge by the
        file's printed precision). 500k boxes in 5,000 files, 1 worker: 11.0 s -> 5.6 s (bench/run.py --only yolo).
        ``split``: each line's tokens, or its numbers (:func:`numeric_lines`)."""
        import numpy as np

        widths = {len(t) for t in split if t}
        if len(widths) != 1 or self.dataset.task not in ("auto", "detect"):
            return set()
        m = widths.pop()
        if m not in (5, 6):
            return set()
        given = [t for t in split if t]
        lines = [n for n, t in enumerate(split, start=1) if t]
        try:
            arr = (np.array(given, dtype=np.float64) if type(given[0][0]) is str else
                   np.fromiter(chain.from_iterable(given), dtype=np.float64, count=m * len(given)).reshape(-1, m))
        except ValueError:  # (a token that is not a number: line by line, each reported where it is)
            return set()
        cls = arr[:, 0]
        whole, x, y, w, h, conf, inside = _detect_columns(arr, m, self.dataset.confidence_first)
        if not whole.all():
            return set()
        found = {}
        for c in sorted(set(cls.astype(np.int64).tolist())):  # (not np.unique: its first call takes 15 ms)
            key = self._box_key(c, m)
            if key is None:
                return set()
            found[c] = classes.setdefault(key, len(classes))
        take = np.flatnonzero(inside)
        taken = lines if len(take) == len(lines) else [lines[i] for i in take.tolist()]
        # (a column at a time: 100 rows appended one by one took 12-18 us a file more; the bench's 5,000 files read
        # in 1.51-1.72 s against 1.60-1.78 s)
        rows["class"].extend(map(found.__getitem__, cls[take].astype(np.int64).tolist()))
        rows["id"].extend([f"l{n}" for n in taken])
        for name, col in (("x", x), ("y", y), ("w", w), ("h", h)):
            rows[name].extend(col[take].tolist())
        rows["confidence"].extend(conf[take].tolist())
        rows["line"].extend(taken)
        return set(taken)

    def _box_key(self, c: int, m: int) -> tuple[str, str] | None:
        """Class index ``c``'s box table entry (ontology hash, label) on lines of ``m`` numbers; None when such
        lines of it are not boxes. (Remembered: 57 classes a file on the bench took 40 us a file.)"""
        known = self._box_keys.setdefault(m, {})
        key = known.get(c, _UNKNOWN)
        if key is _UNKNOWN:
            label, target = self.target(c, m - 1)
            key = known[c] = (target.hash, label) if isinstance(target, OntologyObject) and (
                target.shape == "bounding_box" and not (self.dataset.task == "auto"
                                                        and self.dataset.kpt_shape is not None)) else None
        return key  # type: ignore[no-any-return]

    def _line(self, tokens: list[str], n: int, file: str, size: tuple[int, int] | None, unit: dict[str, Any],
              rows: dict[str, list[Any]], classes: dict[tuple[str, str], int]) -> None:
        where = Location(file, line=n)
        try:
            k = int(tokens[0])
            values = [float(t) for t in tokens[1:]]
        except ValueError:
            self.ctx.report("yolo.bad_line", f"not a class index and numbers: {' '.join(tokens)[:60]!r}", where)
            return
        label, target = self.target(k, len(values))
        if not isinstance(target, OntologyObject):
            self.ctx.report(target[0], target[1], where, group=label)
            return
        found = self._task(target, values)
        track = None
        if found is None and not self.dataset.confidence_first and len(values) > 2 and values[-1] == int(values[-1]) \
                and values[-1] >= 0:  # (ultralytics' tracker writes a track id after the confidence)
            found = self._task(target, values[:-1])
            track = f"track-{int(values[-1])}" if found is not None and found[2] is not None else None
            found = found if track is not None else None
        if found is None:
            self.ctx.report("yolo.bad_line", f"{len(values)} numbers after the class do not make a YOLO line for class "
                            f"{target.name!r} (a {target.shape})", where, group=label)
            return
        task, numbers, conf = found
        # a coordinate off the frame by less than the file's printed precision (0.133333 - 0.266667 / 2 is
        # -5e-7: a box from the edge, printed with 6 decimals) is on the frame's edge
        decimals = min(len(t) - t.index(".") - 1 if "." in t else 0 for t in tokens[1:])
        geometry = self._geometry(task, numbers, target, size, where, label, 1.5 * 10.0 ** -decimals)
        if geometry is None:
            return
        if geometry["shape"] == "bounding_box":  # the common case: a row of the unit's box table
            rows["class"].append(classes.setdefault((target.hash, label), len(classes)))
            rows["id"].append(track or f"l{n}")
            for c in ("x", "y", "w", "h"):
                rows[c].append(geometry[c])
            rows["confidence"].append(conf if conf is not None else 1.0)
            rows["line"].append(n)
            return
        frame: dict[str, Any] = {"frame": 0, "geometry": geometry, "source": {"file": file, "line": n, "group": label}}
        if conf is not None:
            frame["confidence"] = conf
        unit["objects"].append({"id": track or f"l{n}", "class": {"hash": target.hash}, "frames": [frame]})

    def _task(self, target: OntologyObject, values: list[float]) -> tuple[str, list[float], float | None] | None:
        """(task, its numbers, the trailing confidence or None) of a line's numbers for class ``target``."""
        task, kpt, count = self.dataset.task, self.dataset.kpt_shape, len(values)
        if task == "auto":
            task = {"rotatable_bounding_box": "obb", "polygon": "segment", "bitmask": "segment",
                    "skeleton": "pose"}.get(target.shape, "pose" if kpt is not None else "detect")
        if task == "segment":
            if count < 6:
                return None
            numbers = count if count % 2 == 0 else count - 1  # (an odd count: the last one is a confidence)
        elif task == "obb":
            numbers = 8
        elif task == "detect":
            numbers = 4
        else:  # pose: the box, then per keypoint 2 or 3 numbers
            if kpt is not None:
                numbers = 4 + kpt[0] * kpt[1]
            else:
                k = len(target.vertices)
                numbers = next((4 + k * d for d in (3, 2) if k and count in (4 + k * d, 5 + k * d)), -1)
        if count == numbers:
            return task, values, None
        if count == numbers + 1:
            if self.dataset.confidence_first:
                return task, values[1:], values[0]
            return task, values[:-1], values[-1]
        if task == "detect" and kpt is not None and count in (4 + kpt[0] * kpt[1], 5 + kpt[0] * kpt[1]):
            return "detect", values[:4], values[-1] if count == 5 + kpt[0] * kpt[1] else None  # (a pose line's box)
        return None

    def _geometry(self, task: str, v: list[float], target: OntologyObject, size: tuple[int, int] | None,
                  where: Location, label: str, tol: float) -> dict[str, Any] | None:
        shape = target.shape
        if task in ("detect", "pose") and shape != "skeleton":
            if task == "pose":
                self.ctx.report("yolo.not_carried", f"class {target.name!r} is a {shape}: the line's keypoints are not "
                                "carried", where, "info", group=label)
            cx, cy, w, h = v[:4]
            x, y = cx - w / 2, cy - h / 2
            x0, y0, x1, y1 = _snap(x, tol), _snap(y, tol), _snap(x + w, tol), _snap(y + h, tol)
            return {"shape": "bounding_box", "x": x0, "y": y0, "w": w if (x0, x1) == (x, x + w) else x1 - x0,
                    "h": h if (y0, y1) == (y, y + h) else y1 - y0}
        if task == "segment":
            return {"shape": "polygon", "polygons": [[[_snap(c, tol) for c in v]]]}
        if task == "obb":
            return self._rotated(v, size, where, label)
        return self._skeleton(v, target, where, label, tol)

    def _rotated(self, v: list[float], size: tuple[int, int] | None, where: Location,
                 label: str) -> dict[str, Any] | None:
        """Four corners (normalised) -> the rotated rectangle they are, measured in pixels: its centre, the
        length of its first edge (w) and second (h), and the first edge's angle (clockwise on screen)."""
        if size is None:
            self.ctx.report("frame.size_unknown", "an OBB's angle needs the image's pixel size (image not found: "
                            "give --images DIR)", where, group=label)
            return None
        width, height = size
        found = shapes.quad([(v[2 * k] * width, v[2 * k + 1] * height) for k in range(4)], width, height)
        if isinstance(found, str):
            self.ctx.report("yolo.not_a_rectangle", found, where, group=label)
            return None
        return found

    def _skeleton(self, v: list[float], target: OntologyObject, where: Location, label: str,
                  tol: float) -> dict[str, Any] | None:
        names = list(target.vertices)
        rest = v[4:]
        per = 3 if self.dataset.kpt_shape is None and len(rest) == 3 * len(names) else (
            self.dataset.kpt_shape[1] if self.dataset.kpt_shape else 2)
        k = len(rest) // per if per else 0
        if not names or k != len(names):
            self.ctx.report("yolo.keypoints", f"{k} keypoints, but the template of {target.name!r} has "
                            f"{len(names)} vertices", where, group=label)
            return None
        visibility = rest[2::3] if per == 3 else []
        flags = all(x in (0, 1, 2) for x in visibility)
        points = []
        for j, name in enumerate(names):
            p: dict[str, Any] = {"name": name, "x": _snap(rest[per * j], tol), "y": _snap(rest[per * j + 1], tol)}
            if per == 3:
                x = rest[per * j + 2]  # a flag (0, 1, 2), or a model's keypoint confidence
                p["visibility"] = ({0: "invisible", 1: "occluded", 2: "visible"}[int(x)] if flags
                                   else "visible" if x > 0.5 else "invisible")
            points.append(p)
        return {"shape": "skeleton", "points": points}


def _detect_columns(arr: Any, m: int, confidence_first: bool) -> tuple[Any, ...]:
    """Of detect lines of ``m`` (5 or 6) numbers, the rows of ``arr``: per row whether its class is a whole number
    of at least 0, its box's x, y, w and h (normalised, from the centre), its confidence (1.0 without one), and
    whether the box is inside the frame with every number of the line finite."""
    import numpy as np

    cls = arr[:, 0]
    first = confidence_first and m == 6
    cx, cy, w, h = (arr[:, 2:6] if first else arr[:, 1:5]).T
    x, y = cx - w / 2, cy - h / 2
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(cls) & (cls == np.floor(cls)) & (cls >= 0)
        inside = (x >= 0) & (y >= 0) & (x + w <= 1) & (y + h <= 1) & np.isfinite(arr).all(axis=1)
    conf = (arr[:, 1] if first else arr[:, 5]) if m == 6 else np.ones(len(arr))
    return whole, x, y, w, h, conf, inside


def _snap(v: float, tol: float) -> float:
    """A normalised coordinate within ``tol`` outside [0, 1], on the edge."""
    if -tol <= v < 0.0:
        return 0.0
    if 1.0 < v <= 1.0 + tol:
        return 1.0
    return v


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [YoloReader()]


_UNKNOWN: Any = object()
_NEGATIVE_ZERO = re.compile(rb"-0(?![0-9.eE])")


def numeric_lines(data: bytes) -> list[list[int | float]] | None:
    """A label file's lines as their numbers, when every token is a JSON number and the tokens are separated by
    single spaces (the usual file: what every YOLO writer prints), parsed as one JSON document (orjson); else None,
    and the file goes by its lines' tokens (``str.split``, ``float``). The same lines and values either way:
    JSON's numbers are a subset of what ``float`` reads, each read exactly; line breaks other than ``\n`` and
    ``\r\n`` (which ``str.splitlines`` also breaks on) and the integer ``-0`` (JSON's int 0, where ``float``
    reads -0.0) send the file the other way.

    Why: 3,000 of the bench's files (100 lines each) took 188 us a file as text, split and converted by numpy (read
    36, split 44, numbers 108), and 114 us this way (read 30, parse 54, numbers 31)."""
    import orjson

    if data.startswith(b"\xef\xbb\xbf"):  # (a byte-order mark, as "utf-8-sig" reads it)
        data = data[3:]
    body = data.rstrip()
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        if b"\r" in body:
            return None
    if body.translate(None, b"0123456789.eE+- \n") or (b"-0" in body and _NEGATIVE_ZERO.search(body)):
        return None  # (only numbers: no true, null, string or list is a token)
    try:
        found = orjson.loads(b"[[" + body.replace(b" ", b",").replace(b"\n", b"],[") + b"]]")
    except orjson.JSONDecodeError:
        return None
    return found  # type: ignore[no-any-return]
