"""The real Encord SDK as the oracle: parse label rows into LabelRowV2 and reduce them to what must survive a
conversion (classes, instance ids, frames, geometry, confidences, answers, classification ranges)."""

from __future__ import annotations

import copy
import math
from datetime import datetime
from typing import Any

from encord.objects import LabelRowV2, OntologyStructure
from encord.ontology import Ontology
from encord.orm.ontology import Ontology as OrmOntology
from encord.orm.storage import CustomerProvidedImageMetadata, CustomerProvidedVideoMetadata


def sdk_ontology(structure: dict[str, Any]) -> Ontology:
    if "objects" not in structure and "editor" in structure:
        structure = structure["editor"]
    s = OntologyStructure.from_dict(structure)
    orm = OrmOntology(title="t", structure=s, ontology_hash="00000000-0000-0000-0000-000000000000",
                      created_at=datetime(2024, 1, 1), last_edited_at=datetime(2024, 1, 1))
    return Ontology(orm, api_client=None)


def parse(row: dict[str, Any], ontology: Ontology, media_from: dict[str, Any] | None = None) -> LabelRowV2:
    """Parse a label-row dict with the SDK, into a detached row built from the media sizes of the row itself
    (or of ``media_from``)."""
    row = copy.deepcopy(row)
    row.setdefault("branch_name", "main")
    dus = sorted((media_from or row)["data_units"].values(), key=lambda u: int(u.get("data_sequence", 0)))
    if row["data_type"] == "video":
        u = dus[0]
        fps, duration = u.get("data_fps"), u.get("data_duration")
        if not fps or not duration:  # (a video of unknown length: as long as its labels)
            fps, duration = 1.0, max([int(f) + 1 for f in row["data_units"][u["data_hash"]]["labels"]] or [1])
        media: Any = CustomerProvidedVideoMetadata(
            fps=fps, duration=duration, width=u["width"], height=u["height"], file_size=1, mime_type="video/mp4")
    elif row["data_type"] == "image":
        media = CustomerProvidedImageMetadata(mime_type="image/jpeg", file_size=1, width=dus[0]["width"],
                                              height=dus[0]["height"])
    else:
        media = [CustomerProvidedImageMetadata(mime_type="image/png", file_size=1, width=u["width"],
                                               height=u["height"]) for u in dus]
    lr = LabelRowV2.from_media_metadata(ontology, media)
    lr.from_labels_dict(row)
    return lr


def _answer_value(ans: Any) -> Any:
    if isinstance(ans, list):
        return sorted(a["featureHash"] for a in ans)
    return ans


def canonical(lr: LabelRowV2) -> dict[str, Any]:
    """What a conversion must preserve, from the SDK's own serialisation of a parsed row. Excluded: the
    known SDK round-trip losses (answer-level manualAnnotation, order of dynamic actions) and bookkeeping
    (timestamps, authors, review data)."""
    d = lr.to_encord_dict()
    frames: dict[tuple[int, str], Any] = {}
    for du in d["data_units"].values():
        labels = du["labels"]
        if d["data_type"] == "video":
            per_frame = [(int(k), v) for k, v in labels.items()]
        else:
            per_frame = [(int(du.get("data_sequence", 0)), labels)]
        for f, lab in per_frame:
            for o in lab.get("objects", []):
                geo = {k: o[k] for k in ("boundingBox", "rotatableBoundingBox", "polygons", "polyline", "point",
                                          "bitmask", "skeleton") if k in o}
                for v in geo.get("skeleton", {}).values():  # vertex colour / value are display data
                    v.pop("color", None)
                    v.pop("value", None)
                frames[(f, o["objectHash"])] = (o["featureHash"], geo, o["confidence"])
    static = {h: sorted((a["featureHash"], repr(_answer_value(a["answers"]))) for a in v["classifications"])
              for h, v in d["object_answers"].items()}
    dynamic = {h: sorted((a["featureHash"], repr(_answer_value(a["answers"])), repr(sorted(map(tuple, a["range"]))))
                         for a in v["actions"]) for h, v in d["object_actions"].items()}
    classifications = {
        h: (v["featureHash"], sorted(map(tuple, v["range"])), v["confidence"],
            sorted((a["featureHash"], repr(_answer_value(a["answers"]))) for a in v["classifications"]))
        for h, v in d["classification_answers"].items()}
    return {"frames": frames, "static": static, "dynamic": dynamic, "classifications": classifications}


def assert_close(a: Any, b: Any, path: str = "", tol: float = 1e-9) -> None:
    """Deep equality with floats compared within ``tol``."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        for k in a:
            assert_close(a[k], b[k], f"{path}/{k}", tol)
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}/{i}", tol)
    elif isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        assert math.isclose(a, b, rel_tol=0, abs_tol=tol), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
