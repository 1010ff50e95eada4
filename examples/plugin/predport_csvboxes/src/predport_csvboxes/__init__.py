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

    def detect(self, path: Path) -> predport.Detection:
        if path.suffix != ".csv":
            return predport.Detection(0, "not a .csv file")
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header == COLUMNS:
            return predport.Detection(1.0, "CSV with the csvboxes header")
        return predport.Detection(0, f"header is not {','.join(COLUMNS)}")

    def read(self, path: Path, ctx: predport.ReadContext) -> Iterator[predport.DataUnit]:
        units: dict[str, dict[str, Any]] = {}
        with path.open(newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                where = predport.Location(str(path), line=line)
                try:
                    width, height = int(row["width"]), int(row["height"])
                    x, y, w, h, score = (float(row[k]) for k in ("x", "y", "w", "h", "score"))
                except (TypeError, ValueError) as e:
                    ctx.report("csvboxes.bad_row", f"cannot read the row: {e}", where, group=row["class"])
                    continue
                if width <= 0 or height <= 0:  # reported, not divided by
                    ctx.report("csvboxes.bad_row", f"image size {width}x{height} is not positive", where,
                               group=row["class"])
                    continue
                unit = units.setdefault(row["image"], {
                    "title": row["image"], "kind": "image", "width": width, "height": height,
                    "objects": [], "classifications": [], "source": {"file": str(path), "line": line}})
                unit["objects"].append({
                    "id": f"l{line}", "class": {"name": row["class"]},
                    "frames": [{"frame": 0, "confidence": score,
                                "geometry": {"shape": "bounding_box", "x": x / width, "y": y / height,
                                             "w": w / width, "h": h / height},
                                "source": {"file": str(path), "line": line, "group": row["class"]}}]})
        yield from units.values()  # type: ignore[misc]


@predport.hookimpl
def predport_readers() -> list[predport.Reader]:
    return [CsvBoxes()]
