"""Encord bitmask RLE: COCO's compressed-counts string over the ROW-major pixel order.

pycocotools does all heavy lifting (it scans column-major, hence the transposes). ``check`` decodes only the
run lengths, in Python, because pycocotools trusts its input and would read or write out of bounds on a
string whose runs do not add up to the mask size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as cocomask

#: The largest frame, in pixels, whose masks predport decodes or rasterises (32768 x 32768). A decoded mask
#: takes a byte per pixel, and pycocotools counts pixels in 32-bit words: frames above this are reported
#: (``frame.too_large``) before numpy or pycocotools allocate anything.
MAX_PIXELS = 1 << 30


def counts(rle: str) -> np.ndarray[Any, Any] | None:
    """The run lengths of a compressed-counts string (int64 array), or None if it is malformed.

    Vectorised form of the scheme: each count is a group of 6-bit characters (offset 48), 5 value bits each,
    least significant first, bit 0x20 = "more follows"; the last character's bit 0x10 is the sign; from the
    fourth count on, each is stored as its difference to the count two places before.
    """
    try:
        raw = rle.encode("ascii")  # the scheme's characters are '0' .. 'o': anything else is not an RLE string
    except UnicodeEncodeError:
        return None
    c = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, dtype=np.int64)
    if c.min() < 0 or c.max() > 63:
        return None
    last = (c & 0x20) == 0  # the last character of each count
    if not last[-1]:
        return None  # the string ends inside a count
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    k = np.arange(c.size) - np.repeat(starts, ends - starts + 1)  # position inside its group
    if k.max() > 11:
        return None  # more than 60 bits: not a count
    values = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    negative = (c[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (k[ends][negative] + 1))
    if np.abs(values).max() > 1 << 32:
        return None  # longer than any real frame's pixel count (and the running sums below cannot overflow)
    # undo the delta coding: x[m] += x[m - 2] for m > 2, i.e. running sums over odd and (from 2) even indices
    values[1::2] = np.cumsum(values[1::2])
    values[2::2] = np.cumsum(values[2::2])
    return values


def check(rle: str, width: int, height: int) -> str | None:
    """None when ``rle`` decodes to exactly width x height pixels; otherwise what is wrong."""
    return check_runs(counts(rle), width, height)


def check_runs(runs: np.ndarray[Any, Any] | None, width: int, height: int) -> str | None:
    """:func:`check` for run lengths already decoded with :func:`counts`."""
    if runs is None:
        return "the RLE string is malformed"
    if runs.size and runs.min() < 0:
        return "the RLE string has negative run lengths"
    total = int(runs.sum())
    if total != width * height:
        return f"the RLE runs cover {total} pixels, not {width}x{height} = {width * height}"
    return None


def from_mask(mask: np.ndarray[Any, Any]) -> str:
    """Encord RLE of a 2-D mask (H x W, anything truthy is foreground)."""
    if mask.dtype != np.uint8:
        mask = mask.astype(np.uint8)
    # pycocotools reads column-major: the transpose of the mask, in Fortran order, is the row-major scan
    enc = cocomask.encode(np.asfortranarray(mask.T))
    return enc["counts"].decode("ascii")  # type: ignore[no-any-return]


def runs_to_mask(runs: np.ndarray[Any, Any], height: int, width: int) -> np.ndarray[Any, Any]:
    """The H x W uint8 mask of COCO (column-major) run lengths that cover exactly height * width pixels."""
    values = np.zeros(runs.size, dtype=np.uint8)
    values[1::2] = 1
    return np.repeat(values, runs).reshape(width, height).T  # a transposed view: no copy yet


def to_mask(rle: str, width: int, height: int) -> np.ndarray[Any, Any]:
    """Decode an Encord RLE string to a boolean H x W mask (check it first)."""
    m = cocomask.decode({"size": [width, height], "counts": rle.encode("ascii")})
    return m.T.astype(bool)  # type: ignore[no-any-return]
