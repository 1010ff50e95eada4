"""The readers of issue 11 on the shared fixtures (real files of other projects, tests/data/PROVENANCE.md), with the
numbers each file prints worked out by hand, and on the defects users meet (each reported where it is)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import predport
from conftest import DATA
from predport import plugins
from predport.converters import yolo
from readers_kit import answers, classifications, codes, convert, view

YOLO, VOC, KITTI, MOT, LABELME, CVAT = (DATA / n for n in ("yolo", "voc", "kitti", "mot", "labelme", "cvat"))
LABELS = [f"label_{k}" for k in range(10)]


def copy(src: Path, tmp: Path) -> Path:
    dst = tmp / src.name
    shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    return dst


def only(rows: dict[str, Any]) -> dict[str, Any]:
    [row] = rows.values()
    return row


# -- detection: every fixture is recognised by its own reader -----------------------------------------------------

@pytest.mark.parametrize(("path", "reader"), [
    (YOLO / "yolo", "yolo"), (YOLO / "yolov8_detection", "yolo"), (YOLO / "yolov8_segmentation", "yolo"),
    (YOLO / "yolov8_oriented_boxes", "yolo"), (YOLO / "yolov8_pose", "yolo"), (YOLO / "roboflow", "yolo"),
    (YOLO / "label-studio", "yolo"), (YOLO / "yolov8_detection_with_subset_txt", "yolo"),
    (VOC / "voc_dataset1", "voc"), (VOC / "voc_dataset2", "voc"), (VOC / "roboflow", "voc"),
    (KITTI / "kitti_detection", "kitti"), (KITTI / "kitti_3d" / "training" / "label_2", "kitti"),
    (MOT / "mot_seq", "mot"), (MOT / "mot_seq_with_seqinfo", "mot"), (LABELME, "labelme"),
    (CVAT / "cvat-ai-datumaro" / "for_images" / "train.xml", "cvat_images"),
    (CVAT / "datumaro" / "for_images" / "export_project", "cvat_images"),
    (CVAT / "cvat-ai-datumaro" / "for_video", "cvat_video"),
])
def test_each_fixture_is_detected_as_its_format(path: Path, reader: str) -> None:
    assert plugins.load().detect(path).name == reader


# -- YOLO -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["yolo", "yolov8_detection", "yolov8_detection_with_list_of_imgs",
                                    "yolov8_detection_with_list_of_names", "yolov8_detection_with_subset_txt"])
def test_yolo_darknet_and_ultralytics_layouts_give_the_same_boxes(layout: str, tmp_path: Path) -> None:
    # 1.jpg is 15 x 10; "2 0.133333 0.300000 0.266667 0.200000": centre (2, 3), 4 x 2 px -> (0, 2, 4, 2)
    report, rows, ont = convert(tmp_path, YOLO / layout, {n: "bounding_box" for n in LABELS})
    assert report.ok, codes(report)
    assert list(rows) == ["1.jpg"]
    assert view(rows["1.jpg"], ont) == [("label_2", 0, "BoundingBox", (0.0, 2.0, 4.0, 2.0), 1.0),
                                        ("label_4", 0, "BoundingBox", (3.0, 3.0, 2.0, 3.0), 1.0)]


def test_yolo_segmentation_polygons_are_open_rings_in_pixels(tmp_path: Path) -> None:
    report, rows, ont = convert(tmp_path, YOLO / "yolov8_segmentation", {n: "polygon" for n in LABELS})
    assert report.ok
    assert view(rows["1.jpg"], ont) == [
        ("label_2", 0, "Polygon", [[[(1.5, 1.0), (6.0, 1.0), (6.0, 5.0)]]], 1.0),
        ("label_4", 0, "Polygon", [[[(3.0, 1.5), (6.0, 1.5), (6.0, 7.5), (4.5, 7.5), (3.75, 3.0)]]], 1.0)]


def test_yolo_obb_corners_become_the_rotated_box_with_its_exact_angle(tmp_path: Path) -> None:
    # corners (2.2, 1.518) (4.799, 3.018) (2.799, 6.482) (0.201, 4.982): centre (2.5, 4), sides 3 and 4, 30 deg
    report, rows, ont = convert(tmp_path, YOLO / "yolov8_oriented_boxes", {n: "rotatable_bounding_box" for n in LABELS})
    assert report.ok
    [(c1, _, k1, g1, _), (c2, _, k2, g2, _)] = view(rows["1.jpg"], ont)
    assert (c1, k1, c2, k2) == ("label_2", "RotatableBoundingBox", "label_4", "RotatableBoundingBox")
    assert g1 == pytest.approx((1.0, 2.0, 3.0, 4.0, 30.0), abs=2e-4)
    assert g2 == pytest.approx((3.0, 2.0, 6.0, 2.0, 120.0), abs=2e-4)


@pytest.mark.parametrize(("layout", "visibility"), [("yolov8_pose", "visible"), ("yolov8_pose_two_values_per_point",
                                                                                 None)])
def test_yolo_pose_keypoints_become_the_template_vertices(layout: str, visibility: str | None,
                                                          tmp_path: Path) -> None:
    report, rows, ont = convert(tmp_path, YOLO / layout, {"skeleton_label": "skeleton"},
                                skeletons={"skeleton_label": ["a", "b", "c"]})
    assert report.ok
    assert view(rows["1.jpg"], ont) == [("skeleton_label", 0, "Skeleton", [
        ("a", 1.5, 2.0, visibility), ("b", 4.5, 4.0, visibility), ("c", 7.5, 6.0, visibility)], 1.0)]


def test_yolo_without_images_and_with_them(tmp_path: Path) -> None:
    from PIL import Image

    names = ["closed_door", "opened_door", "bus", "number"]
    report, rows, _ = convert(tmp_path / "a", YOLO / "label-studio", {n: "bounding_box" for n in names})
    assert report.ok and sorted(rows) == [f"img_{k}" for k in range(1, 8)]
    assert "yolo.no_image" in codes(report)
    # the images (not copied to the fixtures) are 640 x 329 for img_1; with them the titles and sizes are theirs
    images = tmp_path / "images"
    images.mkdir()
    for k, (ext, w, h) in enumerate([(".jpg", 640, 329), (".png", 640, 427), (".png", 1280, 720), (".png", 640, 494),
                                     (".jpg", 640, 425), (".jpeg", 1280, 720), (".jpeg", 640, 427)], start=1):
        Image.new("1", (w, h)).save(images / f"img_{k}{ext}")
    report, rows, ont = convert(tmp_path / "b", YOLO / "label-studio", {n: "bounding_box" for n in names},
                                images=str(images))
    assert report.ok and "yolo.no_image" not in codes(report) and "img_6.jpeg" in rows
    # "2 0.49765625 0.46200607902735563 0.9640625 0.8693009118541033" in 640 x 329: (10, 9, 617, 286)
    assert ("bus", 0, "BoundingBox", (10.0, 9.0, 617.0, 286.0), 1.0) in view(rows["img_1.jpg"], ont)


def test_yolo_defects_are_located(tmp_path: Path) -> None:
    seg = copy(YOLO / "yolov8_segmentation", tmp_path)
    labels = seg / "labels" / "train" / "1.txt"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([lines[0], "x 0.1 0.2", "2 0.1 0.2", lines[1] + " 0.5 0.5 0.9"]) + "\n")
    report, _, _ = convert(tmp_path / "o", seg, {n: "polygon" for n in LABELS})
    found = [(p.code, p.location.line) for p in report.problems]
    assert ("yolo.bad_line", 2) in found and ("yolo.bad_line", 3) in found  # (not a class; too few numbers)
    obb = copy(YOLO / "yolov8_oriented_boxes", tmp_path)
    labels = obb / "labels" / "train" / "1.txt"
    labels.write_text(labels.read_text().replace("0.013397 0.498205", "0.113397 0.398205"))  # (a skewed quad)
    report, _, _ = convert(tmp_path / "p", obb, {n: "rotatable_bounding_box" for n in LABELS})
    assert [(p.code, p.location.line) for p in report.problems if p.severity == "error"] == [
        ("yolo.not_a_rectangle", 1)]
    report, _, _ = convert(tmp_path / "q", YOLO / "yolov8_pose", {"skeleton_label": "skeleton"},
                           skeletons={"skeleton_label": ["a", "b"]})
    assert codes(report) == ["yolo.keypoints"]
    report, rows, ont = convert(tmp_path / "r", YOLO / "yolov8_pose", {"skeleton_label": "bounding_box"})
    assert codes(report) == ["yolo.not_carried"]  # (a pose line for a box class: its keypoints are said lost)
    assert view(rows["1.jpg"], ont)[0][2] == "BoundingBox"


def test_yolo_names_with_escaped_non_ascii(tmp_path: Path) -> None:
    d = copy(YOLO / "yolov8_detection", tmp_path)
    (d / "data.yaml").write_text((d / "data.yaml").read_text().replace("label_2", '"caf\\u00e9"'))
    report, rows, ont = convert(tmp_path / "o", d, {"café": "bounding_box", "label_4": "bounding_box"})
    assert report.ok and [v[0] for v in view(rows["1.jpg"], ont)] == ["café", "label_4"]


def test_a_yolo_directory_is_not_taken_for_kitti_and_back() -> None:
    reg = plugins.load()
    assert reg.readers["kitti"].detect(YOLO / "yolo" / "obj_train_data").score == 0
    assert reg.readers["yolo"].detect(KITTI / "kitti_detection" / "training" / "label_2").score == 0


# -- Pascal VOC -----------------------------------------------------------------------------------------------------

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor", "ignored", "label_0", "label_1"]


def test_voc_tags_by_name_and_pixel_origin(tmp_path: Path) -> None:
    # roboflow writes xmin xmax ymin ymax; train_001: xmin 2 xmax 5 ymin 1 ymax 2 on 10 x 5
    report, rows, ont = convert(tmp_path / "a", VOC / "roboflow", {n: "bounding_box" for n in VOC_CLASSES})
    assert report.ok
    assert view(rows["train_001.jpg"], ont) == [("label_0", 0, "BoundingBox", (2.0, 1.0, 3.0, 1.0), 1.0)]
    report, rows, ont = convert(tmp_path / "b", VOC / "roboflow", {n: "bounding_box" for n in VOC_CLASSES},
                                pixel_origin=1)  # (the devkit's 1-based inclusive boxes: one pixel wider)
    assert view(rows["train_001.jpg"], ont) == [("label_0", 0, "BoundingBox", (1.0, 0.0, 4.0, 2.0), 1.0)]


def test_voc_flags_parts_and_actions(tmp_path: Path) -> None:
    flags = [{"name": "truncated", "type": "radio", "options": ["yes", "no"]},
             {"name": "actions", "type": "checklist", "options": ["jumping", "phoning", "reading", "walking",
                                                                  "other", "ridinghorse", "takingphoto"]}]
    report, rows, ont = convert(tmp_path, VOC / "voc_dataset1", {n: "bounding_box" for n in [*VOC_CLASSES, "head"]},
                                attributes={"cat": flags[:1], "person": flags[1:]})
    assert report.ok
    row = rows["2007_000001.jpg"]
    assert view(row, ont) == [("cat", 0, "BoundingBox", (1.0, 2.0, 2.0, 2.0), 1.0),
                              ("head", 0, "BoundingBox", (5.5, 6.0, 2.0, 2.0), 1.0),  # (a part, sticking out)
                              ("person", 0, "BoundingBox", (4.0, 5.0, 2.0, 2.0), 1.0)]
    assert answers(row, ont) == [("cat", "truncated", ["yes"]), ("person", "actions", [
        "other", "phoning", "reading", "ridinghorse", "takingphoto", "walking"])]
    assert "voc.not_carried" in codes(report)  # (pose, difficult)
    report, _, _ = convert(tmp_path / "b", VOC / "voc_dataset1", {n: "bounding_box" for n in VOC_CLASSES})
    assert [p.location.record for p in report.problems if p.code == "voc.not_carried" and p.group == "head"] == [
        "object[2]/part[1]"]  # (a part whose class the ontology lacks: reported, counted as not converted)
    assert report.per_group()["head"] == {"converted": 0, "reported": 1}


def test_voc_without_size_and_image_is_reported_per_object(tmp_path: Path) -> None:
    report, _, _ = convert(tmp_path, VOC / "voc_dataset2", {n: "bounding_box" for n in VOC_CLASSES})
    assert sorted({(p.code, Path(p.location.file or "").name) for p in report.problems if p.severity == "error"}) == [
        ("frame.size_unknown", f"{n}.xml") for n in "abcd"]


def test_voc_bad_box(tmp_path: Path) -> None:
    d = copy(VOC / "voc_dataset3", tmp_path)
    f = d / "Annotations" / "2007_000001.xml"
    f.write_text(f.read_text().replace("<ymax>4</ymax>", "<ymax>four</ymax>"))
    report, _, _ = convert(tmp_path / "o", d, {"cat": "bounding_box"})
    assert [(p.code, p.location.record) for p in report.problems if p.severity == "error"] == [
        ("voc.bad_box", "object[1]")]



def test_detection_stops_at_a_big_xml_files_root(tmp_path: Path) -> None:
    """Detection runs every reader on every source: VOC's parsed a whole CVAT file into a tree to look at its root
    (about 100 MB for this 14 MB file); every reader now reads the first bytes, or streams to the first element."""
    import tracemalloc

    big = tmp_path / "annotations.xml"
    with big.open("w") as f:
        f.write("<annotations><version>1.1</version>")
        f.writelines(f'<image id="{i}" name="{i}.jpg" width="9" height="9"><box label="car" xtl="1" ytl="1" xbr="2" '
                     'ybr="2"/></image>' for i in range(100_000))
        f.write("</annotations>")
    registry = plugins.load()
    for reader in registry.readers.values():
        tracemalloc.start()
        try:
            reader.detect(big)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2 << 20, f"{reader.name}: {peak >> 20} MB"
    assert registry.detect(big).name == "cvat_images"


# -- KITTI ----------------------------------------------------------------------------------------------------------

def test_kitti_boxes_titles_and_fields_not_carried(tmp_path: Path) -> None:
    occluded = [{"name": "occluded", "type": "radio", "options": ["yes", "no"]}]
    report, rows, ont = convert(tmp_path, KITTI / "kitti_detection", {"Truck": "bounding_box", "Van": "bounding_box"},
                                attributes={"Van": occluded})
    assert report.ok and sorted(rows) == ["000030_10.png", "000030_11.png"]
    # "Truck 1.0 0 -1 0 1 2 3 ..." on a 10 x 10 image: (0, 1) to (2, 3)
    assert view(rows["000030_10.png"], ont) == [("Truck", 0, "BoundingBox", (0.0, 1.0, 2.0, 2.0), 1.0),
                                               ("Van", 0, "BoundingBox", (0.0, 5.0, 1.0, 3.0), 1.0)]
    assert ("Van", "occluded", ["no"]) in answers(rows["000030_10.png"], ont)
    notes = [p.message for p in report.problems if p.code == "kitti.not_carried"]
    assert any("truncated x2" in m for m in notes)


def test_kitti_dont_care_is_a_note_3d_fields_are_said(tmp_path: Path) -> None:
    report, _, _ = convert(tmp_path, KITTI / "kitti_3d", {"Truck": "bounding_box", "Car": "bounding_box"})
    assert report.per_group()["DontCare"] == {"converted": 0, "reported": 1}
    assert any("3D fields" in p.message for p in report.problems if p.code == "kitti.not_carried")


def test_kitti_bad_line_and_spaced_class_names(tmp_path: Path) -> None:
    d = copy(KITTI / "kitti_detection", tmp_path)
    f = d / "training" / "label_2" / "000030_10.txt"
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0].replace("Truck", "Traffic_light"), lines[1] + " 0.5 0.5", "Van x y"]) + "\n")
    report, rows, ont = convert(tmp_path / "o", d, {"Traffic light": "bounding_box", "Van": "bounding_box"})
    assert [(p.code, p.location.line) for p in report.problems if p.severity == "error"] == [
        ("kitti.bad_line", 2), ("kitti.bad_line", 3)]
    assert view(rows["000030_10.png"], ont)[0][0] == "Traffic light"


# -- MOT ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seq", "title"), [("mot_seq", "mot_seq"), ("mot_seq_with_seqinfo", "Test")])
def test_mot_ground_truth(seq: str, title: str, tmp_path: Path) -> None:
    # "1,-1,0,4,4,8,1,3,1.0": frame 1 -> 0, class 3 = labels.txt line 3 (label_2), 16 x 16 frames
    visibility = [{"name": "visibility", "type": "numeric"}]
    report, rows, ont = convert(tmp_path, MOT / seq, {n: "bounding_box" for n in LABELS},
                                attributes={"label_2": visibility})
    assert report.ok and list(rows) == [title]
    assert view(rows[title], ont) == [("label_2", 0, "BoundingBox", (0.0, 4.0, 4.0, 8.0), 1.0)]
    assert answers(rows[title], ont) == [("label_2", "visibility", 1.0)]


def test_mot_flagged_rows_bad_rows_and_unset_scores(tmp_path: Path) -> None:
    d = copy(MOT / "mot_seq_with_seqinfo", tmp_path)
    gt = d / "gt" / "gt.txt"
    row = gt.read_text().strip()
    gt.write_text("\n".join([row, row.replace(",1,3,", ",0,3,").replace("1,-1,", "2,-1,"), "1,2,three"]) + "\n")
    report, _, _ = convert(tmp_path / "o", d, {n: "bounding_box" for n in LABELS})
    assert [(p.code, p.location.line) for p in report.problems if p.severity == "error"] == [("mot.bad_row", 3)]
    assert report.per_group()["label_2"] == {"converted": 1, "reported": 1}  # (the flagged row: said, not lost)
    results = tmp_path / "results"
    results.mkdir()
    (results / "Test.txt").write_text("1,1,0,4,4,8,-1,-1,-1,-1\n1,2,1,4,4,8,-1,-1,-1,-1\n")  # (Test: 1 frame)
    report, rows, ont = convert(tmp_path / "r", results, {"pedestrian": "bounding_box"}, sequences=str(tmp_path))
    assert codes(report) == ["frame.size_unknown", "unit.frame_count_unknown"]  # (no sequence Test: no size)
    assert report.per_group()["pedestrian"] == {"converted": 0, "reported": 2}
    (tmp_path / "Test").symlink_to(d)
    report, rows, ont = convert(tmp_path / "s", results, {"pedestrian": "bounding_box"}, sequences=str(tmp_path))
    assert report.ok and "mot.no_scores" in codes(report)
    assert view(rows["Test"], ont) == [("pedestrian", 0, "BoundingBox", (0.0, 4.0, 4.0, 8.0), 1.0),
                                                      ("pedestrian", 0, "BoundingBox", (1.0, 4.0, 4.0, 8.0), 1.0)]


# -- LabelMe --------------------------------------------------------------------------------------------------------

def test_labelme_xml_polygons_boxes_masks_deleted_and_attributes(tmp_path: Path) -> None:
    objects = {n: "polygon" for n in ("window", "o1", "q1", "hg")} | {"license plate": "bitmask", "m1": "bitmask",
                                                                        "b1": "bounding_box"}
    flags = [{"name": "occluded", "type": "radio", "options": ["yes", "no"]},
             {"name": "a1", "type": "radio", "options": ["yes", "no"]}]
    report, rows, ont = convert(tmp_path, LABELME, objects, attributes={"o1": flags})
    assert report.ok
    got = {v[0]: v for v in view(rows["img1.png"], ont)}
    assert got["window"][3] == [[[(43.0, 34.0), (45.0, 34.0), (45.0, 37.0), (43.0, 37.0)]]]
    assert got["b1"][2:4] == ("BoundingBox", (13.0, 19.0, 10.0, 11.0))  # (a bounding_box polygon of 4 points)
    assert got["license plate"][2:4] == ("Bitmask", (10, 58, 67, 62, 68))  # (alpha > 0 of Masks/subset1/...)
    assert answers(rows["img1.png"], ont) == [("o1", "a1", ["yes"]), ("o1", "occluded", ["yes"])]
    assert any("part links x5" in p.message for p in report.problems if p.code == "labelme.not_carried")
    d = copy(LABELME, tmp_path / "c")
    f = d / "Annotations" / "subset1" / "img1.xml"
    f.write_text(f.read_text().replace("<deleted>0</deleted>", "<deleted>1</deleted>", 1)
                 .replace("<mask>img1_mask_5.png</mask>", "<mask>missing.png</mask>"))
    report, rows, ont = convert(tmp_path / "o", d, objects)
    assert report.per_group()["window"] == {"converted": 0, "reported": 1}
    assert [(p.code, p.location.record) for p in report.problems if p.severity == "error"] == [
        ("labelme.bad_shape", "object[6]")]


def test_labelme_json_circle_points_and_bad_shapes(tmp_path: Path) -> None:
    src = DATA / "written" / "labelme" / "json" / "files"
    d = copy(src, tmp_path)
    doc = json.loads((d / "a.json").read_text())
    doc["shapes"] = [
        {**doc["shapes"][0], "label": "dog", "shape_type": "circle", "points": [[100.0, 100.0], [110.0, 100.0]]},
        {**doc["shapes"][0], "label": "person", "shape_type": "points",
         "points": [[230.0, 120.0], [225.0, 115.0], [235.0, 115.0]]},
        {**doc["shapes"][0], "label": "dog", "shape_type": "rectangle", "points": [[1.0, 2.0]]},
        {**doc["shapes"][0], "label": "dog", "shape_type": "hexagon"},
        {**doc["shapes"][0], "label": "dog", "shape_type": "mask", "mask": "not base64!"},
        {**doc["shapes"][0], "label": "car", "shape_type": "polygon", "group_id": 7,
         "points": [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]},
        {**doc["shapes"][0], "label": "car", "shape_type": "polygon", "group_id": 7,
         "points": [[20.0, 0.0], [30.0, 0.0], [30.0, 10.0]]}]
    (d / "a.json").write_text(json.dumps(doc))
    report, rows, ont = convert(tmp_path / "o", d / "a.json",
                                {"dog": "polygon", "person": "skeleton", "car": "polygon"},
                                skeletons={"person": ["nose", "left_eye", "right_eye"]},
                                classifications={"Time of day": {"type": "radio", "options": ["daytime", "night"]}})
    assert [(p.code, p.location.pointer) for p in report.problems if p.severity == "error"] == [
        ("labelme.bad_shape", "/shapes/2"), ("labelme.bad_shape", "/shapes/3"), ("labelme.bad_shape", "/shapes/4")]
    assert any(p.code == "geometry.converted" and "circle" in p.message for p in report.problems)
    got = view(rows["a.png"], ont)
    circle = next(v for v in got if v[0] == "dog")[3][0][0]
    assert len(circle) == 64 and all(abs(((x - 100) ** 2 + (y - 100) ** 2) ** 0.5 - 10) < 1e-3 for x, y in circle)
    assert next(v for v in got if v[0] == "person")[3] == [
        ("nose", 230.0, 120.0, None), ("left_eye", 225.0, 115.0, None), ("right_eye", 235.0, 115.0, None)]
    assert next(v for v in got if v[0] == "car")[3] == [[[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]],
                                                        [[(20.0, 0.0), (30.0, 0.0), (30.0, 10.0)]]]  # (one group_id)
    assert classifications(rows["a.png"], ont) == [("Time of day", [(0, 0)], [("Time of day", ["daytime"])])]


# -- CVAT -----------------------------------------------------------------------------------------------------------

CVAT_ATTRS = [{"name": "a1", "type": "radio", "options": ["false", "true"]},
              {"name": "a2", "type": "radio", "options": ["v1", "v2", "v3"]}, {"name": "a3", "type": "text"},
              {"name": "a4", "type": "numeric"}]


def test_cvat_images_shapes_attributes_and_skeletons(tmp_path: Path) -> None:
    report, rows, ont = convert(tmp_path, CVAT / "cvat-ai-datumaro" / "for_images" / "train.xml",
                                {"label1": "bounding_box", "label2": "point", "skeleton": "skeleton",
                                 "": ["polyline", "polygon"]},  # (label "" names a polyline and a polygon)
                                attributes={"label1": CVAT_ATTRS}, skeletons={"skeleton": ["1", "2", "3", "4"]})
    assert report.ok, codes(report)
    img0 = view(rows["img0.jpg"], ont)
    assert img0 == [("", 0, "Polyline", [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0)], 1.0),
                    ("label1", 0, "BoundingBox", (0.0, 2.0, 4.0, 2.0), 1.0),
                    ("skeleton", 0, "Skeleton", [("1", 1.0, 1.0, "invisible"), ("2", 2.0, 2.0, "visible"),
                                                 ("3", 3.0, 3.0, "visible"), ("4", 4.0, 4.0, "visible")], 1.0)]
    # text "0003" keeps its zeros; "2.4" is a number; occluded="1" has no attribute here: said
    assert answers(rows["img0.jpg"], ont) == [("label1", "a1", ["true"]), ("label1", "a2", ["v3"]),
                                              ("label1", "a3", "0003"), ("label1", "a4", 2.4)]
    assert any("occluded x1" in p.message for p in report.problems if p.code == "cvat_images.not_carried")
    assert [v[3] for v in view(rows["img1.jpg"], ont) if v[0] == "label2"] == [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]


def test_cvat_project_export_repeats_names_across_subsets(tmp_path: Path) -> None:
    shapes = ["bounding_box", "polygon", "polyline", "point"]
    report, rows, _ = convert(tmp_path, CVAT / "datumaro" / "for_images" / "export_project",
                              {"label1": shapes, "label2": shapes, "label3": shapes},
                              attributes={"label1": CVAT_ATTRS})
    assert report.ok
    assert sorted(rows) == [f"{s}/img{k}.jpg" for s in ("Test", "Train", "Validation") for k in (0, 1)]


def test_cvat_video_tracks_outside_and_skeleton_vertices(tmp_path: Path) -> None:
    dynamic = [{"name": "hgl", "type": "radio", "options": ["jk", "hgkf"], "dynamic": True}]
    report, rows, ont = convert(tmp_path, CVAT / "cvat-ai-datumaro" / "for_video",
                                {"II": ["bounding_box", "polyline"], "klhg": "point", "skeleton": "skeleton"},
                                attributes={"klhg": dynamic}, skeletons={"skeleton": ["1", "2", "3", "4"]})
    # the skeleton's points lie outside the 25 x 20 frame: reported, and the video is not written
    assert {p.code for p in report.problems if p.severity == "error"} == {"geometry.out_of_frame"}
    assert report.per_group()["skeleton"] == {"converted": 0, "reported": 3}
    assert report.left_out == {"t.mp4": ["geometry.out_of_frame"]}  # (titled by the <source> video)
    d = copy(CVAT / "cvat-ai-datumaro" / "for_video", tmp_path / "wide")
    (d / "annotations.xml").write_text((d / "annotations.xml").read_text().replace(
        "<width>25</width>", "<width>250</width>").replace("<height>20</height>", "<height>200</height>"))
    report, rows, ont = convert(tmp_path / "b", d, {"II": ["bounding_box", "polyline"], "klhg": "point",
                                                    "skeleton": "skeleton"},
                                attributes={"klhg": dynamic}, skeletons={"skeleton": ["1", "2", "3", "4"]})
    row = rows["t.mp4"]
    got = view(row, ont)
    # the box track: frame 10 only (13 and 16 are outside); the polyline: frame 13 (16 outside)
    assert [(v[0], v[1], v[2]) for v in got if v[0] == "II"] == [("II", 10, "BoundingBox"), ("II", 13, "Polyline")]
    assert [v[1] for v in got if v[0] == "klhg"] == [10, 10, 10]  # (three points a frame: a track each)
    assert answers(row, ont).count(("klhg", "hgl", ["hgkf"], [(10, 10)])) == 3
    # the skeleton: vertex 3 leaves the view at frame 13 and stays out at 16 (not listed there)
    skel = [v for v in got if v[0] == "skeleton"]
    assert [(v[1], [p[3] for p in v[3]]) for v in skel] == [
        (10, ["visible"] * 4), (13, ["visible", "visible", "invisible", "visible"]),
        (16, ["visible", "visible", "invisible", "visible"])]


def test_cvat_defects(tmp_path: Path) -> None:
    d = copy(CVAT / "cvat-ai-datumaro" / "for_images", tmp_path)
    f = d / "train.xml"
    f.write_text(f.read_text().replace('xbr="4" xtl="0"', 'xbr="four" xtl="0"').replace(
        '<polyline label="" points="1.0,2;3,4;5,6;7,8"/>', '<cuboid label="label1" xtl1="0"/>'))
    report, _, _ = convert(tmp_path / "o", f, {"label1": "bounding_box", "label2": "point", "skeleton": "skeleton",
                                               "": "polygon"}, skeletons={"skeleton": ["1", "2", "3", "4"]})
    found = [(p.code, p.location.record) for p in report.problems if p.code.startswith("cvat_images.")]
    assert ("cvat_images.bad_shape", "/annotations/image[1]/box[1]") in found
    assert ("cvat_images.not_carried", "/annotations/image[1]/cuboid[1]") in found
    v = copy(CVAT / "cvat-ai-datumaro" / "for_video", tmp_path / "v")
    f = v / "annotations.xml"
    f.write_text(f.read_text().replace('<box frame="10"', '<box frame="ten"').replace(
        'points="21.95,8.00;2.55,15.09;2.23,3.16"', 'points="21.95"'))
    report, _, _ = convert(tmp_path / "p", v, {"II": ["bounding_box", "polyline"], "klhg": "point"})
    assert sorted((p.code, p.location.record) for p in report.problems if p.code == "cvat_video.bad_shape") == [
        ("cvat_video.bad_shape", "/annotations/track[1]/box[1]"),
        ("cvat_video.bad_shape", "/annotations/track[2]/points[1]")]


def test_cvat_tags_become_classifications(tmp_path: Path) -> None:
    report, rows, ont = convert(tmp_path, DATA / "written" / "fiftyone" / "cvat_image" / "files",
                                {"car": ["bounding_box", "polygon"], "person": ["bounding_box", "polygon"],
                                 "dog": ["bounding_box", "point"], "traffic_light": "bounding_box",
                                 "road": "polyline"},
                                classifications={"Night": {"type": "radio", "options": ["yes", "no"]}})
    assert classifications(rows["b.png"], ont) == []  # ("night" is not "Night": said, located; the rest written)
    assert [(p.code, p.location.record) for p in report.problems if p.code == "classification.unknown"] == [
        ("classification.unknown", "/annotations/image[1]/tag[1]"),
        ("classification.unknown", "/annotations/image[2]/tag[1]")]
    report, rows, ont = convert(tmp_path / "b", DATA / "written" / "fiftyone" / "cvat_image" / "files",
                                {"car": ["bounding_box", "polygon"], "person": ["bounding_box", "polygon"],
                                 "dog": ["bounding_box", "point"], "traffic_light": "bounding_box",
                                 "road": "polyline"},
                                classifications={"night": {"type": "radio", "options": ["yes", "no"]}})
    assert classifications(rows["b.png"], ont) == [("night", [(0, 0)], [("night", ["yes"])])]


# -- the core's rules, for every reader --------------------------------------------------------------------------

def test_same_name_different_shapes_picks_the_fitting_class(tmp_path: Path) -> None:
    """CVAT and LabelMe choose by the input shape; the other readers' records by their geometry."""
    report, rows, ont = convert(tmp_path, DATA / "written" / "datumaro" / "cvat" / "files",
                                {"car": ["polygon", "bounding_box", "rotatable_bounding_box"],
                                 "person": ["bounding_box", "polygon"], "dog": ["bounding_box", "point", "bitmask"],
                                 "traffic_light": "bounding_box", "road": "polyline"})
    assert report.ok, codes(report)
    kinds = sorted((v[0], v[2]) for v in view(rows["b.jpg"], ont))
    assert kinds == [("car", "BoundingBox"), ("car", "Polygon"), ("dog", "Bitmask"), ("dog", "Point"),
                     ("traffic_light", "BoundingBox")]


def test_class_map_works_for_every_reader(tmp_path: Path) -> None:
    (tmp_path / "map.yaml").write_text("label_2: Car\n4: Truck\nlabel_0: Car\nlabel_1: Truck\n")
    for k, src in enumerate([YOLO / "yolov8_detection", VOC / "roboflow", MOT / "mot_seq"]):
        report, rows, ont = convert(tmp_path / str(k), src, {"Car": "bounding_box", "Truck": "bounding_box"},
                                    class_map=str(tmp_path / "map.yaml"))
        assert report.ok, (src, codes(report))
        assert {v[0] for row in rows.values() for v in view(row, ont)} <= {"Car", "Truck"}
    report, _, _ = convert(tmp_path / "x", KITTI / "kitti_detection", {"Trucks": "bounding_box", "Van": "bounding_box"})
    assert next(p.message for p in report.problems if p.code == "class.unknown") == (
        "class 'Truck' is not an ontology object (did you mean 'Trucks'? use --class-map)")


def test_a_reader_that_cannot_carry_what_the_ontology_requires_is_warned(tmp_path: Path) -> None:
    report, _, _ = convert(tmp_path, YOLO / "yolov8_detection", {n: "bounding_box" for n in LABELS},
                           attributes={"label_2": [{"name": "colour", "type": "text", "required": True}]},
                           classifications={"Weather": {"type": "radio", "options": ["sun"], "required": True}})
    warned = [p.message for p in report.problems if p.code == "reader.cannot_carry"]
    assert len(warned) == 2 and "'colour' of 'label_2'" in warned[0] and "'Weather'" in warned[1]
    report, _, _ = convert(tmp_path / "b", YOLO / "yolov8_detection", {n: "bitmask" for n in LABELS})
    assert any("no object class of the ontology has a shape" in p.message for p in report.problems)


def test_formats_shows_what_each_reader_carries(capsys: pytest.CaptureFixture[str]) -> None:
    from predport.cli import main

    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("yolo", "voc", "kitti", "mot", "labelme", "cvat_images", "cvat_video"):
        assert name in out
    assert "carries: bounding_box; confidence, attributes, tracks" in out  # (mot)


def test_readers_are_plugins_like_any_other() -> None:
    listed = plugins.read_plugins_file(plugins.builtin_plugins_file())
    assert {"yolo", "voc", "kitti", "mot", "labelme", "cvat_images", "cvat_video"} <= set(listed)
    assert all(v.startswith("predport.converters.") for v in listed.values())
    assert isinstance(predport.Capabilities(frozenset({"point"})), predport.Capabilities)


def test_mot_detections_carry_their_confidence(tmp_path: Path) -> None:
    d = copy(MOT / "mot_seq_with_seqinfo", tmp_path)
    (d / "det").mkdir()
    row = (d / "gt" / "gt.txt").read_text().strip()  # 1,-1,0,4,4,8,1,3,1.0: column 7 as a detector's score
    (d / "det" / "det.txt").write_text(row.replace(",1,3,", ",0.8125,3,") + "\n")
    (d / "gt" / "gt.txt").unlink()
    report, rows, ont = convert(tmp_path / "o", d, {"pedestrian": "bounding_box"})
    assert report.ok and view(rows["Test"], ont) == [("pedestrian", 0, "BoundingBox", (0.0, 4.0, 4.0, 8.0), 0.8125)]


def test_yolo_files_of_many_boxes_convert_as_line_by_line(tmp_path: Path) -> None:
    """Files of 16 lines or more take a column-at-a-time path: the same boxes, confidences and reported lines as
    the same lines one file each (line by line), boxes off the frame's edge by the printed precision included."""
    src = DATA / "written" / "ultralytics" / "detect" / "files"
    clean = [x for f in sorted((src / "labels").glob("*.txt")) for x in f.read_text().splitlines()] * 6
    clean.append("0 0.05 0.5 0.1000004 0.2 0.5")  # (0.05 - 0.0500002 < 0: on the edge, by 6 decimals)
    objects = {n: "bounding_box" for n in ("car", "person", "dog", "traffic_light", "road")}

    def both(lines: list[str], name: str) -> tuple[Any, Any, Any, Any, Any]:
        many, one = tmp_path / name / "many", tmp_path / name / "one"
        for d in (many, one):
            (d / "images").mkdir(parents=True)
            (d / "labels").mkdir()
            (d / "data.yaml").write_text((src / "data.yaml").read_text())
        (many / "labels" / "a.txt").write_text("\n".join(lines) + "\n")
        shutil.copy(src / "images" / "a.png", many / "images" / "a.png")
        for k, line in enumerate(lines):
            (one / "labels" / f"a{k:02d}.txt").write_text(line + "\n")
            shutil.copy(src / "images" / "a.png", one / "images" / f"a{k:02d}.png")
        r1, rows1, ont = convert(tmp_path / name / "o1", many, objects)
        r2, rows2, _ = convert(tmp_path / name / "o2", one, objects)
        return r1, rows1, r2, rows2, ont

    r1, rows1, r2, rows2, ont = both(clean, "clean")
    assert r1.ok and r2.ok and len(rows2) == len(clean) == 31
    assert sorted(v[1:] for v in view(rows1["a.png"], ont)) == sorted(
        v[1:] for row in rows2.values() for v in view(row, ont))
    r1, _, r2, _, _ = both([*clean, "1 0.2 0.3 0.1 0.1 nan", "2 1.2 0.5 0.2 0.2 0.3", "x 1 2 3 4 5"], "broken")
    assert sorted(p.code for p in r1.problems) == sorted(p.code for p in r2.problems) == [
        "confidence.out_of_range", "geometry.out_of_frame", "yolo.bad_line"]
    assert r1.per_group() == r2.per_group()


_SPELLINGS = ["0", "1", "2", "-0", "-0.0", "0.0", "0.5", ".5", "5.", "1e-05", "1E5", "+0.5", "-0.25", "00.5", "nan",
              "inf", "1e400", "18446744073709551616", "0.30000000000000004", "true", "0x10", "1_0", "x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_SPELLINGS), max_size=6), max_size=6),
       st.sampled_from([" ", "  ", "\t", " \t"]), st.sampled_from(["\n", "\r\n", "\r", "\x0c"]),
       st.booleans(), st.sampled_from(["", " ", "\n", "\n\n"]))
def test_yolo_numeric_lines_read_what_the_tokens_say(lines: list[list[str]], sep: str, newline: str, bom: bool,
                                                     tail: str) -> None:
    """A label file parsed as one JSON document (the fast path) gives each line's numbers exactly as ``float`` reads
    its tokens, the sign of a zero included, on the same lines as ``str.splitlines``; or None, for the token path."""
    text = newline.join(sep.join(t) for t in lines) + tail
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    found = yolo.numeric_lines(data)
    plain = sep == " " and newline in ("\n", "\r\n") and not any(
        t in ("-0", ".5", "5.", "+0.5", "00.5", "nan", "inf", "1e400", "true", "0x10", "1_0", "x") for line in lines
        for t in line)
    if found is None:
        assert not plain or not lines  # (every plain file is taken)
        return
    want = [[float(t) for t in line.split()] for line in text.splitlines()]
    while want and not want[-1]:
        want.pop()
    got = [[float(v) for v in line] for line in found]
    while got and not got[-1]:
        got.pop()
    assert [[repr(v) for v in line] for line in got] == [[repr(v) for v in line] for line in want]


def _timeless(x: Any) -> Any:
    """Label rows without their timestamps (two runs' rows compared)."""
    if isinstance(x, dict):
        return {k: _timeless(v) for k, v in x.items() if k not in ("created_at", "last_edited_at", "createdAt",
                                                                   "lastEditedAt")}
    return [_timeless(v) for v in x] if isinstance(x, list) else x


def test_yolo_files_read_as_numbers_or_as_tokens_convert_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """The same label files through the JSON parse and through the token path (numeric_lines turned off): the same
    label rows and the same located problems, for files each path takes and files only the token path takes."""
    src = DATA / "written" / "ultralytics" / "detect" / "files"
    clean = [x for f in sorted((src / "labels").glob("*.txt")) for x in f.read_text().splitlines()] * 6
    files = {
        "plain": "\n".join(clean) + "\n",
        "crlf_bom": "\ufeff" + "\r\n".join(clean) + "\r\n",
        "gaps": "\n\n".join([*clean, "1 0.2 0.3 0.1 0.1 1.5"]) + "\n\n",
        "leading_gap": "\n" + "\n".join(clean),
        "off_frame": "\n".join([*clean, "2 1.2 0.5 0.2 0.2 0.3", "1 0.2 0.3 0.1 0.1 1.5"]),
        "neg_zero": "\n".join([*clean, "1 0.2 0.3 0.1 0.1 -0"]),
        "tabs": "\n".join(line.replace(" ", "\t") for line in clean),
        "mixed": "\n".join([*clean, "0 0.5 0.5 0.1", "x 1 2 3 4", "1 0.2 0.3 0.1 0.1 nan"]),
        "short": "\n".join(clean[:3]),
    }
    d = tmp_path / "d"
    (d / "images").mkdir(parents=True)
    (d / "labels").mkdir()
    (d / "data.yaml").write_text((src / "data.yaml").read_text())
    for name, text in files.items():
        (d / "labels" / f"{name}.txt").write_bytes(text.encode())
        shutil.copy(src / "images" / "a.png", d / "images" / f"{name}.png")
    taken = {n for n, t in files.items() if yolo.numeric_lines(t.encode()) is not None}
    assert taken == {"plain", "crlf_bom", "gaps", "leading_gap", "off_frame", "short"}
    objects = {n: "bounding_box" for n in ("car", "person", "dog", "traffic_light", "road")}
    r1, rows1, _ = convert(tmp_path / "fast", d, objects)
    monkeypatch.setattr(yolo, "numeric_lines", lambda data: None)
    r2, rows2, _ = convert(tmp_path / "tokens", d, objects)
    assert rows1.keys() == rows2.keys() >= {f"{n}.png" for n in ("plain", "crlf_bom", "leading_gap", "tabs", "short")}
    assert _timeless(rows1) == _timeless(rows2)
    located = [(p.code, p.severity, p.location.file, p.location.line) for p in r1.problems]
    assert located == [(p.code, p.severity, p.location.file, p.location.line) for p in r2.problems]
    assert {c for c, *_ in located} == {"confidence.out_of_range", "geometry.out_of_frame", "yolo.bad_line"}
    assert r1.per_group() == r2.per_group()


def _together_and_one_by_one(tmp: Path, d: Path, **options: Any) -> tuple[Any, Any, Any, Any, int]:
    """A YOLO folder converted with its files together (yolo.BATCH as it is) and one by one (BATCH = 1): (report,
    rows) of each, and how many files went into shared tables (in this process). Dog is a polygon class."""
    from unittest import mock

    objects = {"car": "bounding_box", "person": "bounding_box", "dog": "polygon", "traffic_light": "bounding_box",
               "road": "bounding_box"}
    shared: list[int] = []
    made = yolo._Lines._shared

    def spy(self: Any, batch: list[Any]) -> dict[int, Any]:
        found = made(self, batch)
        shared.append(len(found))
        return found

    with mock.patch.object(yolo._Lines, "_shared", spy):
        r1, rows1, _ = convert(tmp / "together", d, objects, **options)
    with mock.patch.object(yolo, "BATCH", 1):
        r2, rows2, _ = convert(tmp / "one", d, objects, **options)
    return r1, rows1, r2, rows2, sum(shared)


@pytest.mark.parametrize("options", [{}, {"min_confidence": 0.5, "top_k": 3}, {"workers": 2},
                                     {"confidence_column": "first"}], ids=["plain", "filters", "workers", "conf-first"])
def test_yolo_files_converted_together_convert_as_one_by_one(tmp_path: Path, options: dict[str, Any]) -> None:
    """Label files converted together (their detect lines one shared box table, BATCH files at a time) and one by
    one (BATCH = 1: each file's own table, line by line where needed): the same label rows, the same located
    problems in the same order, the same counts; files whose lines are not all plain boxes of box classes inside
    the frame go one by one in both. The shared table is used (most files), and rows of it that validation
    refuses (a confidence above 1, a zero width) are located in their own file and line."""
    import random

    rnd = random.Random(7)

    def box(c: int, conf: bool) -> str:
        w, h = rnd.randint(1, 400) / 1000, rnd.randint(1, 400) / 1000
        cx, cy = rnd.randint(int(w * 500) + 1, 1000 - int(w * 500) - 1) / 1000, \
            rnd.randint(int(h * 500) + 1, 1000 - int(h * 500) - 1) / 1000
        score = f" {rnd.randint(1, 999) / 1000}" if conf else ""
        return f"{c} {cx} {cy} {w} {h}{score}" if options.get("confidence_column") != "first" or not conf else \
            f"{c}{score} {cx} {cy} {w} {h}"

    def lines(n: int, conf: bool, classes: tuple[int, ...] = (0, 1, 3, 4)) -> list[str]:
        return [box(rnd.choice(classes), conf) for _ in range(n)]

    files = {f"clean{k}": lines(20 + k, k % 2 == 0) for k in range(8)}
    files |= {
        "dogs": lines(18, True, (0, 2)),  # (dog is a polygon class: line by line, reported)
        "unknown": [*lines(17, True), box(9, True)],
        "off_frame": [*lines(17, True), "1 0.95 0.5 0.2 0.2 0.5"],
        "nan": [*lines(17, True), "1 0.5 0.5 0.2 0.2 nan"],
        "conf_above_1": [*lines(8, True), "", *lines(8, True), box(1, False) + " 1.5"],  # (line 18)
        "zero_width": [*lines(16, True), "3 0.5 0.5 0 0.2 0.4"],
        "short": lines(5, True),
        "tracks": [line + " 7" for line in lines(16, True)],
        "five_and_six": [*lines(10, True), *lines(10, False)],
        "empty": [],
    }
    if options.get("confidence_column") == "first":
        files = {k: v for k, v in files.items() if k not in ("conf_above_1", "zero_width", "off_frame", "nan")}
    d = tmp_path / "d"
    (d / "images").mkdir(parents=True)
    (d / "labels").mkdir()
    (d / "data.yaml").write_text('names: ["car", "person", "dog", "traffic_light", "road"]\n')
    png = DATA / "written" / "ultralytics" / "detect" / "files" / "images" / "a.png"
    for name, text in files.items():
        (d / "labels" / f"{name}.txt").write_text("\n".join(text) + "\n")
        shutil.copy(png, d / "images" / f"{name}.png")
    r1, rows1, r2, rows2, shared = _together_and_one_by_one(tmp_path, d, **options)
    if options.get("workers") != 2:  # (forked processes' calls are not seen here)
        assert shared >= 7  # (the clean files but the first, which the run reads before the others)
    assert rows1.keys() == rows2.keys() and len(rows1) >= 10 and r1.left_out == r2.left_out
    assert _timeless(rows1) == _timeless(rows2)
    located = [(p.code, p.severity, p.location.file, p.location.line, p.message) for p in r1.problems]
    assert located == [(p.code, p.severity, p.location.file, p.location.line, p.message) for p in r2.problems]
    assert r1.per_group() == r2.per_group() and r1.objects == r2.objects and r1.units == r2.units
    where = {(c, Path(f).name, line) for c, _, f, line, _ in located}
    if "conf_above_1" in files and "top_k" not in options:  # (the filters leave those rows out)
        assert ("confidence.out_of_range", "conf_above_1.txt", 18) in where
        assert any(c.startswith("geometry") and f == "zero_width.txt" and line == 17 for c, f, line in where)


_YOLO_VALUES = st.one_of(st.integers(0, 1000).map(lambda v: v / 1000), st.sampled_from([0.0, 1.0, 1.2, -0.1, 1e-7]))


@st.composite
def _yolo_files(draw: st.DrawFn) -> list[list[str]]:
    """A few label files of 16 lines or more: detect lines inside the frame (some with a confidence above 1) and
    blank ones, and in about half the files also lines off the frame, of a class that is a polygon or unknown, with
    a NaN, or of another width."""
    files = []
    for _ in range(draw(st.integers(2, 4))):
        width = draw(st.sampled_from([4, 5]))
        clean = draw(st.booleans())  # (a file whose lines all make boxes: the shared table's)
        lines = []
        for _ in range(draw(st.integers(16, 20))):
            kind = draw(st.sampled_from(["box"] * 8 + ["blank"] + (
                [] if clean else ["values", "class", "nan", "width"])))
            c = draw(st.sampled_from([2, 9] if kind == "class" else [0, 1, 3]))
            w, h = draw(st.integers(1, 300)) / 1000, draw(st.integers(1, 300)) / 1000
            numbers = [draw(st.integers(200, 800)) / 1000, draw(st.integers(200, 800)) / 1000, w, h] \
                if kind != "values" else [draw(_YOLO_VALUES) for _ in range(4)]
            score = draw(st.integers(0, 1050))  # (now and then above 1: a row validation refuses, located by line)
            numbers += [score / 1000 if score <= 1000 else 1.5] * (width - 4 + (kind == "width"))
            line = " ".join([str(c), *(repr(v) for v in numbers)])
            lines.append("" if kind == "blank" else line.replace(repr(numbers[0]), "nan", 1) if kind == "nan"
                         else line)
        files.append(lines)
    return files


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")) // 4, deadline=None)
@given(files=_yolo_files())
def test_any_yolo_files_converted_together_convert_as_one_by_one(files: list[list[str]]) -> None:
    """Label files of any mix of lines, converted together (a shared box table for those whose lines all make boxes
    inside the frame) and one by one: the same label rows, the same located problems in the same order, the same
    counts."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "d"
        (d / "labels").mkdir(parents=True)
        (d / "data.yaml").write_text('names: ["car", "person", "dog", "traffic_light", "road"]\n')
        for k, lines in enumerate(files):
            (d / "labels" / f"f{k}.txt").write_text("\n".join(lines) + "\n")
        r1, rows1, r2, rows2, shared = _together_and_one_by_one(Path(tmp), d)
        event(f"files in a shared table: {min(shared, 2)}+")
    assert _timeless(rows1) == _timeless(rows2) and r1.left_out == r2.left_out
    assert [(p.code, p.location.file, p.location.line, p.message) for p in r1.problems] == \
        [(p.code, p.location.file, p.location.line, p.message) for p in r2.problems]
    assert r1.per_group() == r2.per_group() and r1.objects == r2.objects


def test_image_sizes_are_pillows_for_every_test_image(tmp_path: Path) -> None:
    """imagesize reads the headers first, Pillow the rest: the same (width, height) as Pillow for every image the
    tests hold (as stored, before EXIF rotation), and None for what is no image or a header cut short."""
    from PIL import Image

    from predport.core import images

    found = [p for p in sorted(DATA.rglob("*")) if p.suffix in images.EXTENSIONS and p.is_file()]
    assert len(found) >= 100 and {p.suffix.lower() for p in found} >= {".jpg", ".png"}
    for p in found:
        with Image.open(p) as im:
            assert images.size(p) == im.size, p
    rotated = Image.new("RGB", (40, 30))
    exif = Image.Exif()
    exif[274] = 6  # (orientation: rotate 90 degrees to display)
    rotated.save(tmp_path / "rotated.jpg", exif=exif)
    assert images.size(tmp_path / "rotated.jpg") == (40, 30)
    png = found[[p.suffix for p in found].index(".png")].read_bytes()
    for name, data in (("cut.png", png[:20]), ("text.png", b"not an image at all"), ("empty.jpg", b"")):
        (tmp_path / name).write_bytes(data)
        assert images.size(tmp_path / name) is None, name


def test_files_under_lists_as_sorted_rglob_does_and_stops_at_the_limit(tmp_path: Path) -> None:
    """Readers' directory walks (detection looks at a few files): the files of ``sorted(rglob)``, in its order (a
    folder's files before a sibling whose name it begins), never a folder, never through a symlinked folder."""
    for name in ("a/x.json", "a.json", "a-b.json", "b/c/d.json", "b/c.json", "B.json", "a/x.json.d/y.json",
                 "z.txt", "dir.json/q.json", ".json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "b", target_is_directory=True)
    want = sorted(p for p in tmp_path.rglob("*.json") if p.is_file())
    assert predport.files_under(tmp_path, lambda n: n.endswith(".json")) == want
    assert len(want) == 9 and tmp_path / "link" / "c.json" not in want  # (rglob does not follow it either)
    assert predport.files_under(tmp_path, lambda n: n.endswith(".json"), 3) == want[:3]
    assert predport.files_under(tmp_path / "missing", lambda n: True) == []


def test_a_folder_that_cannot_be_listed_is_told_in_a_read_and_not_in_detection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing goes missing without a word: ``files_under`` and ``listing`` give a folder the system will not list
    to ``unlisted`` (in a read, the reader's context reports it), and go on with the others; outside a read
    (detection) they say nothing and do not raise."""
    from predport.testing import _unlistable

    for name in ("a/x.json", "b/y.json", "b/z.json", "c.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    told: list[tuple[Path, int | None]] = []
    with monkeypatch.context() as m:
        _unlistable(m, tmp_path / "b")
        found = predport.files_under(tmp_path, lambda n: n.endswith(".json"),
                                     unlisted=lambda f, e: told.append((f, e.errno)))
        assert found == [tmp_path / "a" / "x.json", tmp_path / "c.json"]
        assert predport.listing(tmp_path / "b", unlisted=lambda f, e: told.append((f, e.errno))) == []
        assert predport.files_under(tmp_path, lambda n: True) == found  # (no reader reading: nothing to tell)
    assert told == [(tmp_path / "b", 13), (tmp_path / "b", 13)]


def test_a_coco_dataset_whose_annotations_folder_cannot_be_listed_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The COCO reader's dataset directory (annotations/*.json): an annotations folder the system will not list is
    a located error, not an empty conversion."""
    from predport.testing import _unlistable

    (tmp_path / "ds" / "annotations").mkdir(parents=True)
    shutil.copy(DATA / "coco" / "datumaro_instances_val.json", tmp_path / "ds" / "annotations" / "instances.json")
    names = {c["name"]: "bounding_box" for c in
             json.loads((DATA / "coco" / "datumaro_instances_val.json").read_text())["categories"]}
    report, rows, _ = convert(tmp_path / "all", tmp_path / "ds", names, fmt="coco")
    assert rows and not [p for p in report.problems if p.code == "source.unreadable"]
    with monkeypatch.context() as m:
        _unlistable(m, tmp_path / "ds" / "annotations")
        report, rows, _ = convert(tmp_path / "blocked", tmp_path / "ds", names, fmt="coco")
    told = [p for p in report.problems if p.code == "source.unreadable"]
    assert [p.location.file for p in told] == [str(tmp_path / "ds" / "annotations")]
    assert told[0].severity == "error" and "Permission denied" in told[0].message
