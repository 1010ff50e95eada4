#!/usr/bin/env python3
"""Dev only: (re)build the built-in readers' conformance samples, src/predport/samples/, from the tests' data
(fixtures of other projects and files written by the tools users use; see tests/data/PROVENANCE.md).

    .venv/bin/python scripts/make-samples.py

Each sample's ``entities`` is counted here from the files themselves (annotations, rows, shapes, tags), not by
predport, so that the kit's "every entity converted or reported" check means something.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = ROOT / "src" / "predport" / "samples"
sys.path.insert(0, str(ROOT / "src"))
from predport.testing import ontology  # noqa: E402

SCENE = {"car": ["bounding_box", "polygon", "rotatable_bounding_box"],
         "person": ["bounding_box", "polygon", "skeleton"], "dog": ["bounding_box", "point", "bitmask"],
         "traffic_light": ["bounding_box"], "road": ["polyline"]}
OCCLUDED = {c: [{"name": "occluded", "type": "radio", "options": ["yes", "no"]}] for c in ("car", "person")}
TAGS = {"Time of day": {"type": "radio", "options": ["daytime", "night"]}}


def lines(*files: Path) -> int:
    return sum(1 for f in files for line in f.read_text().splitlines() if line.strip())


def count(pattern: str, *files: Path) -> int:
    return sum(len(re.findall(pattern, f.read_text())) for f in files)


def copy(src: Path, dst: str) -> str:
    target = OUT / dst
    if src.is_dir():
        shutil.copytree(src, target, ignore=shutil.ignore_patterns("written.json"))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)
    return dst


def ont(name: str, data: dict[str, Any]) -> str:
    path = OUT / "ontologies" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return f"ontologies/{name}.json"


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    (OUT / "__init__.py").write_text('"""The built-in readers\' conformance samples (see predport.testing)."""\n')
    w = DATA / "written"
    scene = ont("scene", ontology(SCENE, attributes=OCCLUDED, classifications=TAGS,
                                  skeletons={"person": ["nose", "left_eye", "right_eye"]}))
    samples: list[dict[str, Any]] = []

    def add(reader: str, path: str, ontology_: str, entities: int, source: str, **options: Any) -> None:
        samples.append({"reader": reader, "path": path, "ontology": ontology_, "entities": entities,
                        "source": source, **({"options": options} if options else {})})

    # coco: a results file (confidences) and the encord SDK's own export (every shape, answers, tracks)
    results = json.loads((ROOT / "examples" / "coco-results.json").read_text())
    copy(ROOT / "examples" / "coco-images.json", "coco/images.json")
    add("coco", copy(ROOT / "examples" / "coco-results.json", "coco/results.json"), "coco/ontology.json",
        len(results), "examples/ (predport's own example)", images="coco/images.json")
    copy(ROOT / "examples" / "ontology.json", "coco/ontology.json")
    export = json.loads((DATA / "coco" / "encord-export" / "COCO_EXPORTER_EXPECTED_RES.json").read_text())
    add("coco", copy(DATA / "coco" / "encord-export" / "COCO_EXPORTER_EXPECTED_RES.json", "coco/encord-export.json"),
        copy(DATA / "encord" / "client" / "exporter.ontology.json", "ontologies/encord-exporter.json"),
        len(export["annotations"]), "encord-client-python tests (Apache-2.0)")
    # encord: label rows of every shape, image groups, a video with dynamic answers and classifications
    rows = OUT / "encord" / "rows"
    rows.mkdir(parents=True)
    held = 0
    for f in sorted((DATA / "encord" / "reference").glob("*.json")):
        if f.name != "ontology.json":
            shutil.copy(f, rows / f.name)
            row = json.loads(f.read_text())
            held += len(row.get("classification_answers") or {}) + sum(
                len(fr.get("objects") or []) for du in row["data_units"].values()
                for fr in ([du["labels"]] if "objects" in du["labels"] else du["labels"].values()))
    reference = copy(DATA / "encord" / "reference" / "ontology.json", "ontologies/encord-reference.json")
    add("encord", "encord/rows", reference, held, "label rows made with the encord SDK (this project)")
    # predport: the internal schema, as predport itself writes it (predport.read of the encord rows)
    import os

    import predport

    here = Path.cwd()
    os.chdir(OUT)  # (sources as paths relative to the samples)
    units = list(predport.read([rows.relative_to(OUT)], reference, problems=predport.Problems()))
    os.chdir(here)
    (OUT / "predport").mkdir()
    (OUT / "predport" / "units.json").write_text(json.dumps(units, indent=1) + "\n")
    add("predport", "predport/units.json", reference, held, "predport.read of samples/encord/rows")
    # yolo: ultralytics' four tasks
    skeleton = {"person": ["nose", "left_eye", "right_eye"]}
    for task, shape in (("detect", "bounding_box"), ("obb", "rotatable_bounding_box"), ("pose", "skeleton"),
                        ("segment", "polygon")):
        src = w / "ultralytics" / task / "files"
        add("yolo", copy(src, f"yolo/{task}"), ont(f"yolo-{task}", ontology(
            {c: shape for c in SCENE}, skeletons=skeleton)), lines(*(src / "labels").glob("*.txt")),
            "ultralytics Results.save_txt (scripts/make-writer-data.py)")
    # voc, kitti: datumaro's exports (confidences and attributes)
    src = w / "datumaro" / "voc" / "files"
    add("voc", copy(src, "voc/datumaro"), scene, count(r"<object>", *(src / "Annotations").glob("*.xml")),
        "datumaro voc_detection (scripts/make-writer-data.py)")
    src = w / "datumaro" / "kitti" / "files"
    add("kitti", copy(src, "kitti/datumaro"), scene, lines(*src.rglob("*.txt")),
        "datumaro kitti_detection (scripts/make-writer-data.py)")
    # mot: datumaro's ground truth (visibility answers), norfair's tracker results
    src = w / "datumaro" / "mot_seq_gt" / "files" / "clip"
    visibility = [{"name": "visibility", "type": "numeric"}]
    mot_ont = ont("mot", ontology({"car": "bounding_box", "person": "bounding_box", "pedestrian": "bounding_box"},
                                  attributes={c: visibility for c in ("car", "person")}))
    add("mot", copy(src, "mot/clip"), mot_ont, lines(src / "gt" / "gt.txt"), "datumaro mot_seq_gt")
    src = w / "norfair" / "mot" / "files"
    copy(src / "sequences", "mot/sequences")
    add("mot", copy(src / "predictions", "mot/results"), mot_ont, lines(*(src / "predictions").glob("*.txt")),
        "norfair PredictionsTextFile", sequences="mot/sequences")
    # labelme: labelme's JSON (every shape, flags, scores) and datumaro's MIT XML (polygons, masks)
    src = w / "labelme" / "json" / "files"
    docs = [json.loads(f.read_text()) for f in src.glob("*.json")]
    add("labelme", copy(src, "labelme/json"), scene, sum(len(d["shapes"]) + sum(map(bool, d["flags"].values()))
                                                         for d in docs), "labelme LabelFile.save")
    src = w / "datumaro" / "label_me" / "files"
    add("labelme", copy(src, "labelme/mit-xml"), scene, count(r"<object>", *src.rglob("*.xml")), "datumaro label_me")
    # cvat: datumaro's and fiftyone's CVAT for images; fiftyone's and cvat-ai/datumaro's CVAT for video
    src = w / "datumaro" / "cvat" / "files"
    add("cvat_images", copy(src, "cvat_images/datumaro"), scene, count(
        r"<(box|polygon|polyline|points|mask|tag) ", *src.glob("*.xml")), "datumaro cvat")
    src = DATA / "cvat" / "cvat-ai-datumaro" / "for_images"
    add("cvat_images", copy(src, "cvat_images/cvat-ai-datumaro"), ont("cvat-images", ontology(
        {"label1": "bounding_box", "label2": "point", "skeleton": "skeleton", "": ["polyline", "polygon"]},
        attributes={"label1": [{"name": "a1", "type": "radio", "options": ["false", "true"]},
                               {"name": "a2", "type": "radio", "options": ["v1", "v2", "v3"]},
                               {"name": "a3", "type": "text"}, {"name": "a4", "type": "numeric"}]},
        skeletons={"skeleton": ["1", "2", "3", "4"]})), 3 + 5, "cvat-ai/datumaro tests (MIT): CVAT's export")
    # (img0: a box, a polyline, a skeleton; img1: a polygon, three points of a point class, a skeleton)
    src = w / "fiftyone" / "cvat_image" / "files"
    add("cvat_images", copy(src / "annotations.xml", "cvat_images/fiftyone.xml"), scene, count(
        r"<(box|polygon|polyline|points|mask|tag) ", src / "annotations.xml"), "fiftyone CVATImageAnnotationWriter")
    src = w / "fiftyone" / "cvat_video" / "files" / "annotations.xml"
    add("cvat_video", copy(src, "cvat_video/fiftyone.xml"), scene, count(r'outside="0"', src),
        "fiftyone CVATVideoAnnotationWriter")
    src = DATA / "cvat" / "cvat-ai-datumaro" / "for_video" / "annotations.xml"
    # (shapes in view: the box at 10, three points at 10, the polyline at 13, the skeleton at 10, 13, 16)
    add("cvat_video", copy(src, "cvat_video/cvat-ai-datumaro.xml"), ont("cvat-video", ontology(
        {"II": ["bounding_box", "polyline"], "klhg": "point", "skeleton": "skeleton"},
        attributes={"klhg": [{"name": "hgl", "type": "radio", "options": ["jk", "hgkf"], "dynamic": True}]},
        skeletons={"skeleton": ["1", "2", "3", "4"]})), 1 + 3 + 1 + 3, "cvat-ai/datumaro tests (MIT)")
    listing = ("# The built-in readers' conformance samples: made by scripts/make-samples.py (do not edit).\n"
               "# entities: annotations in the files, counted from the files; unshown: capabilities no sample shows,\n"
               "# and why.\n")
    unshown = {"mot": {"confidence": "no MOT writer at hand writes det.txt scores (tests/test_readers.py reads "
                                     "them)"},
               "cvat_video": {"confidence": "no CVAT-for-video writer at hand writes a score attribute (the shared "
                                            "code is shown by cvat_images)",
                              "classifications": "no CVAT-for-video writer at hand writes tags (the shared code is "
                                                 "shown by cvat_images)",
                              **dict.fromkeys(("bitmask", "polygon", "rotatable_bounding_box"),
                                              "no CVAT-for-video writer at hand writes it (the shared shape code "
                                              "is shown by cvat_images)")}}
    (OUT / "samples.yaml").write_text(listing + yaml.safe_dump({"samples": samples, "unshown": unshown},
                                                               sort_keys=False, width=110))
    print(f"{len(samples)} samples in {OUT}")


if __name__ == "__main__":
    main()
