"""Encord bitmask RLE: COCO's compressed-counts string over the ROW-major pixel order.

pycocotools does all heavy lifting (it scans column-major, hence the transposes). ``check`` decodes only the
run lengths, in Python, because pycocotools trusts its input and would read or write out of bounds on a
string whose runs do not add up to the mask size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as cocomask


def counts(rle: str) -> list[int] | None:
    """The run lengths of a compressed-counts string, or None if it is malformed."""
    out: list[int] = []
    p, n = 0, len(rle)
    while p < n:
        x = k = 0
        while True:
            if p >= n:
                return None
            c = ord(rle[p]) - 48
            if c < 0 or c > 63:
                return None
            x |= (c & 0x1F) << (5 * k)
            p += 1
            k += 1
            if not c & 0x20:
                if c & 0x10:
                    x |= -1 << (5 * k)
                break
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def check(rle: str, width: int, height: int) -> str | None:
    """None when ``rle`` decodes to exactly width x height pixels; otherwise what is wrong."""
    runs = counts(rle)
    if runs is None:
        return "the RLE string is malformed"
    if any(r < 0 for r in runs):
        return "the RLE string has negative run lengths"
    total = sum(runs)
    if total != width * height:
        return f"the RLE runs cover {total} pixels, not {width}x{height} = {width * height}"
    return None


def from_mask(mask: np.ndarray[Any, Any]) -> str:
    """Encord RLE of a 2-D mask (H x W, anything truthy is foreground)."""
    enc = cocomask.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8).T))
    return enc["counts"].decode("ascii")  # type: ignore[no-any-return]


def to_mask(rle: str, width: int, height: int) -> np.ndarray[Any, Any]:
    """Decode an Encord RLE string to a boolean H x W mask (check it first)."""
    m = cocomask.decode({"size": [width, height], "counts": rle.encode("ascii")})
    return m.T.astype(bool)  # type: ignore[no-any-return]


def from_coco(rle: dict[str, Any]) -> str:
    """Encord RLE of a COCO RLE (compressed string or uncompressed list counts; size = [h, w])."""
    h, w = rle["size"]
    if isinstance(rle["counts"], list):
        rle = cocomask.frPyObjects(rle, h, w)
    m = cocomask.decode(rle)
    return from_mask(m)
