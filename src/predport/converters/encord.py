"""Reader ``encord``: Encord label rows (``LabelRowV2.to_encord_dict()`` / export JSON).

Input: one row, a list of rows, or a directory of such files (searched recursively). Images, image groups
and videos; the legacy ``polygon`` and the ``polygons`` keys; skeleton visibility as ``visibility`` or as
boolean flags; classification ``range`` (or, for older rows without it, the frames that list the
instance); dynamic answers from ``object_actions``. Other data types (DICOM, NIfTI, data groups with
``spaces``) are reported, not skipped.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import predport
from predport.core.model import DataUnit
from predport.core.ontology import OBJECT_SHAPES
from predport.core.problems import Location, PredportError, escape_token
from predport.core.validate import to_ranges

KINDS = {"image": "image", "img_group": "image_group", "image_group": "image_group", "video": "video"}
GEOMETRY_KEYS = ("boundingBox", "rotatableBoundingBox", "polygons", "polygon", "polyline", "point", "bitmask",
                 "skeleton")
SHAPE_KEY = {"bounding_box": "boundingBox", "rotatable_bounding_box": "rotatableBoundingBox", "polygon": "polygons",
             "polyline": "polyline", "point": "point", "bitmask": "bitmask", "skeleton": "skeleton"}


class EncordReader(predport.BaseReader):
    name = "encord"
    description = "Encord label rows (to_encord_dict / export JSON): one row, a list, or a directory"
    capabilities = predport.Capabilities(OBJECT_SHAPES, confidence=True, attributes=True, tracks=True,
                                         classifications=True)

    def detect(self, path: Path) -> predport.Detection:
        files = predport.files_under(path, _json_name, 5) if path.is_dir() else [path]
        for f in files:
            try:
                with (gzip.open(f, "rb") if f.name.endswith(".gz") else f.open("rb")) as stream:
                    head = stream.read(65536)
            except (OSError, EOFError) as e:
                return predport.Detection(0, f"cannot read {f}: {e}")
            if b'"data_units"' in head and (b'"label_hash"' in head or b'"object_answers"' in head):
                return predport.Detection(1.0, f"{f.name} has label-row keys (data_units, label_hash)")
        return predport.Detection(0, "no label-row keys (data_units, label_hash) in the first 64 KB")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        attrs = {h: a for feats in (ctx.ontology.objects, ctx.ontology.classifications)
                 for f in feats.values() for h, a in f.attributes.items()}
        files = predport.files_under(path, _json_name) if path.is_dir() else [path]
        for f in files:
            name = str(f)
            if f.name.endswith((".jsonl", ".jsonl.gz")):  # one row per line (predport's one-file output too)
                yield from units_from_rows(_lines(f, ctx), ctx, attrs=attrs)
                continue
            ok, data = ctx.load_json(f)
            if not ok:
                continue
            if path.is_dir() and f.name == "manifest.json" and isinstance(data, dict) and "predport_version" in data:
                continue  # our own manifest in a converted directory
            rows = data if isinstance(data, list) else [data]
            yield from units_from_rows(((name, f"/{i}" if isinstance(data, list) else "", row)
                                        for i, row in enumerate(rows)), ctx, strict=not path.is_dir(), attrs=attrs)


def _json_name(name: str) -> bool:
    return name.endswith(".json")


def _lines(f: Path, ctx: predport.ReadContext) -> Iterator[tuple[str, str, Any]]:
    """(file:line, "", row) for each line of a JSON-lines file of label rows; predport's one-file output is
    read through its manifest (which says whether it is complete)."""
    from predport.core import output

    name = str(f)
    try:
        if output.is_output(f):
            out = output.open_output(f)
            for unit, data in out.rows():
                yield from _parsed(f"{name}:{unit['line']}", data, ctx)
            return
        with gzip.open(f, "rb") if f.name.endswith(".gz") else f.open("rb") as stream:
            for n, data in enumerate(stream, start=1):
                if data.strip():
                    yield from _parsed(f"{name}:{n}", data, ctx)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        ctx.report("source.unreadable", f"cannot read: {e}", Location(name))
    except PredportError as e:  # (an incomplete output: said where it is)
        ctx.report("source.invalid", str(e), Location(name))


def _parsed(where: str, data: bytes, ctx: predport.ReadContext) -> Iterator[tuple[str, str, Any]]:
    import orjson

    try:
        yield where, "", orjson.loads(data)
    except orjson.JSONDecodeError as e:
        ctx.report("source.unreadable", f"not JSON: {e}", Location(where))


def units_from_rows(rows: Iterable[tuple[str, str, Any]], ctx: predport.ReadContext, strict: bool = True,
                    attrs: dict[str, Any] | None = None) -> Iterator[DataUnit]:
    """Data units from label rows already in memory: (where it is -- a file or a name --, JSON pointer of the
    row in it, the row). ``strict``: something that is not a label row is an error (else a warning)."""
    if attrs is None:
        attrs = {h: a for feats in (ctx.ontology.objects, ctx.ontology.classifications)
                 for f in feats.values() for h, a in f.attributes.items()}
    for name, base, row in rows:
        if not isinstance(row, dict) or "data_type" not in row:
            ctx.report("source.invalid", "not an Encord label row (no data_type)", Location(name, base),
                       "error" if strict else "warning")
            continue
        try:
            unit = _Row(row, name, base, ctx, attrs).unit()
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:  # malformed: said
            ctx.report("source.invalid", f"cannot read this label row ({type(e).__name__}: {e})", Location(name, base))
            continue
        if unit is not None:
            yield unit


class _Row:
    def __init__(self, row: dict[str, Any], file: str, base: str, ctx: predport.ReadContext,
                 attrs: dict[str, Any]) -> None:
        self.row, self.file, self.base, self.ctx, self.attrs = row, file, base, ctx, attrs

    def src(self, *tokens: str | int) -> dict[str, Any]:
        return {"file": self.file, "pointer": self.base + "".join("/" + escape_token(t) for t in tokens)}

    def unit(self) -> DataUnit | None:
        row = self.row
        kind = KINDS.get(row["data_type"])
        dus = row.get("data_units") or {}
        if kind is None or (not dus and row.get("spaces")):
            what = row["data_type"] if kind is None else "data group with 'spaces'"
            held = _entities(row)  # (what the row holds is said not converted, in the per-group counts)
            self.ctx.report("source.unsupported", f"label rows of type {what!r} are not converted ({held} "
                            "object and classification entries)", Location(self.file, self.base + "/data_type"),
                            group=f"({what} rows)", entities=held)
            return None
        ordered = sorted(dus.items(), key=lambda kv: int(kv[1].get("data_sequence", 0) or 0))
        title = row.get("data_title") or (ordered[0][1].get("data_title") if kind != "image_group" and ordered
                                          else None)
        if not title:  # detached rows have neither a title nor a real hash: name them after the file
            dh = row.get("data_hash")
            title = dh if dh and dh.strip("0-") else Path(self.file).stem + self.base.replace("/", "-")
        unit: dict[str, Any] = {"title": title, "data_hash": row.get("data_hash"), "kind": kind,
                                "objects": [], "classifications": [], "source": self.src()}
        if kind == "image_group":
            unit["images"] = [{"title": du.get("data_title"), "data_hash": du.get("data_hash", h),
                               "width": du.get("width"), "height": du.get("height")} for h, du in ordered]
        elif ordered:
            du = ordered[0][1]
            unit["width"], unit["height"] = du.get("width"), du.get("height")
            if kind == "video":
                unit["fps"], unit["duration"] = du.get("data_fps"), du.get("data_duration")
        objects: dict[tuple[str, str], dict[str, Any]] = {}
        listed: dict[str, set[int]] = {}  # classification instance -> frames listing it (older rows)
        self.listed_features: dict[str, str] = {}  # classification instance -> featureHash from those listings
        for h, du in ordered:
            labels = du.get("labels") or {}
            per_frame: list[tuple[int, Any, tuple[str, ...]]]
            if kind == "video":
                per_frame = [(int(k), labels[k], ("labels", k)) for k in sorted(labels, key=int)]
            else:
                frame = int(du.get("data_sequence", 0) or 0) if kind == "image_group" else 0
                per_frame = [(frame, labels, ("labels",))]
            for frame, lab, where in per_frame:
                for k, entry in enumerate(lab.get("objects", []) or []):
                    self._object(objects, entry, frame, ("data_units", h, *where, "objects", k))
                for entry in lab.get("classifications", []) or []:
                    if "classificationHash" in entry:
                        listed.setdefault(entry["classificationHash"], set()).add(frame)
                        if entry.get("featureHash"):
                            self.listed_features[entry["classificationHash"]] = entry["featureHash"]
        for (oh, _), obj in objects.items():
            answers = [*self._static(oh), *self._dynamic(oh)]
            if answers:
                obj["answers"] = answers
        placed = {oh for oh, _ in objects}
        for key, inner in (("object_answers", "classifications"), ("object_actions", "actions")):
            for oh, entry in (row.get(key) or {}).items():
                if oh not in placed and isinstance(entry, dict) and entry.get(inner):
                    # the SDK leaves these behind for objects placed on frames that do not exist
                    self.ctx.report("source.invalid", f"answers for object {oh!r}, which is on no frame of this "
                                    "row: not converted", Location(self.file, self.base + f"/{key}/{escape_token(oh)}"),
                                    "warning")
        unit["objects"] = list(objects.values())
        unit["classifications"] = self._classifications(listed)
        return unit  # type: ignore[return-value]

    def _object(self, objects: dict[tuple[str, str], Any], e: dict[str, Any], frame: int,
                where: tuple[str | int, ...]) -> None:
        src = self.src(*where)
        oh, fh = e.get("objectHash"), e.get("featureHash")
        group = str(e.get("name") or fh or "?")  # (the row's class name: per-class counts)
        src["group"] = group
        if not oh or not fh:
            self.ctx.report("source.invalid", "object entry without objectHash or featureHash",
                            Location.from_source(src), group=group)
            return
        key = SHAPE_KEY.get(e.get("shape", ""))
        if key is None or (key not in e and not (key == "polygons" and "polygon" in e)):
            key = next((k for k in GEOMETRY_KEYS if k in e), None)
        if key is None:
            self.ctx.report("source.invalid", "object entry without geometry", Location.from_source(src), group=group)
            return
        geometry = _geometry(key, e)
        if geometry is None:
            self.ctx.report("source.invalid", f"cannot read the {key} geometry", Location.from_source(src, key),
                            group=group)
            return
        fr: dict[str, Any] = {"frame": frame, "geometry": geometry, "source": src}
        if "confidence" in e:
            fr["confidence"] = e["confidence"]
        obj = objects.get((oh, fh))
        if obj is None:
            obj = objects[(oh, fh)] = {"id": oh, "class": {"hash": fh}, "frames": [], "source": src}
        obj["frames"].append(fr)

    def _answer(self, a: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
        fh = a.get("featureHash", "")
        out: dict[str, Any] = {"attribute": {"hash": fh}, "source": src}
        value = a.get("answers")
        attr = self.attrs.get(fh)
        if isinstance(value, list):
            refs = [{"hash": v.get("featureHash", "")} for v in value if isinstance(v, dict)]
            if attr is not None and attr.type == "radio" and len(refs) == 1:
                out["radio"] = refs[0]
            else:
                out["checklist"] = refs
        elif isinstance(value, str) and not (attr is not None and attr.type == "numeric"):
            out["text"] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out["numeric"] = value
        elif isinstance(value, str):
            try:
                out["numeric"] = float(value)
            except ValueError:
                out["text"] = value
        else:
            out["text"] = value  # wrong type: the schema reports it with this location
        return out

    def _merged(self, answers: list[dict[str, Any]], where: tuple[str | int, ...]
                ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        # the web editor writes a checklist as one dict per ticked option: merge those
        # (dynamic answers: one dict per option and frame range)
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for i, a in enumerate(answers):
            if not isinstance(a, dict):
                continue
            fh = a.get("featureHash") or ""
            key = (fh, repr(a.get("range")))
            prev = by_key.get(key) if fh else None
            attr = self.attrs.get(fh)
            if prev is not None and attr is not None and attr.type == "checklist":
                prev["answers"] = [*prev["answers"], *(a.get("answers") or [])]
                continue
            a = dict(a)
            if fh:
                by_key[key] = a
            out.append((a, self.src(*where, i)))
        return out

    def _static(self, oh: str) -> list[dict[str, Any]]:
        entry = (self.row.get("object_answers") or {}).get(oh) or {}
        return [self._answer(a, src) for a, src in
                self._merged(entry.get("classifications") or [], ("object_answers", oh, "classifications"))]

    def _dynamic(self, oh: str) -> list[dict[str, Any]]:
        entry = (self.row.get("object_actions") or {}).get(oh) or {}
        out = []
        for a, src in self._merged(entry.get("actions") or [], ("object_actions", oh, "actions")):
            ans = self._answer(a, src)
            if a.get("range"):
                ans["frames"] = a["range"]
            out.append(ans)
        return out

    def _classifications(self, listed: dict[str, set[int]]) -> list[dict[str, Any]]:
        out = []
        answers = self.row.get("classification_answers") or {}
        for ch, c in answers.items():
            src = self.src("classification_answers", ch)
            first = (c.get("classifications") or [{}])[0]
            src["group"] = str(first.get("name") or c.get("featureHash") or "?") if isinstance(first, dict) else "?"
            frames = c.get("range")
            if not frames and ch in listed:
                frames = [list(r) for r in to_ranges(listed[ch])]  # older rows list the frames instead
            if not frames:
                self.ctx.report("source.invalid", "classification without range and not listed on any frame",
                                Location.from_source(src), group=src["group"])
                continue
            items = self._merged(c.get("classifications") or [], ("classification_answers", ch, "classifications"))
            if not items:
                self.ctx.report("classification.no_answer", "classification instance without answers; skipped",
                                Location.from_source(src), "warning", group=src["group"], entities=1)
                continue
            feature = c.get("featureHash") or self.listed_features.get(ch) or self._owner(items[0][0])
            rec: dict[str, Any] = {"id": ch, "class": {"hash": feature},
                                   "answers": [self._answer(a, s) for a, s in items], "frames": frames,
                                   "source": src}
            if "confidence" in c:
                rec["confidence"] = c["confidence"]
            out.append(rec)
        for ch in listed.keys() - answers.keys():
            self.ctx.report("classification.no_answer",
                            f"classification instance {ch!r} is listed on frames but has no answers; skipped",
                            Location(self.file, self.base + "/classification_answers"), "warning")
        return out


    def _owner(self, answer: dict[str, Any]) -> str:
        """The classification owning an answer's attribute (rows that omit the classification's hash)."""
        for c in self.ctx.ontology.classifications.values():
            if answer.get("featureHash") in c.attributes:
                return c.hash
        return ""


def _flat(points: Any) -> list[Any]:
    if isinstance(points, dict):
        points = [points[k] for k in sorted(points, key=int)]
    return [c for p in points for c in (p["x"], p["y"])]


def _geometry(key: str, e: dict[str, Any]) -> dict[str, Any] | None:
    try:
        v = e[key] if key in e else e["polygon"]
        if key == "boundingBox":
            return {"shape": "bounding_box", "x": v["x"], "y": v["y"], "w": v["w"], "h": v["h"]}
        if key == "rotatableBoundingBox":
            return {"shape": "rotatable_bounding_box", "x": v["x"], "y": v["y"], "w": v["w"], "h": v["h"],
                    "theta": v["theta"]}
        if key == "polygons" and "polygons" in e:
            return {"shape": "polygon", "polygons": v}
        if key in ("polygons", "polygon"):
            return {"shape": "polygon", "polygons": [[_flat(v)]]}
        if key == "polyline":
            return {"shape": "polyline", "points": _flat(v)}
        if key == "point":
            p = v["0"] if isinstance(v, dict) and "0" in v else v
            return {"shape": "point", "x": p["x"], "y": p["y"]}
        if key == "bitmask":
            return {"shape": "bitmask", "width": v["width"], "height": v["height"], "rle": v["rleString"]}
        if key == "skeleton":
            pts = [v[k] for k in sorted(v, key=int)] if isinstance(v, dict) else v
            return {"shape": "skeleton", "points": [_vertex(p) for p in pts]}
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        return None
    return None


def _vertex(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"x": p["x"], "y": p["y"]}
    if p.get("name") is not None:
        out["name"] = p["name"]
    if p.get("featureHash"):
        out["hash"] = p["featureHash"]
    vis = p.get("visibility")
    if vis is None:
        # the flag form: {"invisible": true} / {"occluded": true} / {"selfOccluded": true}
        vis = next((k for k in ("invisible", "occluded", "selfOccluded") if p.get(k) is True), None)
        if vis is None and any(k in p for k in ("invisible", "occluded", "selfOccluded")):
            vis = "visible"
    if vis is not None:
        out["visibility"] = vis
    return out


def _entities(row: dict[str, Any]) -> int:
    """Object entries (one per frame) and classification instances of a label row, whatever its type."""
    count = len(row.get("classification_answers") or {})
    for du in (row.get("data_units") or {}).values():
        labels = du.get("labels") if isinstance(du, dict) else None
        if not isinstance(labels, dict):
            continue
        frames = [labels] if "objects" in labels or "classifications" in labels else labels.values()
        count += sum(len(f.get("objects") or []) for f in frames if isinstance(f, dict))
    return count


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [EncordReader()]
