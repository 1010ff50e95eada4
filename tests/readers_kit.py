"""Helpers for the readers' tests: convert with an ontology built from class names, then read the label rows back
through the real encord SDK, in the input's own units (pixels), so that a test compares against the numbers the
input file prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import predport
from predport.testing import ontology
from sdk_oracle import parse, sdk_ontology


def convert(tmp: Path, sources: list[Path] | Path, objects: dict[str, Any], fmt: str | None = None,
            attributes: dict[str, Any] | None = None, skeletons: dict[str, Any] | None = None,
            classifications: dict[str, Any] | None = None, keep_going: bool = True, workers: int = 1,
            **options: Any) -> tuple[predport.Report, dict[str, Any], dict[str, Any]]:
    """(report, label rows by title, ontology) of a conversion into ``tmp/out``."""
    ont = ontology(objects, attributes=attributes, skeletons=skeletons, classifications=classifications)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "ontology.json"
    path.write_text(json.dumps(ont))
    out = tmp / "out"
    report = predport.convert(sources if isinstance(sources, list) else [sources], path, "preds", out, fmt=fmt,
                              options=options, keep_going=keep_going, workers=workers)
    rows = {}
    if (out / "manifest.json").is_file():
        manifest = json.loads((out / "manifest.json").read_text())
        rows = {u["title"]: json.loads((out / u["file"]).read_text()) for u in manifest["units"]}
    return report, rows, ont


def _r(v: float) -> float:
    return round(v, 4) + 0.0  # (-0.0 -> 0.0)


def view(row: dict[str, Any], ont: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every object annotation of a label row, parsed by the SDK: (class, frame, shape, pixel geometry,
    confidence), sorted. Boxes (x, y, w, h[, theta]); polygons as lists of rings of (x, y); polylines and points
    as (x, y) tuples; skeletons as (name, x, y, visibility); bitmasks as (pixel count, x0, y0, x1, y1)."""
    lr = parse(row, sdk_ontology(ont))
    dus = list(row["data_units"].values())
    out = []
    for inst in lr.get_object_instances():
        for ann in inst.get_annotations():
            du = dus[ann.frame] if row["data_type"] == "image_group" else dus[0]
            w, h = du["width"], du["height"]
            c = ann.coordinates
            kind = type(c).__name__
            if kind == "BoundingBoxCoordinates":
                g: Any = (_r(c.top_left_x * w), _r(c.top_left_y * h), _r(c.width * w), _r(c.height * h))
            elif kind == "RotatableBoundingBoxCoordinates":
                g = (_r(c.top_left_x * w), _r(c.top_left_y * h), _r(c.width * w), _r(c.height * h), _r(c.theta))
            elif kind == "PolygonCoordinates":
                g = [[[(_r(p.x * w), _r(p.y * h)) for p in ring] for ring in part] for part in c.polygons]
            elif kind == "PolylineCoordinates":
                g = [(_r(p.x * w), _r(p.y * h)) for p in c.values]
            elif kind == "PointCoordinate":
                g = (_r(c.x * w), _r(c.y * h))
            elif kind == "SkeletonCoordinates":
                g = [(p.name, _r(p.x * w), _r(p.y * h), p.visibility.value if p.visibility else None)
                     for p in c.values]
            else:  # bitmask
                m = c.to_numpy_array()
                ys, xs = np.nonzero(m)
                g = (int(m.sum()), int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if len(xs) else (0,)
            frame = ann.frame if row["data_type"] == "video" else 0
            title = du["data_title"] if row["data_type"] == "image_group" else None
            out.append((inst.ontology_item.name, frame, kind.replace("Coordinates", "").replace("Coordinate", ""), g,
                        _r(ann.confidence)) + ((title,) if title else ()))
    return sorted(out, key=repr)


def answers(row: dict[str, Any], ont: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Every object's answers as (class, attribute name, value), values as option labels, text or number;
    dynamic answers with their frame ranges."""
    names: dict[str, str] = {}

    def walk(attrs: list[dict[str, Any]]) -> None:
        for a in attrs:
            names[a["featureNodeHash"]] = a["name"]
            for o in a.get("options", []):
                names[o["featureNodeHash"]] = o["label"]
                walk(o.get("options", []))

    for o in ont["objects"]:
        walk(o.get("attributes", []))
    for c in ont["classifications"]:
        walk(c["attributes"])
    objects = {o["objectHash"]: o["name"] for du in row["data_units"].values()
               for lab in ([du["labels"]] if "objects" in du["labels"] else du["labels"].values())
               for o in lab.get("objects", [])}
    out = []
    for h, v in row["object_answers"].items():
        for a in v["classifications"]:
            out.append((objects.get(h, "?"), names[a["featureHash"]], _value(a["answers"], names)))
    for h, v in row.get("object_actions", {}).items():
        for a in v["actions"]:
            out.append((objects.get(h, "?"), names[a["featureHash"]], _value(a["answers"], names),
                        [tuple(r) for r in a["range"]]))
    return sorted(out, key=repr)


def classifications(row: dict[str, Any], ont: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every classification as (name, frame ranges, [(attribute, value)])."""
    names: dict[str, str] = {}
    for c in ont["classifications"]:
        for a in c["attributes"]:
            names[a["featureNodeHash"]] = a["name"]
            for o in a.get("options", []):
                names[o["featureNodeHash"]] = o["label"]
    out = []
    for v in row["classification_answers"].values():
        out.append((names.get(v["classifications"][0]["featureHash"], "?"), [tuple(r) for r in v.get("range", [])],
                    [(names[a["featureHash"]], _value(a["answers"], names)) for a in v["classifications"]]))
    return sorted(out, key=repr)


def _value(answers: Any, names: dict[str, str]) -> Any:
    if isinstance(answers, list):
        return sorted(names.get(a["featureHash"], a.get("name")) for a in answers)
    return answers


def codes(report: predport.Report) -> list[str]:
    return sorted(p.code for p in report.problems)
