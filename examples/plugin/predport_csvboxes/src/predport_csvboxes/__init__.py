"""An example third-party predport reader: CSV detections, one box per line, in pixels.

    image,width,height,class,x,y,w,h,score
    img_001.jpg,640,480,Car,10,20,100,50,0.93
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import predport

COLUMNS = ["image", "width", "height", "class", "x", "y", "w", "h", "score"]


class CsvBoxes(predport.BaseReader):
    name = "csvboxes"
    description = "CSV detections: image,width,height,class,x,y,w,h,score (pixels)"
    codes: ClassVar[dict[str, str]] = {  # the problem codes this reader emits, beyond the core's
        "csvboxes.bad_row": "a CSV row that cannot be read as numbers, or with a non-positive image size"}
    # what its output can hold: `predport formats` shows it, the conformance kit checks it
    capabilities = predport.Capabilities(frozenset({"bounding_box"}), confidence=True)

    def detect(self, path: Path) -> predport.Detection:
        if path.suffix != ".csv" or not path.is_file():
            return predport.Detection(0, "not a .csv file")
        try:
            with path.open(newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), [])
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            return predport.Detection(0, f"cannot read: {e}")
        if header == COLUMNS:
            return predport.Detection(1.0, "CSV with the csvboxes header")
        return predport.Detection(0, f"header is not {','.join(COLUMNS)}")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[predport.DataUnit]:
        units: dict[str, dict[str, Any]] = {}
        try:
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:  # reported, not raised: the run goes on
            ctx.report("source.unreadable", f"cannot read: {e}", predport.Location(str(path)))
            return
        for line, row in enumerate(rows, start=2):
            where = predport.Location(str(path), line=line)
            label = row.get("class") or "?"
            try:
                width, height = int(row["width"]), int(row["height"])
                x, y, w, h, score = (float(row[k]) for k in ("x", "y", "w", "h", "score"))
            except (TypeError, ValueError, KeyError) as e:
                ctx.report("csvboxes.bad_row", f"cannot read the row: {e}", where, group=label)
                continue
            if width <= 0 or height <= 0:  # reported, not divided by
                ctx.report("csvboxes.bad_row", f"image size {width}x{height} is not positive", where, group=label)
                continue
            unit = units.setdefault(str(row["image"]), {
                "title": str(row["image"]), "kind": "image", "width": width, "height": height,
                "objects": [], "classifications": [], "source": {"file": str(path), "line": line}})
            unit["objects"].append({
                "id": f"l{line}", "class": {"name": label},
                "frames": [{"frame": 0, "confidence": score,
                            "geometry": {"shape": "bounding_box", "x": x / width, "y": y / height,
                                         "w": w / width, "h": h / height},
                            "source": {"file": str(path), "line": line, "group": label}}]})
        yield from units.values()  # type: ignore[misc]


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [CsvBoxes()]
