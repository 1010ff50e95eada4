"""A typed view of the internal schema (``schemas/data_unit.schema.json``, the single source of truth).

These TypedDicts mirror the schema's shapes so that readers and the writer are type-checked; they add no
behaviour and no runtime cost: records are plain dicts, exactly the JSON the schema validates. The schema's
description holds the coordinate convention (normalised to the frame, origin top-left, y down, degrees
clockwise) and the rules; read it there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    from predport.core.boxes import BoxSlice

Shape = Literal["bounding_box", "rotatable_bounding_box", "polygon", "polyline", "point", "bitmask", "skeleton"]
Kind = Literal["image", "image_group", "video"]
Visibility = Literal["visible", "occluded", "selfOccluded", "invisible"]


class Source(TypedDict, total=False):
    file: str
    pointer: str
    line: int
    record: int | str
    group: str


class Ref(TypedDict, total=False):
    name: str
    hash: str


class BoundingBox(TypedDict):
    shape: Literal["bounding_box"]
    x: float
    y: float
    w: float
    h: float


class RotatableBoundingBox(TypedDict):
    shape: Literal["rotatable_bounding_box"]
    x: float
    y: float
    w: float
    h: float
    theta: float


class Polygon(TypedDict):
    shape: Literal["polygon"]
    polygons: list[list[list[float]]]


class Polyline(TypedDict):
    shape: Literal["polyline"]
    points: list[float]


class Point(TypedDict):
    shape: Literal["point"]
    x: float
    y: float


class Bitmask(TypedDict):
    shape: Literal["bitmask"]
    width: int
    height: int
    rle: str


class SkeletonPoint(TypedDict):
    x: float
    y: float
    name: NotRequired[str]
    hash: NotRequired[str]
    visibility: NotRequired[Visibility]


class Skeleton(TypedDict):
    shape: Literal["skeleton"]
    points: list[SkeletonPoint]


Geometry = BoundingBox | RotatableBoundingBox | Polygon | Polyline | Point | Bitmask | Skeleton


class Answer(TypedDict):
    attribute: Ref
    radio: NotRequired[Ref]
    checklist: NotRequired[list[Ref]]
    text: NotRequired[str]
    numeric: NotRequired[float]
    frames: NotRequired[list[list[int]]]
    source: NotRequired[Source]


class Coco(TypedDict, total=False):
    """COCO ground truth's fields for evaluation only (see the schema's ``coco``)."""

    area: float
    iscrowd: bool
    bbox: list[float]


class ObjectFrame(TypedDict):
    frame: int
    geometry: Geometry
    confidence: NotRequired[float]
    coco: NotRequired[Coco]
    source: NotRequired[Source]


# "class" is a Python keyword, hence the functional TypedDict form (the JSON key stays "class").
Object = TypedDict("Object", {
    "id": str,
    "class": Ref,
    "frames": list[ObjectFrame],
    "answers": NotRequired[list[Answer]],
    "source": NotRequired[Source],
})

Classification = TypedDict("Classification", {
    "id": str,
    "class": Ref,
    "answers": list[Answer],
    "frames": list[list[int]],
    "confidence": NotRequired[float],
    "source": NotRequired[Source],
})


BoxClass = TypedDict("BoxClass", {"class": Ref, "group": NotRequired[str]})


# Plain boxes as columns: row k is one object with one frame (see the schema's "boxes").
Boxes = TypedDict("Boxes", {
    "classes": list[BoxClass],
    "class": list[int],
    "id": list[str],
    "x": list[float],
    "y": list[float],
    "w": list[float],
    "h": list[float],
    "confidence": NotRequired[list[float]],
    "frame": NotRequired[list[int]],
    "pointer": NotRequired[list[str]],
    "record": NotRequired[list[int]],
    "field": NotRequired[str],
    "line": NotRequired[list[int]],
    "area": NotRequired[list[float]],
    "iscrowd": NotRequired[list[bool]],
    "source": NotRequired[Source],
})


class Image(TypedDict, total=False):
    title: str | None
    data_hash: str | None
    width: int | None
    height: int | None


class DataUnit(TypedDict):
    title: str
    kind: Kind
    objects: list[Object]
    classifications: list[Classification]
    data_hash: NotRequired[str | None]
    width: NotRequired[int | None]
    height: NotRequired[int | None]
    frame_count: NotRequired[int | None]
    fps: NotRequired[float | None]
    duration: NotRequired[float | None]
    images: NotRequired[list[Image]]
    boxes: NotRequired[Boxes | BoxSlice]  # (rows of a table shared by many units: see core.boxes.SharedBoxes)
    source: NotRequired[Source]
