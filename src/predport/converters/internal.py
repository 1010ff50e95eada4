"""Reader ``predport``: data units already in predport's internal schema, as a JSON list or as JSON lines.

Useful for models and scripts that emit the internal schema directly, and for checking a plugin's output.
Every object, frame, answer and classification without a ``source`` gets one pointing into this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import predport
from predport.core import jsonio
from predport.core.model import DataUnit
from predport.core.ontology import OBJECT_SHAPES
from predport.core.problems import Location


class InternalReader(predport.BaseReader):
    name = "predport"
    description = "predport's internal schema: a JSON list of data units, or one data unit per line (.jsonl)"
    capabilities = predport.Capabilities(OBJECT_SHAPES, confidence=True, attributes=True, tracks=True,
                                         classifications=True)

    def detect(self, path: Path) -> predport.Detection:
        if path.is_dir():
            return predport.Detection(0, "a directory")
        try:
            head = predport.file_head(path, 4096)
        except OSError as e:
            return predport.Detection(0, f"cannot read: {e}")
        if b'"kind"' in head and b'"objects"' in head and b'"title"' in head and b'"data_units"' not in head:
            return predport.Detection(0.9, "has data-unit keys (title, kind, objects)")
        return predport.Detection(0, "no data-unit keys (title, kind, objects) in the first 4 KB")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[DataUnit]:
        name = str(path)
        if path.suffix == ".jsonl":
            with path.open("rb") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        unit = jsonio.loads(line)
                    except ValueError as e:
                        ctx.report("source.unreadable", f"invalid JSON: {e}", Location(name, line=n))
                        continue
                    yield _annotate(unit, {"file": name, "line": n}, "")
            return
        ok, data = ctx.load_json(path)
        if not ok:
            return
        for i, unit in enumerate(data if isinstance(data, list) else [data]):
            base = f"/{i}" if isinstance(data, list) else ""
            yield _annotate(unit, {"file": name}, base)


def _annotate(unit: Any, src: dict[str, Any], base: str) -> Any:
    """Give every record a source: a pointer into a JSON file, or the line of a JSONL file."""
    if not isinstance(unit, dict):
        return unit

    def at(node: Any, pointer: str) -> None:
        if isinstance(node, dict) and "source" not in node:
            node["source"] = {**src, "pointer": pointer} if "line" not in src else dict(src)

    at(unit, base)
    for i, obj in enumerate(_list(unit.get("objects"))):
        at(obj, f"{base}/objects/{i}")
        if isinstance(obj, dict):
            for j, fr in enumerate(_list(obj.get("frames"))):
                at(fr, f"{base}/objects/{i}/frames/{j}")
            for j, a in enumerate(_list(obj.get("answers"))):
                at(a, f"{base}/objects/{i}/answers/{j}")
    at(unit.get("boxes"), f"{base}/boxes")  # its rows are located at their id cells (core.boxes.row_source)
    for i, c in enumerate(_list(unit.get("classifications"))):
        at(c, f"{base}/classifications/{i}")
        if isinstance(c, dict):
            for j, a in enumerate(_list(c.get("answers"))):
                at(a, f"{base}/classifications/{i}/answers/{j}")
    return unit


def _list(value: Any) -> list[Any]:
    """The records of a list (anything else is left for the schema to report)."""
    return value if isinstance(value, list) else []


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [InternalReader()]
