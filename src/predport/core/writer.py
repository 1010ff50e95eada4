"""The single writer: validated data units -> Encord label rows on a named prediction branch.

It emits the JSON that ``LabelRowV2.to_encord_dict()`` produces (both ``polygon`` and ``polygons``, a
``range`` on every classification answer, confidences, ``manualAnnotation: false``, ``branch_name`` and
``data_title`` set) directly, without building one SDK object per prediction: the SDK is the oracle in the
tests and the transport for uploads, not the serialiser.

Output: a directory with one ``<title>.json`` per data unit and ``manifest.json``; or one file, ``FILE.jsonl``
(one label row per line, ordered by title) or ``FILE.jsonl.gz`` (each line its own gzip member: the file is one
gzip stream, and each row can be read alone), with ``FILE.manifest.json`` beside it. The run writes into a
staging directory beside the target (:mod:`predport.core.staging`); only :meth:`BranchWriter.commit` puts the
result in place, so a failed or killed run leaves the old output as it was. A directory is swapped in
atomically. A file is renamed into place, then its manifest: the manifest gives every row's offset, length and
CRC-32, so a reader tells a file whose run was killed between the two renames from a complete one
(:func:`predport.core.output.open_output`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import mimetypes
import posixpath
import re
import secrets
from binascii import b2a_base64 as b2a
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from struct import Struct
from types import TracebackType
from typing import Any
from zlib import adler32, crc32

import orjson

from predport.core import checksum, faults
from predport.core.ontology import Attribute, Ontology, OntologyObject, Option
from predport.core.problems import PredportError
from predport.core.staging import MANIFEST, Removed, Staging, disk_error, disk_errors
from predport.core.validate import RAnswer, RBoxes, ResolvedUnit

ZERO = "00000000-0000-0000-0000-000000000000"
DATA_TYPE = {"image": "image", "image_group": "img_group", "video": "video"}
_HASH_RE = re.compile(r"[A-Za-z0-9+/]{8}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def timestamp(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%a, %d %b %Y %H:%M:%S UTC")


class InstanceHashes:
    """8-character Encord-style hashes for the instance ids of one data unit: the id itself when it already
    is one, else 48 bits of two checksums of (data unit title, id) -- deterministic, so re-runs and
    re-uploads produce the same hashes -- never the same hash twice in a unit."""

    def __init__(self, scope: str) -> None:
        self.scope = scope.encode() + b"\0"
        self.taken: set[bytes] = set()  # (ASCII: the hashes' bytes are their characters)

    def __call__(self, ident: str) -> str:
        return self.one(ident).decode()

    def many(self, idents: list[str]) -> list[str]:
        """``[self(i) for i in idents]``."""
        return [h.decode() for h in self.many_bytes(idents)]

    def many_bytes(self, idents: list[str]) -> list[bytes]:
        """``[self.one(i) for i in idents]``, a column at a time when no id is kept as it is and nothing
        collides (else one at a time, by the same rules)."""
        scope = self.scope
        c0, a0 = crc32(scope), adler32(scope)  # both checksums continue from the scope's
        encoded = list(map(str.encode, idents))
        raw = b"".join(map(_CHECKSUMS, map(crc32, encoded, repeat(c0)),
                           [a & 0xFFFF for a in map(adler32, encoded, repeat(a0))]))
        text = b2a(raw, newline=False)  # 6 bytes are 8 characters: one call encodes them all
        out = [text[k:k + 8] for k in range(0, len(text), 8)]
        return self._taken(out, lambda: idents, 8 in set(map(len, idents)))

    def many_ints(self, column: Any, start: int, stop: int) -> list[bytes]:
        """:meth:`many_bytes` of ``column[start:stop]``, an integer array whose ids are their decimal spellings,
        from each id's digits' checksums computed once per block of the column (:class:`_Digits`)."""
        digits = _Digits.of(column)
        found = digits.rows(start, stop) if digits is not None else None
        if digits is None or found is None:  # (negative, huge or 8-digit ids: by the rules of one id at a time)
            return self.many_bytes(list(map(str, column[start:stop].tolist())))
        length, register, total = found
        scope = self.scope
        c0 = crc32(scope)
        # CRC-32 is affine in what comes before: crc32(scope + id) = crc32(zeros of len(id), crc32(scope)) ^ the
        # register of the id's digits alone; Adler-32's low half is the scope's plus the bytes' sum (mod 65521)
        np = _np()
        shift = np.array([crc32(_ZEROS[:k], c0) for k in range(digits.longest + 1)], dtype=np.uint32)
        packed = np.empty(stop - start, dtype=_PACKED)
        packed["c"] = shift[length] ^ register
        packed["a"] = (total + (adler32(scope) & 0xFFFF)) % 65521
        # (8 characters each: 2.7 us for 100 hashes as numpy's bytes, 10.5 us sliced one by one)
        out: list[bytes] = np.frombuffer(b2a(packed.tobytes(), newline=False), dtype="S8").tolist()
        return self._taken(out, lambda: list(map(str, column[start:stop].tolist())))

    def _taken(self, out: list[bytes], idents: Callable[[], list[str]], kept: bool = False) -> list[bytes]:
        """``out``, the column's hashes, taken for the unit; when two are the same, one is already taken, or an id
        may be kept as it is (``kept``), the ids' hashes one at a time instead, by the rules of :meth:`one`."""
        new = set(out)
        if kept or len(new) != len(out) or not self.taken.isdisjoint(new):
            return [self.one(i) for i in idents()]
        if self.taken:
            self.taken |= new
        else:  # (a unit's boxes, its first hashes: the set as it is, not copied into the empty one)
            self.taken = new
        return out

    def one(self, ident: str) -> bytes:
        """The hash of one id, as bytes."""
        taken = self.taken
        if len(ident) == 8 and _HASH_RE.fullmatch(ident) and (kept := ident.encode()) not in taken:
            taken.add(kept)
            return kept
        key = self.scope + ident.encode()
        while True:
            h = b2a(_CHECKSUMS(crc32(key), adler32(key) & 0xFFFF), newline=False)
            if h not in taken:
                taken.add(h)
                return h
            key += b"\0"  # a collision inside the unit: salt and try again


_CHECKSUMS = Struct(">IH").pack  # (CRC-32, the low 16 bits of Adler-32): the 48 bits of a hash
_PACKED: Any = None  # the same 6 bytes as a numpy record (set with numpy)
_ZEROS = bytes(20)


def _np() -> Any:
    import numpy as np

    global _PACKED
    if _PACKED is None:
        _PACKED = np.dtype([("c", ">u4"), ("a", ">u2")])
    return np


class _Digits:
    """Per row of an integer id column: the number of its decimal digits, the CRC-32 register of those digits
    from zero (no inversions) and their bytes' sum, computed a block of rows at a time as units ask for them.

    Why: the hashes of 500k ids a unit at a time took 66 us a unit of 100 from their strings, 20 us from these
    (the block's digits: 9 ms per 65,536 ids), and a worker computes only the blocks of its own units."""

    BLOCK = 1 << 16
    _last: tuple[Any, _Digits] | None = None  # (the column, its digits): the file being written
    _TABLE: Any = None

    def __init__(self, column: Any) -> None:
        np = _np()
        self.column = column
        n = len(column)
        self.length = np.zeros(n, dtype=np.int64)
        self.register = np.zeros(n, dtype=np.uint32)
        self.total = np.zeros(n, dtype=np.int64)
        self.done = np.zeros((n + self.BLOCK - 1) // self.BLOCK, dtype=np.int8)  # 1 done, -1 not computable
        self.longest = 1  # (the most digits of an id computed so far)

    @classmethod
    def of(cls, column: Any) -> _Digits | None:
        last = cls._last
        if last is None or last[0] is not column:
            if column.dtype.kind not in "iu" or column.ndim != 1:
                return None
            last = cls._last = (column, cls(column))
        return last[1]

    def rows(self, start: int, stop: int) -> tuple[Any, Any, Any] | None:
        if stop <= start:
            return None
        for b in range(start // self.BLOCK, (stop - 1) // self.BLOCK + 1):
            if not self.done[b]:
                self.done[b] = 1 if self._block(b) else -1
            if self.done[b] < 0:
                return None
        return self.length[start:stop], self.register[start:stop], self.total[start:stop]

    def _block(self, b: int) -> bool:
        np = _np()
        a = b * self.BLOCK
        ids = self.column[a:a + self.BLOCK].astype(np.int64)
        if not len(ids) or int(ids.min()) < 0 or int(ids.max()) >= 10**18:
            return False
        length = np.ones(len(ids), dtype=np.int64)
        for p in range(1, 19):
            longer = ids >= 10**p
            if not longer.any():
                break
            length += longer
        if (length == 8).any():  # an 8-digit id may be kept as its own hash (InstanceHashes.one)
            return False
        table = _Digits._TABLE
        if table is None:
            table = _Digits._TABLE = np.array([crc32(bytes([i]), 0xFFFFFFFF) ^ 0xFFFFFFFF  # (the byte's step from 0)
                                               for i in range(256)], dtype=np.uint32)
        register = np.zeros(len(ids), dtype=np.uint32)
        total = length * 48
        self.longest = max(self.longest, int(length.max()))
        for p in range(int(length.max()) - 1, -1, -1):
            digit = ((ids // 10**p) % 10).astype(np.uint32)
            total += digit
            step = table[(register ^ (digit + 48)) & 0xFF] ^ (register >> 8)
            register = np.where(length > p, step, register) if p else step
        self.length[a:a + len(ids)], self.register[a:a + len(ids)], self.total[a:a + len(ids)] = \
            length, register, total
        return True


def instance_hash(scope: str, ident: str, taken: set[str]) -> str:
    """One instance hash (see :class:`InstanceHashes`); ``taken``: the unit's hashes so far (the new one is added)."""
    hashes = InstanceHashes(scope)
    hashes.taken = {t.encode() for t in taken}
    h = hashes(ident)
    taken.add(h)
    return h


@functools.lru_cache(maxsize=1 << 16)
def file_key(title: str) -> str:
    """What two titles share when their file names could collide (workers shard on it). Remembered: a unit's is
    asked for three times or more with workers (which process converts it, where its problems begin), and the
    plan made before the fork asks for every title's (1 us each, against 0.1 us remembered)."""
    return _UNSAFE.sub("_", title).lstrip(".")[:120].lower()


def safe_file_name(title: str, taken: set[str]) -> str:
    """A file name for a data unit title that cannot leave the output directory (no separators, no
    leading dot, no '..'), unique case-insensitively; a digest of the title is added when the title had
    to be changed or collides."""
    base = _UNSAFE.sub("_", title).lstrip(".")[:120] or "unit"
    name = base
    if name != title or name.lower() in taken or name.lower() == MANIFEST:
        name = f"{base}-{hashlib.sha256(title.encode()).hexdigest()[:10]}"
    taken.add(name.lower())
    return name + ".json"


def _option_dicts(options: list[Option]) -> list[dict[str, str]]:
    return [{"name": o.label, "value": o.value, "featureHash": o.hash} for o in options]


def _answer_dict(attr: Attribute, value: Any) -> dict[str, Any]:
    return {"name": attr.name, "value": attr.value,
            "answers": _option_dicts(value) if isinstance(value, list) else value,
            "featureHash": attr.hash, "manualAnnotation": False}


def _points(flat: list[float]) -> dict[str, dict[str, float]]:
    return {str(i): {"x": flat[2 * i], "y": flat[2 * i + 1]} for i in range(len(flat) // 2)}


def geometry_entry(g: dict[str, Any], vertices: dict[str, str]) -> dict[str, Any]:
    """The label-row key(s) and value(s) of one internal geometry."""
    shape = g["shape"]
    if shape == "bounding_box":
        return {"boundingBox": {"h": g["h"], "w": g["w"], "x": g["x"], "y": g["y"]}}
    if shape == "rotatable_bounding_box":
        return {"rotatableBoundingBox": {"h": g["h"], "w": g["w"], "x": g["x"], "y": g["y"], "theta": g["theta"]}}
    if shape == "polygon":
        # the legacy key holds the first ring of the first polygon; "polygons" holds everything
        return {"polygon": _points(g["polygons"][0][0]), "polygons": g["polygons"]}
    if shape == "polyline":
        return {"polyline": _points(g["points"])}
    if shape == "point":
        return {"point": {"0": {"x": g["x"], "y": g["y"]}}}
    if shape == "bitmask":
        return {"bitmask": {"top": 0, "left": 0, "height": g["height"], "width": g["width"], "rleString": g["rle"]}}
    if shape == "skeleton":
        by_hash = {h: n for n, h in vertices.items() if h}
        out = {}
        for i, p in enumerate(g["points"]):
            name = p.get("name") or by_hash[p["hash"]]
            d: dict[str, Any] = {"x": p["x"], "y": p["y"], "name": name, "featureHash": vertices.get(name) or
                                 p.get("hash")}
            if d["featureHash"] is None:
                del d["featureHash"]
            if "visibility" in p:
                d["visibility"] = p["visibility"]
            out[str(i)] = d
        return {"skeleton": out}
    raise ValueError(f"unknown shape {shape!r}")


def build_row(ru: ResolvedUnit, branch: str, ts: str, parts: list[list[bytes]] | None = None) -> dict[str, Any]:
    """The label-row dict (``LabelRowV2.to_encord_dict()`` layout) of one validated data unit. With ``parts``
    (see :func:`row_bytes`), its box table's rows are not in the dict: a mark stands where they go, and the pieces
    of their JSON are appended to ``parts``."""
    unit = ru.unit
    kind = unit["kind"]
    title = unit["title"]
    data_hash = unit.get("data_hash") or ZERO
    hashes = InstanceHashes(title)
    frames: dict[int, list[dict[str, Any]]] = {}
    object_answers: dict[str, Any] = {}
    object_actions: dict[str, Any] = {}
    for obj in ru.objects:
        ont = obj.ontology
        h = hashes(obj.id)
        name, color, shape, value, fh = ont.name, ont.color, ont.shape, ont.value, ont.hash
        for fr in obj.frames:
            g = fr["geometry"]
            if shape == "bounding_box":  # the common case, inline
                key, geo = "boundingBox", {"h": g["h"], "w": g["w"], "x": g["x"], "y": g["y"]}
            else:
                [(key, geo), *more] = geometry_entry(g, ont.vertices).items()
            entry = {"name": name, "color": color, "shape": shape, "value": value, "createdAt": ts,
                     "createdBy": None, "confidence": fr.get("confidence", 1.0), "objectHash": h,
                     "featureHash": fh, "manualAnnotation": False, "lastEditedAt": ts, key: geo}
            if shape != "bounding_box":
                entry.update(more)
            f = fr["frame"]
            if f in frames:
                frames[f].append(entry)
            else:
                frames[f] = [entry]
        object_answers[h] = {"classifications": [_answer_dict(a.attribute, a.value) for a in obj.static]
                             if obj.static else [], "objectHash": h}
        if obj.dynamic:
            object_actions[h] = {"actions": _actions(obj.dynamic), "objectHash": h}
    if ru.boxes is not None and parts is not None:
        parts.extend(_box_parts(ru.boxes, hashes, ts))
        frames.setdefault(0, []).append(_MARK)  # type: ignore[arg-type]
        object_answers[_MARK] = None
    elif ru.boxes is not None:
        _box_rows(ru.boxes, hashes, frames, object_answers, ts)
    classification_answers: dict[str, Any] = {}
    for c in ru.classifications:
        h = hashes(c.id)
        classification_answers[h] = {
            "classifications": [_answer_dict(a.attribute, a.value) for a in c.answers],
            "classificationHash": h, "featureHash": c.ontology.hash, "spaces": {},
            "range": [list(r) for r in c.ranges], "createdBy": None, "createdAt": ts, "lastEditedBy": None,
            "lastEditedAt": ts, "confidence": c.confidence, "manualAnnotation": False}
    return {
        "label_hash": ZERO, "branch_name": branch, "created_at": ts, "last_edited_at": ts,
        "data_hash": data_hash, "dataset_hash": ZERO, "dataset_title": "", "data_title": title,
        "data_type": DATA_TYPE[kind], "annotation_task_status": "QUEUED", "is_shadow_data": False,
        "object_answers": object_answers, "classification_answers": classification_answers,
        "object_actions": object_actions, "label_status": "LABEL_IN_PROGRESS",
        "data_units": _data_units(ru, data_hash, frames), "spaces": {},
    }


#: what stands in a row dict for the parts of it written as JSON (:func:`row_bytes`): no input holds it but by a
#: chance of 2**-64 (a NUL and a random token per process)
_MARK = "\0predport:" + secrets.token_hex(8)
_MARK_JSON = orjson.dumps(_MARK)


def row_bytes(ru: ResolvedUnit, branch: str, ts: str, newline: bool = False) -> bytes:
    """``orjson.dumps(build_row(ru, branch, ts))``: the same bytes, with the rows of a box table on one frame
    written from its columns (:func:`_box_parts`) rather than as a dict per row; ``newline``: and a newline after
    them (a line of a one-file output, without a copy to add it).

    Why: on the bench's 500k boxes (5,000 tables of 100 rows), the rows took 0.99-1.14 s as dicts and 0.88-0.99 s
    this way, in three interleaved runs (of which 0.36 s are the instance hashes in both). A differential test
    holds the two to the same bytes. The row is joined once from all its pieces: joining the objects and the
    answers first, then the row, copied each row's 36 KB of boxes twice more (113 against 104 us a unit)."""
    rb = ru.boxes
    if rb is None or "frame" in rb.columns() or not len(rb):
        return orjson.dumps(build_row(ru, branch, ts), option=orjson.OPT_APPEND_NEWLINE if newline else None)
    parts: list[list[bytes]] = []
    data = orjson.dumps(build_row(ru, branch, ts, parts))
    objects, answers = parts
    # object_answers comes before data_units in the row: the mark's first place is its key there
    a = data.index(_MARK_JSON)
    b = data.index(_MARK_JSON, a + len(_MARK_JSON) + 5)  # (after its ":null")
    return b"".join([data[:a], *answers, data[a + len(_MARK_JSON) + 5:b], *objects, data[b + len(_MARK_JSON):],
                     *((b"\n",) if newline else ())])


def _box_templates(classes: list[OntologyObject | None], ts: str,
                   shared: bool = False) -> tuple[list[bytes], list[bytes]]:
    """Each box class's label-row entry as JSON, cut where its rows differ: the parts before the confidence, and
    the parts between the hash and the box's "h" (all other values are the same for every row of the class).
    ``shared``: ``classes`` is a shared table's, the same list for all its units (remembered by identity)."""
    made = _TEMPLATES.get(ts)
    if made is None:
        if len(_TEMPLATES) >= 16:  # (a long-lived process, converting at many times)
            _TEMPLATES.clear()
        made = _TEMPLATES[ts] = {}
    last = _SHARED_TEMPLATES[0]  # (the classes of a shared table: one list for all its units)
    if shared and last is not None and last[0] is classes and last[1] == ts:
        return last[2], last[3]
    heads, middles = [], []
    for o in classes:
        pair = made.get(o)
        if pair is None:
            pair = made[o] = _box_template(o, ts) if o is not None else (b"", b"")
        heads.append(pair[0])
        middles.append(pair[1])
    if shared:
        _SHARED_TEMPLATES[0] = (classes, ts, heads, middles)
    return heads, middles


def _box_template(o: OntologyObject, ts: str) -> tuple[bytes, bytes]:
    entry = {"name": o.name, "color": o.color, "shape": "bounding_box", "value": o.value, "createdAt": ts,
             "createdBy": None, "confidence": _MARK, "objectHash": "", "featureHash": o.hash,
             "manualAnnotation": False, "lastEditedAt": ts, "boundingBox": _MARK}
    head, rest = orjson.dumps(entry).split(_MARK_JSON + b',"objectHash":""')
    return head, b'"' + rest.split(_MARK_JSON)[0] + b'{"h":'


#: per timestamp, per ontology object (compared by identity: the ontology's, alive while it is)
_TEMPLATES: dict[str, dict[OntologyObject | None, tuple[bytes, bytes]]] = {}
#: the last shared table's classes, with the timestamp, heads and middles made for them
_SHARED_TEMPLATES: list[tuple[list[OntologyObject | None], str, list[bytes], list[bytes]] | None] = [None]


def _numbers(column: Any) -> list[bytes]:
    """Each number of a column (a list, or a float64 array: orjson writes its numbers as it writes the floats of
    ``tolist()``) as orjson writes it (one call for the column: about 40 ns a number)."""
    return orjson.dumps(column, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


# a row's parts: class head, confidence, |, hash, class middle, h, |, w, |, x, |, y, | (|: constant)
_OBJECT_PARTS = (b"", b"", b',"objectHash":"', b"", b"", b"", b',"w":', b"", b',"x":', b"", b',"y":', b"", b"}},")
_ANSWER_PARTS = (b'"', b"", b'":{"classifications":[],"objectHash":"', b"", b'"},')


def _box_parts(rb: RBoxes, hashes: InstanceHashes, ts: str) -> tuple[list[bytes], list[bytes]]:
    """A box table's passing rows as the pieces of the JSON of their entries in the frame's objects
    (comma-separated, as :func:`_box_rows` makes them) and of their object answers: the columns' JSON, interleaved
    with constant parts by slice assignments, for the row to join once."""
    n = len(rb)
    column: Callable[[str], Any]
    if rb.sliced is not None:  # rows of a shared table: numpy columns, cut to the slice's rows
        sl = rb.sliced
        shared, a, b = sl.shared.columns, sl.start, sl.stop

        def column(name: str) -> Any:
            return shared[name][a:b]

        ids = shared["id"]
        hs = hashes.many_ints(ids, a, b) if hasattr(ids, "dtype") else hashes.many_bytes(list(ids[a:b]))
        cls = column("class").tolist()
    else:
        t, rows = rb.table, rb.rows

        def column(name: str) -> Any:
            c: list[Any] = t[name]  # type: ignore[literal-required]
            return c if rows is None else [c[k] for k in rows]

        hs = hashes.many_bytes(column("id"))
        cls = column("class")
    heads, middles = _box_templates(rb.classes, ts, rb.sliced is not None)
    w = len(_OBJECT_PARTS)
    out = list(_OBJECT_PARTS) * n
    out[0::w] = list(map(heads.__getitem__, cls))
    out[1::w] = _numbers(column("confidence")) if "confidence" in rb.columns() else [b"1.0"] * n
    out[3::w] = hs
    out[4::w] = list(map(middles.__getitem__, cls))
    for k, name in ((5, "h"), (7, "w"), (9, "x"), (11, "y")):
        out[k::w] = _numbers(column(name))
    v = len(_ANSWER_PARTS)
    answers = list(_ANSWER_PARTS) * n
    answers[1::v] = answers[3::v] = hs
    out[-1], answers[-1] = _OBJECT_PARTS[-1][:-1], _ANSWER_PARTS[-1][:-1]  # (no comma after the last)
    return out, answers


def _box_rows(rb: RBoxes, hashes: InstanceHashes, frames: dict[int, list[dict[str, Any]]],
              object_answers: dict[str, Any], ts: str) -> None:
    """The entries of a box table's rows: the same dicts as the object path's, built a row at a time from
    columns (a table with frames; the others are written from their columns' JSON, :func:`_box_parts`, which
    tests hold to these dicts)."""
    t = rb.table
    rows = range(len(t["class"])) if rb.rows is None else rb.rows
    ids = t["id"]
    hs = hashes.many(ids if rb.rows is None else [ids[k] for k in rows])
    # one template per class, copied per row (a copy of a dict is cheaper than building it key by key);
    # the key order is the object path's. (No row of a class that is not a box class passed.)
    templates: list[dict[str, Any]] = [
        {"name": o.name, "color": o.color, "shape": "bounding_box", "value": o.value, "createdAt": ts,
         "createdBy": None, "confidence": 1.0, "objectHash": "", "featureHash": o.hash, "manualAnnotation": False,
         "lastEditedAt": ts, "boundingBox": None} if o is not None else {} for o in rb.classes]
    cls, xs, ys, ws, hhs = t["class"], t["x"], t["y"], t["w"], t["h"]
    conf = t.get("confidence")
    frame = t.get("frame")
    none: list[Any] = []  # shared, never mutated: serialised as []
    if frame is None:
        entries = frames.setdefault(0, [])
    for k, h in zip(rows, hs, strict=True):
        entry = templates[cls[k]].copy()
        if conf is not None:
            entry["confidence"] = conf[k]
        entry["objectHash"] = h
        entry["boundingBox"] = {"h": hhs[k], "w": ws[k], "x": xs[k], "y": ys[k]}
        if frame is None:
            entries.append(entry)
        else:
            frames.setdefault(frame[k], []).append(entry)
        object_answers[h] = {"classifications": none, "objectHash": h}


def _actions(answers: list[RAnswer]) -> list[dict[str, Any]]:
    # one action per (attribute, answer value), carrying every range with that value
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for a in answers:
        key = (a.attribute.hash, repr([o.hash for o in a.value] if isinstance(a.value, list) else a.value))
        act = merged.get(key)
        if act is None:
            act = merged[key] = {**_answer_dict(a.attribute, a.value), "dynamic": True, "range": [],
                                 "shouldPropagate": False}
        act["range"].extend([list(r) for r in a.ranges or []])
    for act in merged.values():
        act["range"].sort()
    return list(merged.values())


def _mime(title: str | None, kind: str) -> str:
    t = title or ""
    ext = posixpath.splitext(t)[1]
    if not ext or ext in mimetypes.encodings_map or ext in mimetypes.suffix_map or any(c in t for c in ":?#"):
        return _guess(t, kind)  # (what more than the last suffix decides)
    return _guess_ext(ext, kind)  # (9 us a title, 0.2 us remembered)


def _guess(title: str, kind: str) -> str:
    guess = mimetypes.guess_type(title)[0]
    if guess and guess.split("/")[0] in ("image", "video"):
        return guess
    return "video/mp4" if kind == "video" else "image/jpeg"


@functools.lru_cache(maxsize=512)
def _guess_ext(ext: str, kind: str) -> str:
    return _guess("x" + ext, kind)


def _data_units(ru: ResolvedUnit, data_hash: str, frames: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    unit = ru.unit
    kind = unit["kind"]
    if kind == "image_group":
        out = {}
        for i, im in enumerate(unit.get("images", [])):
            h = im.get("data_hash") or f"{ZERO[:-12]}{i:012d}"
            out[h] = {"data_hash": h, "data_title": im.get("title") or f"{unit['title']}[{i}]", "data_link": "",
                      "data_type": _mime(im.get("title"), kind), "data_sequence": str(i),
                      "width": im.get("width"), "height": im.get("height"),
                      "labels": {"objects": frames.get(i, []), "classifications": []}}
        return out
    du: dict[str, Any] = {"data_hash": data_hash, "data_title": unit["title"], "data_link": "",
                          "data_type": _mime(unit["title"], kind), "data_sequence": 0,
                          "width": unit.get("width"), "height": unit.get("height")}
    if kind == "image":
        du["labels"] = {"objects": frames.get(0, []), "classifications": []}
    else:
        du["labels"] = {str(f): {"objects": frames[f], "classifications": []} for f in sorted(frames)}
        fps, duration, count = unit.get("fps"), unit.get("duration"), unit.get("frame_count")
        if duration is None and fps and count:
            duration = count / fps
        du["data_duration"] = duration
        du["data_fps"] = fps
    return {data_hash: du}


def unit_counts(ru: ResolvedUnit) -> dict[str, int]:
    rows = len(ru.boxes) if ru.boxes is not None else 0
    return {"objects": len(ru.objects) + rows, "object_frames": sum(len(o.frames) for o in ru.objects) + rows,
            "classifications": len(ru.classifications)}


FILE_SUFFIXES = (".jsonl", ".jsonl.gz")


def is_file_output(out: Path) -> bool:
    """Whether ``--out`` names one-file output (``.jsonl`` or ``.jsonl.gz``) rather than a directory."""
    return out.name.endswith(FILE_SUFFIXES)


def file_manifest(out: Path) -> Path:
    """Where a one-file output's manifest is: ``FILE.manifest.json`` beside ``FILE.jsonl[.gz]``."""
    stem = out.name[:-len(".jsonl.gz")] if out.name.endswith(".jsonl.gz") else out.name[:-len(".jsonl")]
    return out.with_name(stem + ".manifest.json")


def check_target(out: Path) -> None:
    """Refuse, before any work, to replace a directory or file that predport did not write."""
    if is_file_output(out):
        manifest = file_manifest(out)
        if out.exists() and (not out.is_file() or not manifest.is_file()):
            raise PredportError(f"{out} exists and is not a predport output file (no {manifest.name} beside it); "
                                "choose another --out")
        if manifest.is_file():
            try:
                other = orjson.loads(manifest.read_bytes()).get("file")
            except (OSError, orjson.JSONDecodeError, AttributeError):
                other = None
            if other != out.name and (out.parent / str(other)).exists():
                raise PredportError(f"{manifest.name} is the manifest of {other}, which --out {out.name} would "
                                    "orphan; choose another --out")
        return
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise PredportError(f"{out} exists and is not a predport output directory; choose another --out")


class BranchWriter:
    """Writes label rows for one branch into ``out``, all or nothing.

    Use as a context manager: leaving the block without :meth:`commit` (an exception, or errors found)
    removes the staging directory and leaves ``out`` as it was. :attr:`removed` lists the stale staging
    directories of earlier runs that creating this one swept away.
    """

    def __init__(self, out: str | Path, branch: str, ontology: Ontology, sources: list[str],
                 when: datetime | None = None,
                 provenance: dict[str, Any] | Callable[[], dict[str, Any]] | None = None) -> None:
        self.out = Path(out)
        self.branch = branch
        self.ontology = ontology
        self.sources = sources
        self.provenance = provenance or {}
        self.ts = timestamp(when)
        self.units: list[dict[str, Any]] = []
        self._names: set[str] = set()
        check_target(self.out)
        self.one_file = is_file_output(self.out)
        self.gz = self.out.name.endswith(".gz")
        self._part: Any = None  # (one file: this process's part file, and the process it belongs to)
        self._part_pid = 0
        with disk_errors(f"beside {self.out}"):
            self._staging = Staging(self.out)
        self.staging = self._staging.path
        self.removed: list[Removed] = self._staging.removed

    def __enter__(self) -> BranchWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()

    def write(self, ru: ResolvedUnit) -> dict[str, Any]:
        """Write one unit's label row."""
        try:
            data = row_bytes(ru, self.branch, self.ts, self.one_file)
        except (UnicodeError, TypeError, orjson.JSONEncodeError) as e:  # (a reader's value no JSON can hold)
            raise PredportError(f"cannot write the label row of {ru.unit['title']!r}: {e}") from e
        entry: dict[str, Any] = {"title": ru.unit["title"], "kind": ru.unit["kind"],
                                 "data_hash": ru.unit.get("data_hash"), "width": ru.unit.get("width"),
                                 "height": ru.unit.get("height"), **unit_counts(ru)}
        try:
            if self.one_file:
                entry.update(self._append(data))
            else:
                name = safe_file_name(ru.unit["title"], self._names)
                (self.staging / name).write_bytes(data)
                entry["file"] = name
        except OSError as e:  # (formatted only then: a unit's row is on the hot path)
            raise disk_error(e, f"the label row of {ru.unit['title']!r} into {self.staging}") from e
        self.units.append(entry)
        faults.point("unit")
        return entry

    def _append(self, line: bytes) -> dict[str, Any]:
        """A row at the end of this process's part file (each worker process has its own)."""
        import os

        if self._part_pid != os.getpid():  # (opened in the process that writes: after a fork, a new part)
            self._part_pid = os.getpid()
            self._part = _PartFile(self.staging / f"part-{self._part_pid}")
        if self.gz:
            # a gzip member per row (mtime 0: the same rows, the same bytes); level 1 of ISA-L: a fifth of the size,
            # 0.3 s for 500k boxes' 200 MB, where zlib took 1.3 s at level 1 and 3.0 s at level 6
            line = checksum.gzip_member(line)
        # (the CRCs of 500k boxes' 200 MB: 0.02 s with ISA-L, 0.12 s with zlib)
        offset = self._part.size
        self._part.write(line)
        return {"part": self._part.name, "offset": offset, "bytes": len(line),
                "crc32": checksum.crc32(line)}

    def flush(self) -> None:
        """Close this process's part file (its rows are on disk)."""
        if self._part is not None:
            part, self._part = self._part, None
            with disk_errors(f"the rows into {self.staging}"):
                part.close()

    def manifest(self) -> dict[str, Any]:
        from predport import __version__

        units = sorted(self.units, key=lambda u: u["title"]) if not self.one_file else self.units
        return {
            "predport_version": __version__, "branch": self.branch, "created_at": self.ts,
            "ontology": {"source": self.ontology.origin,
                         "sha256": hashlib.sha256(orjson.dumps(self.ontology.data)).hexdigest()},
            "sources": self.sources,
            **({"provenance": self.provenance() if callable(self.provenance) else self.provenance}
               if self.provenance else {}),
            **({"file": self.out.name} if self.one_file else {}),
            "units": units,
            "totals": {k: sum(u[k] for u in self.units) for k in ("objects", "object_frames", "classifications")},
        }

    def seal(self) -> Path:
        """Write the manifest into the staging directory and return it (the rows are complete there). A
        one-file output is assembled there first (``data``), its rows ordered by title."""
        with disk_errors(f"the output into {self.staging}"):
            if self.one_file:
                self._assemble()
            (self.staging / MANIFEST).write_bytes(orjson.dumps(self.manifest(), option=orjson.OPT_INDENT_2))
        return self.staging

    def _assemble(self) -> None:
        """The parts of every process, as one file ordered by title: runs of rows that follow one another in a
        part copied as one (in the kernel where it can), and a part that is all the first run renamed instead (one
        process, input in title order; or workers given ranges of titles by a reader's plan)."""
        import os

        self.flush()
        # (by title, as the directory form's manifest: the same file whatever the workers, and a reader's
        # order is not every process's -- readers skip the units other processes convert)
        self.units.sort(key=lambda u: u["title"])
        data = self.staging / "data"
        runs: list[list[Any]] = []  # [part, offset, bytes]
        for u in self.units:
            last = runs[-1] if runs else None
            if last is not None and last[0] == u["part"] and last[1] + last[2] == u["offset"]:
                last[2] += u["bytes"]
            else:
                runs.append([u["part"], u["offset"], u["bytes"]])
        if runs and runs[0][1] == 0 and runs[0][2] == os.stat(self.staging / runs[0][0]).st_size:
            os.rename(self.staging / runs[0][0], data)
            del runs[0]
            out = os.open(data, os.O_WRONLY)  # (not O_APPEND: copy_file_range refuses it)
            os.lseek(out, 0, os.SEEK_END)
        else:
            out = os.open(data, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        handles: dict[str, int] = {}
        try:
            for part, offset, count in runs:
                if part not in handles:
                    handles[part] = os.open(self.staging / part, os.O_RDONLY)
                _copy(handles[part], out, offset, count)
        finally:
            os.close(out)
            for fd in handles.values():
                os.close(fd)
        offset = 0
        for line, u in enumerate(self.units, start=1):
            del u["part"]
            u["line"], u["offset"] = line, offset
            offset += u["bytes"]
        faults.point("assembled")

    def commit(self) -> Path:
        """Seal and put the staging directory in place of ``out`` (atomically where the platform can); for
        one-file output, the file, then its manifest (which says which bytes make the file complete)."""
        self.seal()
        with disk_errors(str(self.out)):
            if not self.one_file:
                return self._staging.commit()
            import os

            faults.point("commit")
            os.replace(self.staging / "data", self.out)
            faults.point("file-renamed")
            os.replace(self.staging / MANIFEST, file_manifest(self.out))
        self._staging.discard()
        return self.out

    def abort(self) -> None:
        if self._part is not None:
            part, self._part = self._part, None
            with contextlib.suppress(OSError):  # (its last rows may not fit the disk: they are discarded anyway)
                part.close()
        self._staging.discard()


class _PartFile:
    """A part file that rows are appended to, a megabyte of them at a time in one gathered write (``writev``): 200
    MB of rows in 200 writes instead of 5,000 (0.06 s against 0.09 s on the development VM's disk), and without
    first copying each row into a buffer, as a 1 MB ``BufferedWriter`` did (43 ms against 34 ms for 100 MB of 40
    KB rows)."""

    HOLD = 1 << 20

    def __init__(self, path: Path) -> None:
        import os

        self.name = path.name
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
        self.size = os.fstat(self.fd).st_size  # (the rows' bytes, those held included)
        self.held: list[bytes] = []
        self.held_bytes = 0

    def write(self, row: bytes) -> None:
        self.held.append(row)
        self.held_bytes += len(row)
        self.size += len(row)
        if self.held_bytes >= self.HOLD or len(self.held) >= 512:  # (writev takes up to 1,024 buffers)
            self.flush()

    def flush(self) -> None:
        import os

        pending: list[Any] = self.held
        self.held, self.held_bytes = [], 0
        while pending:
            done = os.writev(self.fd, pending)
            if done <= 0:
                raise OSError(errno.EIO, "the part file took no bytes")
            k = 0
            while k < len(pending) and done >= len(pending[k]):
                done -= len(pending[k])
                k += 1
            pending = pending[k:]
            if pending and done:  # (a row written in part: its rest)
                pending[0] = memoryview(pending[0])[done:]

    def close(self) -> None:
        import os

        try:
            self.flush()
        finally:
            os.close(self.fd)


def _copy(src: int, dst: int, offset: int, count: int) -> None:
    """``count`` bytes of ``src`` from ``offset`` to the end of ``dst`` (copy_file_range where there is one)."""
    import os

    copy = getattr(os, "copy_file_range", None)
    while count > 0:
        n = 0
        if copy is not None:
            try:
                n = copy(src, dst, count, offset_src=offset)
            except OSError:
                copy = None
        if not n:
            chunk = os.pread(src, min(count, 1 << 20), offset)
            if not chunk:
                raise PredportError("a part file ended early while assembling the output")
            n = os.write(dst, chunk)
        offset += n
        count -= n
