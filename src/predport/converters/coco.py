"""Reader ``coco``: COCO annotation files (images / categories / annotations) and COCO results files (a bare
list of {image_id, category_id, bbox | segmentation | keypoints, score}).

The target shape is the ontology class's shape: bbox -> bounding box (or rotatable box, theta from
``attributes.rotation``); polygon segmentation -> one polygon object with every part; RLE (compressed or
uncompressed counts) -> an exact bitmask, or, for polygon classes, a polygon traced along the pixel edges with
its holes (the measured IoU is reported); keypoints -> a skeleton (COCO keypoint names = template vertex
names; v 0 invisible, 1 occluded, 2 visible) or points. Anything that does not resolve or fit is a located
problem; nothing is skipped silently.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, compress, pairwise
from operator import attrgetter, itemgetter
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeGuard

import msgspec
from msgspec import UNSET, UnsetType

import predport

if TYPE_CHECKING:
    import numpy as np
from predport.core import answers, jsonio
from predport.core.boxes import SharedBoxes
from predport.core.model import DataUnit
from predport.core.ontology import OBJECT_SHAPES, Ontology, OntologyObject
from predport.core.problems import Location, PredportError


class CocoReader(predport.BaseReader):
    name = "coco"
    description = "COCO annotation files and COCO results files (bbox, polygon / RLE segmentation, keypoints)"
    capabilities = predport.Capabilities(OBJECT_SHAPES, confidence=True, attributes=True, tracks=True)
    codes: ClassVar[Mapping[str, str]] = {
        "coco.image_unresolved": "an annotation's image_id is not among the images",
        "coco.geometry_unfit": "the annotation has no geometry that fits the target class's shape",
        "coco.no_scores": "no score in the file (or in some annotations): confidence 1.0",
        "coco.keypoint_scores": "keypoint third values are scores, not visibility flags",
        "coco.traced": "an RLE mask was traced to a polygon; the message gives the measured IoU",
        "coco.box_as_polygon": "an annotation without segmentation became the 4-corner polygon of its bbox",
        "coco.crowd_area": "a ground-truth annotation's iscrowd or area is not valid: not carried for evaluation",
        "coco.not_carried": "annotation attributes with no attribute of the class to answer (or no fitting option)",
    }

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--images", metavar="FILE",
                           help="a COCO file whose images and categories a results file refers to")
        group.add_argument("--image-key", choices=("file_name", "basename", "stem"), default="file_name",
                           help="data unit title from the COCO file_name: as is, its base name, or its stem "
                                "(--image-map may key on it or on the COCO image id)")

    def detect(self, path: Path) -> predport.Detection:
        if path.is_dir():
            files = _dataset_files(path)
            if not files:
                return predport.Detection(0, "a directory without a COCO file (annotations/*.json, or one .json)")
            found = self.detect(files[0])
            return predport.Detection(found.score * 0.95, f"a COCO dataset directory: {found.reason}")
        if path.suffix.lower() != ".json":
            return predport.Detection(0, "not a .json file")
        try:
            head = predport.file_head(path)
        except OSError as e:
            return predport.Detection(0, f"cannot read: {e}")
        text = head.lstrip()
        if text.startswith(b"[") and b'"image_id"' in head and b'"category_id"' in head:
            return predport.Detection(0.9, "a JSON list of records with image_id and category_id (COCO results)")
        # (a large COCO file lists thousands of images before its categories and annotations: the first images
        # and their file names are what the first 64 KB hold)
        if text.startswith(b"{") and b'"data_units"' not in head and (
                b'"annotations"' in head or (b'"images"' in head and (b'"categories"' in head
                                                                      or b'"file_name"' in head))):
            return predport.Detection(0.9, "a JSON object with images / categories / annotations (COCO)")
        return predport.Detection(0, "neither a COCO annotation file nor a COCO results list")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        if path.is_dir():
            files = _dataset_files(path)
            if not files:
                ctx.report("source.invalid", "no COCO file in the directory (annotations/*.json, or one .json)",
                           Location(str(path)))
            for f in files:
                yield from self.read(f, ctx)
            return
        opts = ctx.options
        name = str(path)
        parts, conv = None, None
        # (the boxes of the run's results files so far, about: numpy pays once they are many, in whatever files)
        boxes = ctx.memo["coco.boxes"] = ctx.memo.get("coco.boxes", 0) + path.stat().st_size // _BYTES_PER_BOX
        if opts.get("images") and _opens_list(path) and _columns_pay(boxes):
            import numpy  # noqa: F401 (imported before decode_parts forks: once, not in every process)

            # the converter first: each piece's records are routed to their data units where they are decoded
            conv = _Converter(ctx, name, "", str(opts["images"]), _load_meta(Path(str(opts["images"])), ctx.memo), opts)
            route = conv.route()
            if route is not None:
                parts = ctx.decode_parts(path, list[PlainResult], route.columns)
        n = sum(p.n for p in parts) if parts else 0
        if parts and n and conv is not None:  # plain box results for known images and box classes: one table
            plain = conv.plain_parts(parts)
            if plain is not None:
                yield from conv.plain_units(n, plain)
                return
            del parts, plain
            ok, data = ctx.load_json(path)  # (the same list, as dicts: what plain_parts refused, _plain would too)
            if ok:
                yield from conv.run(data, whole_file=False)
            return
        ok, data = ctx.load_json(path)
        if not ok:
            return
        if isinstance(data, list):
            anns, prefix = data, ""
            if not opts.get("images"):
                raise PredportError(f"{path} is a COCO results file: give --images FILE (a COCO file with the "
                                    "images and categories it refers to)")
            if conv is not None:  # (made above, for the same --images)
                yield from conv.run(anns)
                return
            meta_file = str(opts["images"])
            meta = _load_meta(Path(meta_file), ctx.memo)
        elif isinstance(data, dict):
            anns, prefix = _records(ctx, data, "annotations", name), "/annotations"
            meta_file, meta = name, data
            if opts.get("images"):
                meta_file, meta = str(opts["images"]), _load_meta(Path(str(opts["images"])), ctx.memo)
        else:
            ctx.report("source.invalid", "neither a COCO object nor a results list", Location(name))
            return
        yield from _Converter(ctx, name, prefix, meta_file, meta, opts).run(anns)


def _dataset_files(path: Path) -> list[Path]:
    """The COCO files of a dataset directory as tools export it: ``annotations/*.json`` (beside ``images/``), or
    the directory's one .json file. Files whose annotations carry no category (captions) are not detection
    files and are left to the user."""
    base = path / "annotations" if (path / "annotations").is_dir() else path
    found = [base / name for name, is_dir in predport.listing(base) if name.endswith(".json") and not is_dir]
    if base == path and len(found) != 1:
        return []
    return [f for f in found if not f.name.startswith(("captions_", "image_info_"))]


def _records(ctx: predport.ReadContext, doc: dict[str, Any], key: str, file: str) -> list[Any]:
    """``doc[key]`` when it is a list; [] (reported, unless it is absent or null) otherwise."""
    value = doc.get(key)
    if isinstance(value, list):
        return value
    if value is not None:
        ctx.report("source.invalid", f"{key!r} must be a list, not {type(value).__name__}", Location(file, f"/{key}"))
    return []


def _load_meta(path: Path, memo: dict[Any, Any] | None = None) -> dict[str, Any]:
    """The --images file, parsed; with ``memo`` (the run's :attr:`ReadContext.memo`), once for all the sources
    that refer to it (never changed after: the index made of it is kept beside it, :func:`_indexed`)."""
    try:
        st = path.stat()
        key = ("coco.images", str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        if memo is not None and key in memo:
            meta: dict[str, Any] = memo[key]
            return meta
        meta = jsonio.load(path)
    except (OSError, ValueError) as e:
        raise PredportError(f"cannot read --images {path}: {e}") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("images"), list):
        raise PredportError(f"--images {path} has no 'images' list")
    if memo is not None:
        memo[key] = meta
    return meta


@dataclass
class _Images:
    """A COCO images list indexed (:func:`_index_images`): made once per images list and option, shared by the
    converters of all the sources that refer to it, and never changed after."""

    images: dict[Any, tuple[str, dict[str, Any]]]  # id -> (title, image)
    units: dict[str, dict[str, Any]]  # title -> the data unit's template
    unit_images: dict[str, tuple[str, dict[str, Any]]]
    frames: dict[str, int]  # image id -> its frame, for the frames of an exported video
    unsupported: dict[str, str]  # image id -> the medium predport does not convert (DICOM, NIfTI)
    invalid: list[int]  # the entries without an id (each source's converter reports them)
    #: the images' part of a :class:`_Route` (images, unit, wh, fit), made when first asked for
    #: (:meth:`_Converter.route`)
    routes: tuple[Any, ...] | None = None


def _indexed(memo: dict[Any, Any], meta_file: str, images: list[Any], key: str) -> tuple[_Images, bool]:
    """:func:`_index_images` of an --images file's images, made once per run (``memo``) for the same parsed list;
    and whether it was made now (its problems are said once)."""
    found = memo.get(("coco.index", meta_file, key))
    if found is not None and found[0] is images:
        return found[1], False
    index = _index_images(images, meta_file, key)
    memo[("coco.index", meta_file, key)] = (images, index)
    return index, True


def _index_images(images: list[Any], meta_file: str, key: str) -> _Images:
    """The data units of a COCO images list, by title (``key``: the image_key option), and each image id's."""
    out = _Images({}, {}, {}, {}, {}, [])
    named = Counter(im.get("image_title") for im in images if isinstance(im, dict))
    for k, im in enumerate(images):
        if not isinstance(im, dict) or "id" not in im:
            out.invalid.append(k)
            continue
        file_name = str(im.get("file_name") or im["id"])
        encord = _ENCORD.fullmatch(file_name) if ("image_title" in im or "video_title" in im
                                                  or file_name.startswith(("dicom/", "nifti/"))) else None
        kind = "image"
        if encord is not None:  # the encord SDK's export: its data hashes, titles and video frames
            if encord["media"] in ("dicom", "nifti"):
                out.unsupported[str(im["id"])] = encord["media"]
                continue
            kind = "video" if encord["media"] == "videos" else "image"
            title = str(im.get("video_title") or im.get("image_title") or file_name)
            if kind == "image" and named[title] > 1:  # (members of image groups repeat titles)
                title = file_name
            out.frames[str(im["id"])] = int(encord["frame"]) if kind == "video" else 0
        elif key == "basename":
            title = PurePosixPath(file_name.replace("\\", "/")).name
        elif key == "stem":
            title = PurePosixPath(file_name.replace("\\", "/")).stem
        else:
            title = file_name
        out.images[str(im["id"])] = (title, im)
        out.unit_images.setdefault(title, (title, im))
        if type(im["id"]) is int:
            out.images[im["id"]] = (title, im)  # the usual key type first; "2299" finds it too
        if title not in out.units:
            # source.record: the COCO image id, which --image-map may key on
            src = {"file": meta_file, "pointer": f"/images/{k}", "record": _record(im["id"])}
            unit: dict[str, Any] = {"title": title, "kind": kind, "width": _int(im.get("width")),
                                    "height": _int(im.get("height")), "objects": [], "classifications": [],
                                    "source": src}
            if encord is not None:
                unit["data_hash"] = encord["hash"]
            out.units[title] = unit
    return out


@dataclass
class _Plain:
    """The columns of a file of plain boxes, in annotation order, and the order that puts them in data-unit order:
    unit k's rows are ``order[bounds[k]:bounds[k + 1]]`` (:meth:`columns` gathers a range of them).

    Why the gathering waits: a worker process needs only its own units' rows. Gathering all seven columns into
    unit order, before the run's workers fork, took 0.05-0.07 s of the bench's 500k rows, in the one process that
    runs then; each worker now gathers its own rows, at once with the other (and checks only those rows: the
    shared table's bulk checks, 0.03 s over all of them)."""

    order: np.ndarray[Any, Any]  # each row's annotation index, rows in unit order
    bounds: list[int]
    entries: list[dict[str, Any]]  # the box table class entries, by box category in id order
    #: by annotation index, in pieces (the parts the file was decoded in): "class" (an index into entries), the
    #: normalised "x", "y", "w", "h", and "confidence" when every score is a float
    parts: dict[str, list[np.ndarray[Any, Any]]]
    scores: list[Any]  # as given, by annotation index (when they are not all floats)
    ids: list[str] | None  # by annotation index; None: the index is the id
    missing: int

    def columns(self, lo: int, hi: int) -> dict[str, Any]:
        """Rows ``lo`` to ``hi - 1`` of every column of a shared table (:class:`SharedBoxes`)."""
        idx = self.order[lo:hi]
        out: dict[str, Any] = {name: self._take(name, idx) for name in _ROUTED[1:]}
        out["record"] = idx
        out["id"] = idx if self.ids is None else list(map(self.ids.__getitem__, idx.tolist()))
        out["confidence"] = (self._take("confidence", idx) if "confidence" in self.parts
                             else list(map(self.scores.__getitem__, idx.tolist())))
        return out

    def _take(self, name: str, idx: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        import numpy as np

        pieces = self.parts[name]
        if len(pieces) > 1 and 8 * len(idx) < len(self.order):  # (a few rows: each from its piece, nothing joined)
            starts = np.cumsum([0, *map(len, pieces)])
            at = np.searchsorted(starts, idx, side="right") - 1
            out = np.empty(len(idx), dtype=pieces[0].dtype)
            for k in set(at.tolist()):  # (not np.unique: its first call takes 15 ms)
                mask = at == k
                out[mask] = pieces[k][idx[mask] - starts[k]]
            return out
        # (the pieces joined for the gather, a column at a time: with many workers, each joins them)
        whole = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        taken: np.ndarray[Any, Any] = whole[idx]
        return taken


class _Converter:
    def __init__(self, ctx: predport.ReadContext, file: str, prefix: str, meta_file: str, meta: dict[str, Any],
                 opts: dict[str, Any]) -> None:
        self.ctx, self.file, self.prefix, self.meta_file = ctx, file, prefix, meta_file
        self.ontology: Ontology = ctx.ontology
        self.key = opts.get("image_key") or "file_name"
        categories = _records(ctx, meta, "categories", meta_file)
        for k, c in enumerate(categories):
            if not isinstance(c, dict):
                ctx.report("source.invalid", "a category is an object with an id and a name",
                           Location(meta_file, f"/categories/{k}"))
        self.categories = {str(c.get("id")): c for c in categories if isinstance(c, dict)}
        self._classes: dict[Any, OntologyObject | tuple[str, str]] = {}
        self._by_kind: dict[tuple[Any, str], OntologyObject | tuple[str, str]] = {}
        self._groups: dict[Any, str] = {}
        self._fast: dict[int, int] = {}  # box category -> its index in box_classes
        self.box_classes: list[dict[str, Any]] = []  # box table class entries (shared by the units' tables)
        self.keypoint_scores = 0
        self.not_carried: Counter[str] = Counter()
        images = _records(ctx, meta, "images", meta_file)
        # (an --images file's index is the run's, for every source, and its problems are said once; a COCO file's
        # own images are its own)
        self.index, new = _indexed(ctx.memo, meta_file, images, self.key) if meta_file != file else (
            _index_images(images, meta_file, self.key), True)
        for k in self.index.invalid if new else ():
            ctx.report("source.invalid", "image entry without id", Location(meta_file, f"/images/{k}"))
        self.images, self.units, self.unit_images = self.index.images, self.index.units, self.index.unit_images
        self.frames, self.unsupported = self.index.frames, self.index.unsupported
        for c in categories:
            if isinstance(c, dict):
                self._class(c.get("id"))  # resolve every category once (fills the fast paths' box classes)

    # -- images and categories ----------------------------------------------------------------------------
    def _class(self, category_id: Any, kind: str = "") -> OntologyObject | tuple[str, str]:
        """The ontology object for a COCO category (the core's --class-map applied), or (code, why not); where
        several ontology objects have the name, the one of the shape the annotation's geometry (``kind``) fits."""
        if kind:
            first = self._class(category_id)
            if isinstance(first, OntologyObject) or first[0] != "class.ambiguous" or type(category_id) not in (
                    int, str):
                return first
            key = (category_id, kind)
            if key not in self._by_kind:
                cat = self.categories.get(str(category_id))
                self._by_kind[key] = self.ctx.resolve_class(str(cat.get("name")) if cat else None, category_id,
                                                            shapes=_SHAPES[kind])
            return self._by_kind[key]
        found = self._classes.get(category_id) if type(category_id) in (int, str) else None
        if found is not None:
            return found
        cat = self.categories.get(str(category_id))
        result = self.ctx.resolve_class(str(cat.get("name")) if cat else None, category_id)
        if cat is None and not isinstance(result, OntologyObject) and self.ctx.classes.key(None, category_id) is None:
            result = ("class.unknown", f"category_id {category_id!r} is not among the categories")
        if type(category_id) in (int, str):
            self._classes[category_id] = result
            if isinstance(result, OntologyObject) and result.shape == "bounding_box" and type(category_id) is int:
                # one shared class entry per category (records are never mutated downstream)
                self._fast[category_id] = len(self.box_classes)
                self.box_classes.append({"class": {"hash": result.hash}, "group": self.group(category_id)})
        return result

    def group(self, category_id: Any) -> str:
        """The category's name, for per-category counts."""
        found = self._groups.get(category_id) if type(category_id) in (int, str) else None
        if found is None:
            cat = self.categories.get(str(category_id))
            found = str(cat.get("name")) if cat else str(category_id)
            if type(category_id) in (int, str):
                self._groups[category_id] = found
        return found

    # -- annotations --------------------------------------------------------------------------------------
    def run(self, anns: list[Any], whole_file: bool = True) -> Iterator[DataUnit]:
        # pass 1: route every annotation to its data unit (indices only: memory stays that of the parsed file)
        routes: dict[str, list[int]] = {title: [] for title in self.units}
        plain = self._plain(anns) if whole_file else None
        if plain is not None:  # a file of plain boxes only: routed, and its tables cut, a column at a time
            yield from self.plain_units(len(anns), plain)
            return
        slots = {k: routes[image[0]] for k, image in self.images.items() if type(k) is int}  # id -> its unit's list
        missing = 0
        for i, ann in enumerate(anns):
            # the usual annotation in as few steps as possible; anything else takes _route
            image_id = ann.get("image_id") if type(ann) is dict and "category_id" in ann else None
            slot = slots.get(image_id) if type(image_id) is int else None
            if slot is not None:
                slot.append(i)
                if "score" not in ann:
                    missing += 1
            elif self._route(i, ann, routes):
                missing += "score" not in ann
        self._no_scores(missing, len(anns))
        self.ctx.expect(list(routes), [len(r) + 5 for r in routes.values()])
        # pass 2: one data unit at a time
        for title, template in self.units.items():
            if not self.ctx.mine(title):
                continue  # another worker process converts this one
            unit = {**template, "objects": []}
            tracks: dict[str, dict[str, Any]] = {}
            im = self.unit_images[title][1]  # a unit is one image (or the frames of one video): looked up once
            objects = unit["objects"]
            rest = routes[title]
            w, h = im.get("width"), im.get("height")
            if type(w) is int and type(h) is int and w > 0 and h > 0 and rest and unit["kind"] == "image":
                rest = self._box_table(unit, rest, anns, w, h)
            for i in rest:
                self._annotation(i, anns[i], im, objects, tracks)
            yield unit  # type: ignore[misc]
        if self.not_carried:
            self.ctx.report("coco.not_carried", "not carried: " + ", ".join(
                f"{k} x{n}" for k, n in sorted(self.not_carried.items())), Location(self.file), "info")
        if self.keypoint_scores:
            self.ctx.report("coco.keypoint_scores",
                            f"in {self.keypoint_scores} annotation(s) the keypoints' third values are scores, not "
                            "0/1/2 flags: a score > 0 counts as visible, 0 as invisible", Location(self.file),
                            "warning")

    def _plain(self, anns: list[Any]) -> _Plain | None:
        """The columns of a file that is nothing but plain boxes -- every annotation a dict with an int image_id
        of a known image that can hold a box table, an int category_id of a box class, a bbox of 4 numbers and no
        attributes, area or iscrowd, as model results usually are -- routed to their data units a column at a
        time; None for any other file (which takes the annotation-at-a-time path, with the same outcome).

        Why: on the bench's 500k boxes, routing them and building the tables a unit at a time took 1.22 s after
        parsing (0.15 s and 1.07 s); these whole-file passes and per-unit slices take 0.83 s (0.58 s and 0.25
        s). The passes run before worker processes fork, the slices in each. It never reports anything:
        whatever it does not clear, the general path sees (a differential test holds the two to the same
        units and problems). A results file that msgspec decodes into :class:`PlainResult` records skips the
        type passes, and is routed as it is decoded (:meth:`_Route.columns`, :meth:`plain_parts`)."""
        fast = self._fast
        if not anns or not fast or not _columns_pay(len(anns)) or not _DICT.issuperset(map(type, anns)):
            return None
        import numpy as np

        keys = set(chain.from_iterable(anns))
        if not keys.isdisjoint(("attributes", "area", "iscrowd")):
            return None
        try:
            iids, cids, bbs = list(map(_IMAGE, anns)), list(map(_CATEGORY, anns)), list(map(_BBOX, anns))
        except KeyError:
            return None
        if not (_INT.issuperset(map(type, iids)) and _INT.issuperset(map(type, cids)) and fast.keys() >= set(cids)
                and _LIST.issuperset(map(type, bbs)) and set(map(len, bbs)) == {4}):
            return None
        numbers = set(map(type, chain.from_iterable(bbs)))
        if not _NUM.issuperset(numbers):
            return None
        try:
            scores = list(map(_SCORE, anns))
            missing = 0
        except KeyError:
            scores = [a.get("score", 1.0) for a in anns]
            missing = sum("score" not in a for a in anns)
        ids = [str(a["id"]) if "id" in a else str(i) for i, a in enumerate(anns)] if "id" in keys else None
        try:  # (an int that no int64 or float64 holds: OverflowError)
            image, category = np.array(iids, dtype=np.int64), np.array(cids, dtype=np.int64)
            box = np.fromiter(chain.from_iterable(bbs), dtype=np.float64, count=4 * len(bbs)).reshape(-1, 4)
        except OverflowError:
            return None
        if int in numbers and not (np.abs(box) <= 2.0 ** 53).all():  # (beyond it, an int's float is rounded)
            return None
        route = self.route()
        routed = route.rows(image, category, box) if route is not None else None
        if routed is None:
            return None
        given = _floats(scores)
        pieces = {name: [routed[k]] for k, name in enumerate(_ROUTED) if k}
        if isinstance(given, np.ndarray):
            pieces["confidence"] = [given]
        return self._sorted([routed[0]], pieces, [] if isinstance(given, np.ndarray) else given, missing, ids)

    def plain_parts(self, parts: list[_PartColumns]) -> _Plain | None:
        """:meth:`_plain` for results that msgspec decoded into :class:`PlainResult` records, part by part
        (:meth:`_Route.columns`): their types are checked, and their rows routed, already. None when they are
        not for known images and box classes."""
        import numpy as np

        if not all(p.routed is not None for p in parts):
            return None

        routed: list[tuple[np.ndarray[Any, Any], ...]] = [p.routed for p in parts]  # type: ignore[misc]
        pieces = {name: [r[k] for r in routed] for k, name in enumerate(_ROUTED) if k}
        scores: list[Any] = []
        if all(isinstance(p.scores, np.ndarray) for p in parts):
            pieces["confidence"] = [p.scores for p in parts]  # type: ignore[misc]
        else:  # (as given: an int stays an int)
            scores = list(chain.from_iterable(
                p.scores.tolist() if isinstance(p.scores, np.ndarray) else p.scores for p in parts))
        ids: list[str] | None = None
        if any(p.ids is not None for p in parts):  # the given ids; an annotation without one: its index
            ids, offset = [], 0
            for p in parts:
                ids.extend(map(str, range(offset, offset + p.n)) if p.ids is None else
                           [str(offset + i) if a is None else a for i, a in enumerate(p.ids)])
                offset += p.n
        return self._sorted([r[0] for r in routed], pieces, scores, sum(p.missing for p in parts), ids)

    def route(self) -> _Route | None:
        """What routes plain boxes' rows to their data units (:class:`_Route`), or None when no image has an int
        id (no results file's rows can be plain boxes of known images then)."""
        import numpy as np

        if not self._fast:
            return None
        if self.index.routes is None:  # (the images' part: once for all the sources of the --images file)
            position = {title: k for k, title in enumerate(self.units)}
            unit_of = {k: position[im[0]] for k, im in self.images.items() if type(k) is int and -2**63 <= k < 2**63}
            wh = np.zeros((len(position), 2), dtype=np.float64)
            fit = np.zeros(len(position), dtype=bool)
            for k, template in enumerate(self.units.values()):
                im = self.unit_images[template["title"]][1]
                w, h = im.get("width"), im.get("height")
                if type(w) is int and type(h) is int and w > 0 and h > 0 and template["kind"] == "image":
                    wh[k], fit[k] = (w, h), True
            self.index.routes = (_Lookup(np.fromiter(unit_of, dtype=np.int64, count=len(unit_of))),
                                 np.fromiter(unit_of.values(), dtype=np.int64, count=len(unit_of)), wh, fit)
        images, unit, wh, fit = self.index.routes
        if not len(unit):
            return None
        return _Route(images, unit, wh, fit, _Lookup(np.array(sorted(self._fast), dtype=np.int64)))

    def _sorted(self, units: list[np.ndarray[Any, Any]], pieces: dict[str, list[np.ndarray[Any, Any]]],
                scores: list[Any], missing: int, ids: list[str] | None) -> _Plain:
        """Routed rows (:meth:`_Route.rows`, their data units in pieces, the other columns in ``pieces``), the order
        that sorts them by data unit, each unit's in file order."""
        import numpy as np

        n_units = len(self.units)
        # 16-bit keys sort by radix: a tenth of the time of a merge sort on 64-bit ones
        kind = np.uint16 if n_units <= 1 << 16 else np.int64
        keyed = np.concatenate([u.astype(kind) for u in units]) if len(units) > 1 else units[0].astype(kind)
        order = np.argsort(keyed, kind="stable")  # a unit's annotations in file order, as routing appends them
        bounds = np.concatenate(([0], np.cumsum(np.bincount(keyed, minlength=n_units))))
        return _Plain(order=order, bounds=bounds.tolist(),
                      entries=[self.box_classes[self._fast[c]] for c in sorted(self._fast)], parts=pieces,
                      scores=scores, ids=ids, missing=missing)

    def plain_units(self, n: int, plain: _Plain) -> Iterator[DataUnit]:
        """The data units of a file of ``n`` plain boxes (:meth:`_plain`): each unit's table is a range of rows
        of a table shared by the units this process converts (:class:`~predport.core.boxes.SharedBoxes`),
        checked once."""

        self._no_scores(plain.missing, n)
        bounds = plain.bounds
        titles = list(self.units)
        # (a unit's work: its boxes, and about as much again as five boxes whatever it holds)
        self.ctx.expect(titles, [b - a + 5 for a, b in pairwise(bounds)], cheap=True)
        shared: SharedBoxes | None = None
        lo = hi = 0
        first = True
        for k, (title, template) in enumerate(self.units.items()):
            if not self.ctx.mine(title):
                continue  # another worker process converts this one
            unit = {**template, "objects": []}
            a, b = bounds[k], bounds[k + 1]
            if a < b:
                if shared is None or not lo <= a < b <= hi:
                    # the table: this unit's rows and those of the units after it that this process converts; the
                    # first unit's alone (the run's workers fork after it: they gather their own rows at once)
                    last = k if first else next(j for j in range(len(titles) - 1, k - 1, -1)
                                                if self.ctx.mine(titles[j]))
                    lo, hi = a, bounds[last + 1]
                    shared = SharedBoxes(plain.entries, plain.columns(lo, hi), field="bbox",
                                         source={"file": self.file, "pointer": self.prefix},
                                         units=[bounds[j] - lo for j in range(k, last + 1)
                                                if bounds[j] < bounds[j + 1]])  # (where its units' rows begin)
                unit["boxes"] = shared.rows(a - lo, b - lo)
            first = False
            yield unit  # type: ignore[misc]

    def _no_scores(self, missing: int, n: int) -> None:
        """Say how many of the file's ``n`` annotations have no score (each gets confidence 1.0)."""
        if n and missing == n:
            self.ctx.report("coco.no_scores", "no annotation has a score: every confidence is 1.0",
                            Location(self.file), "info")
        elif missing:
            self.ctx.report("coco.no_scores", f"{missing} annotation(s) have no score: confidence 1.0",
                            Location(self.file), "warning")

    def _route(self, i: int, ann: Any, routes: dict[str, list[int]]) -> bool:
        """Route one annotation that is not simply {int image_id, category_id, ...}, or report it."""
        if type(ann) is not dict or "image_id" not in ann or "category_id" not in ann:
            self.ctx.report("source.invalid", "annotation without image_id or category_id",
                            Location(self.file, f"{self.prefix}/{i}"))
            return False
        image = _lookup(self.images, ann["image_id"])
        if image is None and str(ann["image_id"]) in self.unsupported:
            self.ctx.report("source.unsupported", f"image_id {ann['image_id']!r} is a frame of a "
                            f"{self.unsupported[str(ann['image_id'])]} series, which predport does not convert",
                            Location(self.file, f"{self.prefix}/{i}/image_id"), group=self.group(ann["category_id"]))
            return False
        if image is None:
            self.ctx.report("coco.image_unresolved", f"image_id {ann['image_id']!r} is not among the images",
                            Location(self.file, f"{self.prefix}/{i}/image_id"), group=self.group(ann["category_id"]))
            return False
        routes[image[0]].append(i)
        return True

    def _box_table(self, unit: dict[str, Any], idx: list[int], anns: list[Any], w: int, h: int) -> list[int]:
        """Put the unit's plain boxes of box classes into its box table, a column at a time; return the indices
        of the other annotations (the general path). Checked for the whole unit at once first: the usual
        results file has nothing else."""
        fast = self._fast
        rows = list(map(anns.__getitem__, idx))
        cids = list(map(_CATEGORY, rows))  # (routing saw category_id in every one)
        keys = set(chain.from_iterable(rows))  # every key any of them has
        try:
            bbs = list(map(_BBOX, rows))
        except KeyError:  # some have none: the row-by-row split below
            bbs = []
        gt = "area" in keys or "iscrowd" in keys  # COCO ground truth: its area and iscrowd go along, when valid
        if (_INT.issuperset(map(type, cids)) and fast.keys() >= set(cids) and len(bbs) == len(rows)
                and _LIST.issuperset(map(type, bbs)) and set(map(len, bbs)) == {4}
                and _NUM.issuperset(map(type, chain.from_iterable(bbs))) and "attributes" not in keys
                and (not gt or all(_crowd_area(a) is not None for a in rows))):
            rest: list[int] = []
        else:
            plain = [type(c) is int and c in fast and type(b) is list and len(b) == 4 and _NUM.issuperset(map(type, b))
                     and "attributes" not in a and (not gt or _crowd_area(a) is not None)
                     for a, c, b in zip(rows, cids, map(_get_bbox, rows), strict=True)]
            rest = [i for i, p in zip(idx, plain, strict=True) if not p]
            if len(rest) == len(idx):
                return rest
            idx, rows, cids = list(compress(idx, plain)), list(compress(rows, plain)), list(compress(cids, plain))
            bbs = list(map(_BBOX, rows))
        every = self.box_classes
        used = sorted(set(cids))  # the unit's own classes: each one is checked once per unit
        local = {c: j for j, c in enumerate(used)}
        if "id" in keys:
            ids = [str(a["id"]) if "id" in a else str(i) for a, i in zip(rows, idx, strict=True)]
        else:
            ids = list(map(str, idx))
        try:
            scores = list(map(_SCORE, rows))
        except KeyError:
            scores = [a.get("score", 1.0) for a in rows]
        table = unit["boxes"] = {
            "classes": [every[fast[c]] for c in used], "class": [local[c] for c in cids], "id": ids,
            "x": [b[0] / w for b in bbs], "y": [b[1] / h for b in bbs],
            "w": [b[2] / w for b in bbs], "h": [b[3] / h for b in bbs], "confidence": scores,
            "record": idx, "field": "bbox", "source": {"file": self.file, "pointer": self.prefix}}
        if gt:
            carried = [_crowd_area(a) or {} for a in rows]
            table["area"] = [c.get("area", 0.0) for c in carried]
            table["iscrowd"] = [c.get("iscrowd", False) for c in carried]
        return rest

    def _annotation(self, i: int, ann: dict[str, Any], im: dict[str, Any], objects: list[dict[str, Any]],
                    tracks: dict[str, dict[str, Any]]) -> None:
        ptr = f"{self.prefix}/{i}"
        cid = ann["category_id"]
        obj = self._class(cid, _kind(ann))
        group = self.group(cid)
        if not isinstance(obj, OntologyObject):  # (the code and) the reason it does not resolve
            self.ctx.report(obj[0], obj[1], Location(self.file, ptr + "/category_id"), group=group)
            return
        score = ann.get("score", 1.0)
        made = self._geometries(ann, obj, _int(im.get("width")), _int(im.get("height")), ptr, group)
        if made is None:
            return
        ident = str(ann.get("id", i))
        attrs = ann.get("attributes")
        attrs = attrs if type(attrs) is dict else {}
        # an instance over frames: the encord export's object hash, else a track id (CVAT's export)
        uuid, track = attrs.get("encord_track_uuid"), attrs.get("track_id")
        track = str(uuid) if type(uuid) is str else (f"track-{track}" if track is not None else None)
        frame = self.frames.get(str(ann["image_id"]), 0)
        file = self.file
        coco = self._carried(ann, obj, ptr, group)
        given = self._answers(attrs, obj, frame) if attrs else []
        for n, (key, geometry) in enumerate(made):
            rec = {"frame": frame, "geometry": geometry, "confidence": score,
                   "source": {"file": file, "pointer": f"{ptr}/{key}", "group": group}}
            if coco:
                rec["coco"] = coco
            oid = ident if len(made) == 1 else f"{ident}.{n}"
            if track is not None:
                oid = track if len(made) == 1 else f"{track}.{n}"
                prev = tracks.get(oid)
                if prev is not None:
                    prev["frames"].append(rec)
                    for a in given:
                        _merge_answer(prev, a)
                    continue
            o: dict[str, Any] = {"id": oid, "class": {"hash": obj.hash}, "frames": [rec]}  # (its source: where)
            if given:
                o["answers"] = [dict(a) for a in given]
            if track is not None:
                tracks[oid] = o
            objects.append(o)

    def _answers(self, attrs: dict[str, Any], obj: OntologyObject, frame: int) -> list[dict[str, Any]]:
        """Answers from an annotation's attributes: CVAT's export (name: value), and the encord export's
        ``classifications`` (an attribute's name: its option label or text; a checklist as each option's
        label: true / false). Dynamic attributes are answered for the annotation's frame."""
        out: list[dict[str, Any]] = []
        pairs = [(k, v) for k, v in attrs.items() if k not in _RESERVED]
        nested = attrs.get("classifications")
        checked: dict[str, list[str]] = {}
        if isinstance(nested, dict):
            for k, v in nested.items():
                found = answers.attribute(obj, k)
                if found is None:  # an option label of a checklist: true selects it
                    owner = [a for a in obj.attributes.values() if a.type == "checklist" and answers.option(a, k)]
                    if len(owner) == 1:
                        if v is True:
                            checked.setdefault(owner[0].name, []).append(k)
                        continue
                if v is not None and v is not False:
                    pairs.append((k, v))
        pairs += list(checked.items())
        for k, v in pairs:
            if k == "occluded" and answers.attribute(obj, k) is None:
                if v:
                    self.not_carried["occluded"] += 1
                continue
            a = answers.answer(obj, k, v)
            if isinstance(a, str):
                self.not_carried[a] += 1
                continue
            if obj.attributes[a["attribute"]["hash"]].dynamic and self.frames:
                a["frames"] = [[frame, frame]]
            out.append(a)
        return out

    def _carried(self, ann: dict[str, Any], obj: OntologyObject, ptr: str, group: str) -> dict[str, Any] | None:
        """COCO ground truth's area, iscrowd (and, for keypoints, bbox), for predport evaluate; a value that
        is not valid is said and left out."""
        if "area" not in ann and "iscrowd" not in ann:
            return None  # (a results file)
        coco = _crowd_area(ann)
        if coco is None:
            self.ctx.report("coco.crowd_area", f"iscrowd {ann.get('iscrowd')!r} / area {ann.get('area')!r} are not "
                            "0/1 and a number >= 0: not carried for evaluation", Location(self.file, ptr),
                            "warning", group=group)
            return None
        if obj.shape in ("skeleton", "point") and _is_box(ann.get("bbox")):
            coco["bbox"] = list(ann["bbox"])
        return coco

    def _unfit(self, ptr: str, group: str, obj: OntologyObject, what: str) -> None:
        self.ctx.report("coco.geometry_unfit", f"{what}; class {obj.name!r} is a {obj.shape}",
                        Location(self.file, ptr), group=group)

    def _geometries(self, ann: dict[str, Any], obj: OntologyObject, w: int | None, h: int | None, ptr: str,
                    group: str) -> list[tuple[str, dict[str, Any]]] | None:
        shape = obj.shape
        if w is None or h is None or w <= 0 or h <= 0:
            self.ctx.report("frame.size_unknown", f"the image's width / height ({w}, {h}) are missing or not "
                            "positive: coordinates cannot be normalised", Location(self.file, ptr), group=group)
            return None
        bbox = ann.get("bbox")
        seg = ann.get("segmentation")
        if shape in ("bounding_box", "rotatable_bounding_box"):
            if not _is_box(bbox):
                self._unfit(ptr, group, obj, "no bbox [x, y, w, h]")
                return None
            x, y, bw, bh = bbox
            g = {"shape": shape, "x": x / w, "y": y / h, "w": bw / w, "h": bh / h}
            if shape == "rotatable_bounding_box":
                attrs = ann.get("attributes")
                rotation = attrs.get("rotation", 0.0) if isinstance(attrs, dict) else 0.0
                if type(rotation) not in _NUM:
                    self.ctx.report("source.invalid", f"attributes.rotation {rotation!r} is not a number (degrees)",
                                    Location(self.file, ptr + "/attributes/rotation"), group=group)
                    return None
                g["theta"] = float(rotation)
            return [("bbox", g)]
        if shape == "polygon":
            if isinstance(seg, list) and seg:
                if not all(type(ring) is list and _NUM.issuperset(map(type, ring)) for ring in seg):
                    self.ctx.report("source.invalid", "a polygon segmentation is a list of [x1, y1, x2, y2, ...] "
                                    "lists of numbers", Location(self.file, ptr + "/segmentation"), group=group)
                    return None
                parts = [[[v / (w if k % 2 == 0 else h) for k, v in enumerate(ring)]] for ring in seg]
                return [("segmentation", {"shape": "polygon", "polygons": parts})]
            if isinstance(seg, dict):
                mask = self._decode(seg, w, h, ptr, group)
                if mask is None:
                    return None
                from predport.core import trace  # numpy & pycocotools load only when masks appear

                polys = trace.mask_to_polygons(mask)
                if not polys:
                    self._unfit(ptr, group, obj, "the RLE mask is empty")
                    return None
                score = trace.iou(trace.rasterize(polys, h, w), mask)
                self.ctx.report("coco.traced", f"RLE mask traced to {len(polys)} polygon(s) with "
                                f"{sum(len(p) - 1 for p in polys)} hole(s); IoU with the mask {score:.6f}",
                                Location(self.file, ptr + "/segmentation"), "info", group=group)
                norm = [[[v / (w if k % 2 == 0 else h) for k, v in enumerate(r)] for r in p] for p in polys]
                return [("segmentation", {"shape": "polygon", "polygons": norm})]
            if _is_box(bbox):
                x, y, bw, bh = bbox
                self.ctx.report("coco.box_as_polygon", "no segmentation: the bbox's corners became the polygon",
                                Location(self.file, ptr + "/bbox"), "info", group=group)
                ring = [x / w, y / h, (x + bw) / w, y / h, (x + bw) / w, (y + bh) / h, x / w, (y + bh) / h]
                return [("bbox", {"shape": "polygon", "polygons": [[ring]]})]
            self._unfit(ptr, group, obj, "no segmentation and no bbox")
            return None
        if shape == "polyline":
            line = seg[0] if isinstance(seg, list) and len(seg) == 1 and type(seg[0]) is list else None
            if line is None or len(line) < 4 or len(line) % 2 or not _NUM.issuperset(map(type, line)):
                self._unfit(ptr, group, obj, "no segmentation ring to read a line from")
                return None
            if _walks_back(line):  # (the encord export writes a line as a ring that walks there and back)
                line = line[:len(line) // 2]
            return [("segmentation", {"shape": "polyline",
                                      "points": [v / (w if k % 2 == 0 else h) for k, v in enumerate(line)]})]
        if shape == "bitmask":
            if isinstance(seg, dict) or (isinstance(seg, list) and seg):
                mask = self._decode(seg, w, h, ptr, group)
                if mask is None:
                    return None
                from predport.core import rle as rlemod

                return [("segmentation", {"shape": "bitmask", "width": w, "height": h,
                                          "rle": rlemod.from_mask(mask)})]
            self._unfit(ptr, group, obj, "no segmentation (a bitmask needs a mask or polygon)")
            return None
        if shape in ("skeleton", "point"):
            kps = ann.get("keypoints")
            if not isinstance(kps, list) or not kps or len(kps) % 3:
                self._unfit(ptr, group, obj, "no keypoints [x1, y1, v1, ...]")
                return None
            bad = next((k for k, v in enumerate(kps) if type(v) not in _NUM), None)
            if bad is not None:
                self.ctx.report("source.invalid", f"keypoint value {kps[bad]!r} is not a number",
                                Location(self.file, f"{ptr}/keypoints/{bad}"), group=group)
                return None
            flags = all(v in (0, 1, 2) for v in kps[2::3])
            if not flags:
                self.keypoint_scores += 1
            names = self._keypoint_names(ann, obj)
            points = []
            for k in range(len(kps) // 3):
                x, y, v = kps[3 * k: 3 * k + 3]
                vis = ({0: "invisible", 1: "occluded", 2: "visible"}[int(v)] if flags
                       else ("visible" if v > 0 else "invisible"))
                points.append((k, x, y, vis))
            if shape == "point":
                made = [(f"keypoints/{3 * k}", {"shape": "point", "x": x / w, "y": y / h})
                        for k, x, y, vis in points if vis != "invisible"]
                if not made:
                    self._unfit(ptr, group, obj, "no keypoint is labelled (all v = 0)")
                return made or None
            pts = []
            for k, x, y, vis in points:
                p: dict[str, Any] = {"x": x / w, "y": y / h, "visibility": vis}
                if k < len(names):
                    p["name"] = names[k]
                else:
                    p["name"] = f"keypoint {k + 1}"
                pts.append(p)
            return [("keypoints", {"shape": "skeleton", "points": pts})]
        self._unfit(ptr, group, obj, "COCO has no geometry for this shape")
        return None

    def _keypoint_names(self, ann: dict[str, Any], obj: OntologyObject) -> list[str]:
        cat = self.categories.get(str(ann["category_id"])) or {}
        names = cat.get("keypoints")
        if isinstance(names, list) and names:
            return [str(n) for n in names]
        return list(obj.vertices)  # no names in the file: the template's vertex order

    def _decode(self, seg: Any, w: int, h: int, ptr: str, group: str) -> np.ndarray[Any, Any] | None:
        import numpy as np
        from pycocotools import mask as cocomask

        from predport.core import rle as rlemod

        where = Location(self.file, ptr + "/segmentation")
        if w * h > rlemod.MAX_PIXELS:  # checked before numpy or pycocotools allocate a mask
            self.ctx.report("frame.too_large", f"the image is {w}x{h} pixels; predport decodes masks of at most "
                            f"{rlemod.MAX_PIXELS} pixels", where, group=group)
            return None
        try:
            if isinstance(seg, list):
                # (pycocotools takes a ring of 4 numbers for a box, and raises a bare Exception on others)
                if not all(type(r) is list and len(r) >= 6 and len(r) % 2 == 0 and _NUM.issuperset(map(type, r))
                           for r in seg):
                    self.ctx.report("source.invalid", "a polygon segmentation is a list of [x1, y1, x2, y2, ...] "
                                    "lists of at least 3 points", where, group=group)
                    return None
                if not self._rasterisable(seg, w, h, ptr, group):
                    return None
                rles = cocomask.frPyObjects([list(map(float, r)) for r in seg], h, w)
                return cocomask.decode(cocomask.merge(rles))  # type: ignore[no-any-return]
            size = seg.get("size")
            if not (isinstance(size, list) and len(size) == 2 and "counts" in seg):
                self.ctx.report("source.invalid", "RLE without size [h, w] and counts", where, group=group)
                return None
            if [int(size[0]), int(size[1])] != [h, w]:
                self.ctx.report("bitmask.size_mismatch", f"RLE size {size} (h, w) differs from the image "
                                f"{h}x{w} (h x w)", Location(self.file, ptr + "/segmentation/size"), group=group)
                return None
            counts = seg["counts"]
            if isinstance(counts, list):
                if any(type(c) is not int or c < 0 for c in counts) or sum(counts) != h * w:
                    self.ctx.report("bitmask.invalid_rle", f"RLE counts {str(counts)[:60]} do not cover the "
                                    f"{h}x{w} image", where, group=group)
                    return None
                runs = np.asarray(counts, dtype=np.int64)
            elif isinstance(counts, str | bytes):
                text = counts if isinstance(counts, str) else counts.decode("ascii")
                # pycocotools would trust the runs and read out of bounds: decode and check them here
                decoded = rlemod.counts(text)
                err = rlemod.check_runs(decoded, h, w)
                if err or decoded is None:
                    self.ctx.report("bitmask.invalid_rle", err or "malformed RLE", where, group=group)
                    return None
                runs = decoded
            else:
                self.ctx.report("bitmask.invalid_rle", f"RLE counts {counts!r} are neither a compressed string nor "
                                "a list of run lengths", where, group=group)
                return None
            return rlemod.runs_to_mask(runs, h, w)
        except (TypeError, ValueError, UnicodeError, OverflowError) as e:
            self.ctx.report("source.invalid", f"cannot decode the segmentation: {e}", where, group=group)
            return None


    def _rasterisable(self, seg: list[list[float]], w: int, h: int, ptr: str, group: str) -> bool:
        """Every vertex finite and within one frame of the image: pycocotools rasterises in C with ints and
        walks every edge pixel by pixel, so a vertex at 1e20 crashes the process (SIGSEGV) and one at 1e9
        takes minutes. Such vertices are reported at their pointer before pycocotools sees them."""
        for r, ring in enumerate(seg):
            for k, v in enumerate(ring):
                size = w if k % 2 == 0 else h
                if -size <= v <= 2 * size:  # (False for NaN)
                    continue
                where = Location(self.file, f"{ptr}/segmentation/{r}/{k}")
                if math.isfinite(v):
                    self.ctx.report("geometry.out_of_frame", f"polygon vertex coordinate {v!r} lies more than a "
                                    f"frame outside the {w}x{h} image", where, group=group)
                else:
                    self.ctx.report("geometry.not_finite", f"polygon vertex coordinate {v!r} is not finite", where,
                                    group=group)
                return False
        return True


#: the encord SDK's COCO export names images <media>/<data hash>[/<frame>].<ext>
_ENCORD = re.compile(r"(?P<media>images|videos|dicom|nifti)/(?P<hash>[^/]+?)(?:\.\w+|/(?P<frame>\d+)\.\w+|/.*)?")
#: annotation attributes that are not answers: instance ids, the rotation, the encord export's own fields
_RESERVED = {"track_id", "encord_track_uuid", "rotation", "classifications", "manual_annotation", "keyframe",
             "score", "confidence"}
#: the ontology shapes an annotation's geometry can become, preferred first (to choose among objects of one name)
_SHAPES = {"keypoints": ("skeleton", "point"), "point": ("point", "skeleton"), "rle": ("bitmask", "polygon"),
           "line": ("polyline", "polygon"), "polygon": ("polygon", "bitmask", "bounding_box"),
           "rotated": ("rotatable_bounding_box", "bounding_box"), "box": ("bounding_box", "rotatable_bounding_box",
                                                                          "polygon")}


def _kind(ann: dict[str, Any]) -> str:
    """What an annotation's geometry is, for choosing among ontology objects of one name."""
    seg, attrs = ann.get("segmentation"), ann.get("attributes")
    if isinstance(ann.get("keypoints"), list) and ann["keypoints"]:
        return "point" if len(ann["keypoints"]) == 3 else "keypoints"
    if isinstance(seg, dict):
        return "rle"
    if isinstance(seg, list) and seg:
        return "line" if len(seg) == 1 and type(seg[0]) is list and _walks_back(seg[0]) else "polygon"
    if isinstance(attrs, dict) and attrs.get("rotation"):
        return "rotated"
    return "box"


def _walks_back(ring: list[Any]) -> bool:
    """A ring that goes along points and back along the same points (a line, as the encord export writes it)."""
    pts = [tuple(ring[k:k + 2]) for k in range(0, len(ring) - 1, 2)]
    half = len(pts) // 2
    return len(ring) % 4 == 0 and half >= 2 and pts[half:] == pts[:half][::-1]


def _merge_answer(obj: dict[str, Any], a: dict[str, Any]) -> None:
    """A track's answer from one more frame: a dynamic one extends or adds a range; a static one is kept once."""
    given = obj.setdefault("answers", [])
    if "frames" not in a:
        if not any(x["attribute"] == a["attribute"] for x in given):
            given.append(dict(a))
        return
    for x in reversed(given):
        if x["attribute"] == a["attribute"]:
            if {**x, "frames": None} == {**a, "frames": None} and x["frames"][-1][1] == a["frames"][0][0] - 1:
                x["frames"][-1][1] = a["frames"][0][1]
                return
            break
    given.append({**a, "frames": [list(r) for r in a["frames"]]})


_Int53 = Annotated[int, msgspec.Meta(ge=-(2 ** 53), le=2 ** 53)]  # (what orjson and msgspec parse alike)
_Number = _Int53 | float


class PlainResult(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One plain box of a COCO results file, as msgspec decodes it (any other key: the file is read as dicts)."""

    image_id: _Int53
    category_id: _Int53
    bbox: tuple[_Number, _Number, _Number, _Number]
    score: _Number | UnsetType = UNSET
    id: _Int53 | str | UnsetType = UNSET


#: the columns of routed rows (:meth:`_Route.rows`)
_ROUTED = ("unit", "class", "x", "y", "w", "h")
_IMAGE_OF, _CATEGORY_OF, _BBOX_OF = attrgetter("image_id"), attrgetter("category_id"), attrgetter("bbox")
_SCORE_OF, _ID_OF = attrgetter("score"), attrgetter("id")


@dataclass
class _PartColumns:
    """One part of a plain results file as columns, made in the process that decoded it (and pickled back)."""

    n: int  # its annotations
    #: its rows routed (:meth:`_Route.rows`): unit, class rank, x, y, w, h, in file order; None when one of its
    #: annotations is not a box of a known image
    routed: tuple[np.ndarray[Any, Any], ...] | None
    scores: np.ndarray[Any, Any] | list[Any]  # float64 when all are floats, else as given; 1.0 where missing
    missing: int
    ids: list[str | None] | None  # the given ids, None where absent; None: no annotation gives one


class _Lookup:
    """Each value's position among distinct int ``keys``, or None when one is not among them: by a table when the
    keys are small and not negative, as ids usually are (a tenth of a binary search's time: 500k categories, 3 ms
    against 31 ms), made once for all the parts of a file; else by a binary search."""

    def __init__(self, keys: np.ndarray[Any, Any]) -> None:
        import numpy as np

        self.keys, self.table = keys, None
        if len(keys) and int(keys.min()) >= 0 and int(keys.max()) < 1 << 22:
            self.table = np.full(int(keys.max()) + 1, -1, dtype=np.int64)
            self.table[keys] = np.arange(len(keys))
        else:
            self.rank = np.argsort(keys)

    def at(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
        import numpy as np

        if not len(values):
            return values
        if self.table is not None:
            if int(values.min()) < 0 or int(values.max()) >= len(self.table):
                return None
            found = self.table[values]
            return None if (found < 0).any() else found
        if not len(self.keys):
            return None
        at = self.rank[np.minimum(np.searchsorted(self.keys[self.rank], values), len(self.keys) - 1)]
        return at if (self.keys[at] == values).all() else None


@dataclass
class _Route:
    """Where plain boxes go: a file's image ids to data units, each unit's size, its box categories to their
    classes. Made once by the converter, before the parse in parts, so that each part's rows are routed in the
    process that decodes it (:meth:`columns`): of the 0.1 s the bench's 500k rows took to route and sort after
    the parse, the sort is left (0.04 s)."""

    images: _Lookup  # the images with an int id
    unit: np.ndarray[Any, Any]  # int64: each of those images' data unit
    wh: np.ndarray[Any, Any]  # (units, 2) float64: each unit's width and height
    fit: np.ndarray[Any, Any]  # bool: each unit can hold a box table (an image, with int sizes above 0)
    kinds: _Lookup  # the box categories' ids, in order: a row's class is its category's index

    def rows(self, image: np.ndarray[Any, Any], category: np.ndarray[Any, Any], box: np.ndarray[Any, Any]
             ) -> tuple[np.ndarray[Any, Any], ...] | None:
        """The rows' data units, classes and normalised x, y, w, h, in the order given; None when an image is
        not known or cannot hold a box table, or a category is not a box class."""
        at = self.images.at(image)
        if at is None or not len(at):
            return None
        units = self.unit[at]
        rank = self.kinds.at(category)
        if rank is None or not self.fit[units].all():
            return None
        wh = self.wh[units]
        w, h = wh[:, 0], wh[:, 1]
        return units, rank, box[:, 0] / w, box[:, 1] / h, box[:, 2] / w, box[:, 3] / h

    def columns(self, anns: list[PlainResult]) -> _PartColumns:
        """The columns of decoded plain results, routed (ints within 2**53, so that every number is exact in
        float64)."""
        import numpy as np

        n = len(anns)
        scores: Any
        missing = 0
        if _FLOAT.issuperset(map(type, map(_SCORE_OF, anns))):  # (the usual: two passes instead of four)
            scores = np.fromiter(map(_SCORE_OF, anns), dtype=np.float64, count=n)
        else:
            scores = list(map(_SCORE_OF, anns))
            missing = scores.count(UNSET)
            if missing:
                scores = [1.0 if s is UNSET else s for s in scores]
            scores = _floats(scores)
        given = list(map(_ID_OF, anns))
        box = np.fromiter(chain.from_iterable(map(_BBOX_OF, anns)), dtype=np.float64, count=4 * n).reshape(-1, 4)
        return _PartColumns(
            n=n, routed=self.rows(np.fromiter(map(_IMAGE_OF, anns), dtype=np.int64, count=n),
                                  np.fromiter(map(_CATEGORY_OF, anns), dtype=np.int64, count=n), box),
            scores=scores, missing=missing,
            ids=None if given.count(UNSET) == n else [None if a is UNSET else str(a) for a in given])


#: below this many annotations, with numpy not loaded yet, columns do not pay for importing it (50-115 ms): the
#: annotation-at-a-time path takes 0.8 us a box more (1.22 s against 0.83 s for 500k), so 60k boxes. Counted over
#: the run's results files: 10 shards of 50k boxes each took 2.63 s to validate on the annotation-at-a-time path.
COLUMNS_FROM = 60_000
_BYTES_PER_BOX = 140  # (a results file's bytes per annotation, about: the bench's are 144)


def _columns_pay(n: int) -> bool:
    """Whether the whole-file column paths are worth their numpy for ``n`` annotations."""
    return n >= COLUMNS_FROM or _numpy_loaded()


def _numpy_loaded() -> bool:
    return "numpy" in sys.modules


def _floats(scores: list[Any]) -> np.ndarray[Any, Any] | list[Any]:
    """Scores as float64 when all are floats (ints stay as given: a confidence 1 is written 1, not 1.0)."""
    import numpy as np

    return np.fromiter(scores, dtype=np.float64, count=len(scores)) if _FLOAT.issuperset(map(type, scores)) else scores


def _opens_list(path: Path) -> bool:
    """Whether the file's JSON starts with '[' (a results list), from its first bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(64).lstrip()[:1] == b"["
    except OSError:
        return False


_CATEGORY, _BBOX, _SCORE = itemgetter("category_id"), itemgetter("bbox"), itemgetter("score")
_IMAGE = itemgetter("image_id")
_DICT = frozenset((dict,))
_FLOAT = frozenset((float,))
_NUM = frozenset((int, float))
_INT = frozenset((int,))
_LIST = frozenset((list,))


def _get_bbox(ann: dict[str, Any]) -> Any:
    return ann.get("bbox")


def _lookup(images: dict[Any, Any], image_id: Any) -> Any:
    if type(image_id) not in (int, str):
        return None
    found = images.get(image_id)
    return found if found is not None else images.get(str(image_id))


def _record(image_id: Any) -> int | str:
    return image_id if type(image_id) is int else str(image_id)


_CROWD = {0: False, 1: True, "0": False, "1": True, "false": False, "true": True}  # (False, True: as 0, 1)


def _crowd_area(ann: dict[str, Any]) -> dict[str, Any] | None:
    """{area, iscrowd} of a COCO ground-truth annotation (each when present); None when one is not valid."""
    out: dict[str, Any] = {}
    if "iscrowd" in ann:
        crowd = ann["iscrowd"]
        key = crowd.lower() if isinstance(crowd, str) else crowd
        if type(key) not in (int, bool, str) or key not in _CROWD:
            return None
        out["iscrowd"] = _CROWD[key]
    if "area" in ann:
        area = ann["area"]
        if type(area) not in _NUM or not (0 <= area < math.inf):
            return None
        out["area"] = area
    return out


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def _is_box(b: Any) -> TypeGuard[list[float]]:
    # NaN / inf pass here on purpose: validation reports them with their location
    return isinstance(b, list) and len(b) == 4 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                       for v in b)


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [CocoReader()]
