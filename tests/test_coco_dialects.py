"""COCO as other tools export it: the encord SDK's own export reads back to the label rows it came from; CVAT's
export answers the ontology's attributes; a COCO dataset directory; classes chosen by the annotation's geometry."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

import predport
from conftest import DATA
from readers_kit import codes
from sdk_oracle import canonical, parse, sdk_ontology

EXPORT = DATA / "coco" / "encord-export" / "COCO_EXPORTER_EXPECTED_RES.json"
ROWS = DATA / "encord" / "client" / "exporter_labels_list.labels.json"
ONTOLOGY = DATA / "encord" / "client" / "exporter.ontology.json"


def objects(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per object hash, as the SDK parses the rows: class, frames ((data hash, frame)) with geometry normalised
    to the frame, and static answers as (attribute hash, value)."""
    ont = sdk_ontology(json.loads(ONTOLOGY.read_text()))
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        lr = parse(row, ont)
        video = row["data_type"] == "video"
        # (an image group's members are images of their own in the export: frames keyed by image data hash)
        dus = [k for k, _ in sorted(row["data_units"].items(), key=lambda u: int(u[1].get("data_sequence", 0)))]
        for inst in lr.get_object_instances():
            rec = out.setdefault(inst.object_hash, {"class": None, "frames": {}, "answers": set()})
            rec["class"] = inst.ontology_item.feature_node_hash
            for ann in inst.get_annotations():
                key = (dus[0], ann.frame) if video else (dus[ann.frame] if len(dus) > 1 else dus[0], 0)
                rec["frames"][key] = _geometry(ann.coordinates)
        # static answers, as the SDK serialises them (the export has no dynamic ones: see below)
        for h, given in canonical(lr)["static"].items():
            out.setdefault(h, {"class": None, "frames": {}, "answers": set()})["answers"] |= set(given)
    return out


def _geometry(c: Any) -> Any:
    kind = type(c).__name__
    if kind == "BitmaskCoordinates":
        return ("mask", c.to_numpy_array().astype(bool))
    if kind == "SkeletonCoordinates":  # (the ontology has no template: compared by position and visibility;
        # the export writes v = 2, visible, for a vertex without a visibility)
        return ("skeleton", [(p.x, p.y, p.visibility.value if p.visibility else "visible") for p in c.values])
    if kind == "PolygonCoordinates":
        return ("polygon", [[[(p.x, p.y) for p in ring] for ring in part] for part in c.polygons])
    if kind in ("PolylineCoordinates",):
        return ("polyline", [(p.x, p.y) for p in c.values])
    if kind == "PointCoordinate":
        return ("point", (c.x, c.y))
    if kind == "RotatableBoundingBoxCoordinates":
        return ("rbox", (c.top_left_x, c.top_left_y, c.width, c.height, c.theta))
    return ("box", (c.top_left_x, c.top_left_y, c.width, c.height))


def same(a: Any, b: Any, tol: float = 2e-6) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool((a == b).all())
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(a, b, abs_tol=tol)
    return bool(a == b)


def test_the_encord_sdk_export_reads_back_to_its_label_rows(tmp_path: Path) -> None:
    report = predport.convert([EXPORT], ONTOLOGY, "roundtrip", tmp_path / "out", keep_going=True)
    assert report.problems.errors == 8 and set(codes(report)) >= {"source.unsupported"}  # (7 DICOM, 1 NIfTI)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    ours = objects([json.loads((tmp_path / "out" / u["file"]).read_text()) for u in manifest["units"]])
    theirs = objects([r for r in json.loads(ROWS.read_text()) if r["data_type"] in ("image", "img_group", "video")])
    assert sorted(ours) == sorted(theirs) and len(ours) == 47  # (56 annotations: tracks over frames)
    for h, want in theirs.items():
        got = ours[h]
        assert got["class"] == want["class"], h
        assert sorted(got["frames"]) == sorted(want["frames"]), h
        for f, g in want["frames"].items():
            assert same(got["frames"][f], g), (h, f, got["frames"][f], g)
        assert got["answers"] == want["answers"], (h, got["answers"], want["answers"])
    # (dynamic answers are not compared: the SDK's exporter writes them as null / false on images and videos)
    export = json.loads(EXPORT.read_text())
    dynamic = {a["name"] for o in json.loads(ONTOLOGY.read_text())["objects"] for a in o.get("attributes", [])
               if a.get("dynamic")}
    media = {im["id"]: im["file_name"].split("/")[0] for im in export["images"]}
    assert not [(a["id"], k) for a in export["annotations"] if media[a["image_id"]] in ("images", "videos")
                for k, v in a["attributes"]["classifications"].items() if k.split(" option ")[0] in dynamic and v]
