from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(Path(__file__).parent))

#: every problem code emitted in this test session (in this process; worker reports are merged into it)
EMITTED: Counter[str] = Counter()


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(autouse=True, scope="session")
def _column_paths_on_small_files() -> Any:
    """In this process, the COCO reader's column paths take small files too (outside, they start at
    COLUMNS_FROM annotations unless numpy is loaded): what a test sees does not depend on which tests ran
    first and imported numpy. Runs in subprocesses keep the threshold (test_coco checks both give the same)."""
    from predport.converters import coco

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(coco, "COLUMNS_FROM", 0)
        yield


def coco_ontology(path: Path, categories: list[dict[str, Any]], shape: str | Callable[[int], str] = "bounding_box",
                  keypoints: list[str] | None = None) -> Path:
    """An ontology with one object per COCO category (feature hash ``c`` + the category id), of one shape or of
    ``shape(category id)``; with ``keypoints``, a skeleton template of them for each skeleton object."""
    objects = [{"id": str(c["id"]), "name": c["name"], "color": "#000000",
                "shape": shape(c["id"]) if callable(shape) else shape, "featureNodeHash": f"c{c['id']:07d}"}
               for c in categories]
    data: dict[str, Any] = {"objects": objects, "classifications": []}
    if keypoints:
        data["skeleton_templates"] = [{"template": {
            "name": f"{o['name']} pose", "shape": "skeleton", "width": 100.0, "height": 100.0,
            "feature_node_hash": o["featureNodeHash"], "skeletonEdges": {},
            "skeleton": {str(k): {"x": 0.0, "y": 0.0, "name": n, "color": "#000000", "value": n,
                                  "featureHash": f"kp{k:02d}"} for k, n in enumerate(keypoints)}}}
            for o in objects if o["shape"] == "skeleton"]
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="session")
def example_ontology_path() -> Path:
    return DATA / "encord" / "reference" / "ontology.json"


@pytest.fixture(autouse=True, scope="session")
def _record_emitted_codes() -> Any:
    """Count every problem any test makes (the audit in test_codes.py checks them against the declarations)."""
    from predport.core.problems import Problems

    original = Problems.append

    def append(self: Problems, problem: Any) -> None:
        EMITTED[problem.code] += 1
        original(self, problem)

    Problems.append = append  # type: ignore[method-assign]
    yield
    Problems.append = original  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "audit: runs after every other test (it checks what they did)")
    config.full_run = True  # type: ignore[attr-defined]  # until some test is deselected or files are picked


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        items[0].config.full_run = False  # type: ignore[attr-defined]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    files = {Path(str(item.fspath)).name for item in items}
    if files != {p.name for p in Path(__file__).parent.glob("test_*.py")}:
        config.full_run = False  # type: ignore[attr-defined]
    items.sort(key=lambda item: item.get_closest_marker("audit") is not None)  # (stable: the rest keep their order)


# -- the output tests' inputs (tests/test_output.py, tests/test_onefile.py) ------------------------------------

@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("inputs")
    gt = json.loads((DATA / "coco" / "instances_val2014_100.json").read_text())
    ont = coco_ontology(base / "ont.json", gt["categories"])
    old = base / "old.json"  # the earlier output's input: the first 20 images only
    ids = {im["id"] for im in gt["images"][:20]}
    old.write_text(json.dumps({**gt, "images": gt["images"][:20],
                               "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}))
    return {"ontology": ont, "old": old, "new": DATA / "coco" / "instances_val2014_fakebbox100_results.json",
            "images": DATA / "coco" / "instances_val2014_100.json"}


@pytest.fixture(scope="module")
def expected(inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str] | None]:
    """The complete outputs of the old and the new input, from undisturbed runs."""
    import output_kit
    from predport.cli import main

    base = tmp_path_factory.mktemp("expected")
    out = {}
    for which in ("old", "new"):
        assert main(output_kit.convert_args(inputs, which, base / which)) == 0
        out[which] = output_kit.snapshot(base / which)
    return out
