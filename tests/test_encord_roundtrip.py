"""Every Encord label row we ship survives read -> validate -> write -> SDK parse unchanged: the same classes,
instance ids, frames, geometry (1e-9), confidences, answers and classification ranges as the SDK's own parse
of the input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import predport
from conftest import DATA, load
from sdk_oracle import assert_close, canonical, parse, sdk_ontology

REF = DATA / "encord" / "reference"
CLIENT = DATA / "encord" / "client"

CASES = [(p, REF / "ontology.json") for p in sorted(REF.glob("*.json")) if p.name != "ontology.json"] + [
    (CLIENT / f"{labels}.labels.json", CLIENT / f"{ontology}.ontology.json") for labels, ontology in [
        ("data_1", "data_1"),
        ("native_image_data", "all_ontology_types"),
        ("native_image_data_classification_with_no_answer", "all_ontology_types"),
        ("image_group", "image_group"),
        ("image_group_with_reviews", "all_ontology_types"),
        ("skeleton_coordinates", "skeleton_coordinates"),
        ("video_with_dynamic_classifications", "ontology_with_many_dynamic_classifications"),
        ("video_with_dynamic_classifications_ui_constructed", "ontology_with_many_dynamic_classifications"),
        ("empty_image_group", "empty_image_group"),
        ("empty_video", "all_ontology_types"),
        ("video_with_classifications", "all_ontology_types"),
        ("label_row_blurb", "ontology_blurb"),
        ("exporter_labels_list", "exporter"),
    ]]
SUPPORTED = {"image", "img_group", "video"}


def _rows(path: Path) -> list[dict]:
    data = load(path)
    return data if isinstance(data, list) else [data]


@pytest.mark.parametrize(("labels", "ontology"), CASES, ids=[c[0].stem for c in CASES])
def test_round_trip_through_the_sdk(labels: Path, ontology: Path, tmp_path: Path) -> None:
    sdk_ont = sdk_ontology(load(ontology))
    rows = _rows(labels)
    out = tmp_path / "out"
    report = predport.convert([labels], ontology, "preds-v1", out, fmt="encord")
    unsupported = [r for r in rows if r["data_type"] not in SUPPORTED]
    errors = [p for p in report.problems if p.severity == "error"]
    # only unsupported data types are errors, one per such row, located at its data_type
    assert [p.code for p in errors] == ["source.unsupported"] * len(unsupported), [str(p) for p in errors]
    supported_only = tmp_path / "supported.json"
    if unsupported:
        assert not out.exists()  # all or nothing
        # the supported rows of that file must still round-trip on their own
        supported_only.write_text(json.dumps([r for r in rows if r["data_type"] in SUPPORTED]))
        report = predport.convert([supported_only], ontology, "preds-v1", out, fmt="encord")
        assert report.ok, [str(p) for p in report.problems]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["branch"] == "preds-v1"
    supported = [r for r in rows if r["data_type"] in SUPPORTED]
    assert len(manifest["units"]) == len(supported)
    files = {u["title"]: u["file"] for u in manifest["units"]}
    source = supported_only if unsupported else labels
    titles = [u["title"] for u in predport.read([source], ontology, fmt="encord")]  # input order
    for row, title in zip(supported, titles, strict=True):
        entry = {"title": title, "file": files[title]}
        written = json.loads((out / entry["file"]).read_text())
        assert written["branch_name"] == "preds-v1"
        assert written["data_title"] == entry["title"]
        expected = canonical(parse(row, sdk_ont))
        got = canonical(parse(written, sdk_ont))
        # older rows carry classification answers without "range": the SDK drops those silently, predport
        # recovers their frames from the frame listings. Everything the SDK keeps must match exactly.
        recovered = {h for h, c in row["classification_answers"].items() if "range" not in c}
        extra = set(got["classifications"]) - set(expected["classifications"])
        assert extra <= recovered
        got["classifications"] = {h: v for h, v in got["classifications"].items() if h not in extra}
        assert_close(got, expected)
        # every predicted frame entry is marked as a model prediction
        for du in written["data_units"].values():
            labs = du["labels"]
            frames = labs.values() if written["data_type"] == "video" else [labs]
            for lab in frames:
                assert all(o["manualAnnotation"] is False for o in lab["objects"])
