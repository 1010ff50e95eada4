"""The writer: file names that cannot escape, stable hashes, the label-row layout."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import predport
from conftest import DATA
from predport.core.writer import instance_hash, safe_file_name

ONT = DATA / "encord" / "reference" / "ontology.json"


@pytest.mark.parametrize("title", ["../../etc/passwd", "/abs/path.jpg", "a/b/c.jpg", "..", ".", ".hidden.jpg",
                                   "C:\\x\\y.png", "manifest.json", "MANIFEST.JSON", "x" * 400, "ünï cödé.jpg", "\0"])
def test_file_names_stay_inside(title: str, tmp_path: Path) -> None:
    name = safe_file_name(title, set())
    assert "/" not in name and "\\" not in name and not name.startswith(".") and len(name) < 150
    assert name.lower() != "manifest.json"
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_colliding_titles_get_distinct_names() -> None:
    taken: set[str] = set()
    names = [safe_file_name(t, taken) for t in ("a b.jpg", "a_b.jpg", "A_B.jpg", "a?b.jpg")]
    assert len({n.lower() for n in names}) == 4


def test_hostile_titles_end_to_end(tmp_path: Path) -> None:
    units = [{"title": t, "kind": "image", "width": 10, "height": 10, "objects": [], "classifications": []}
             for t in ("../escape.jpg", "sub/dir.jpg", "manifest.json")]
    src = tmp_path / "units.json"
    src.write_text(json.dumps(units))
    out = tmp_path / "out"
    assert predport.convert([src], ONT, "b", out, fmt="predport").ok
    assert sorted(p.parent for p in out.rglob("*")) == [out] * 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert [u["title"] for u in manifest["units"]] == ["../escape.jpg", "manifest.json", "sub/dir.jpg"]
    assert not (tmp_path / "escape.jpg").exists()


def test_instance_hashes_are_stable_and_encord_shaped() -> None:
    a = instance_hash("img.jpg", "42", set())
    assert a == instance_hash("img.jpg", "42", set()) and len(a) == 8
    assert instance_hash("img.jpg", "abcd1234", set()) == "abcd1234"  # already an Encord hash: kept
    taken = {"abcd1234"}
    assert instance_hash("img.jpg", "abcd1234", taken) != "abcd1234"


def test_checksums_are_zlibs() -> None:
    """The rows' CRC-32 and gzip members come from ISA-L (with the vector state cleared after each call, which
    only a benchmark shows): the same CRC as zlib's, and a gzip member that any gzip reads back."""
    import gzip
    import zlib

    from predport.core import checksum

    data = bytes(range(256)) * 300 + b"tail"
    assert checksum.crc32(data) == zlib.crc32(data) and checksum.crc32(b"") == 0
    member = checksum.gzip_member(data)
    assert gzip.decompress(member) == data and gzip.decompress(member + member) == data * 2
    assert member == checksum.gzip_member(data)  # (mtime 0: the same rows give the same bytes)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(st.one_of(st.integers(0, 2000), st.integers(0, 10**17),
                              st.sampled_from([12345678, 99999999, 10**7])), max_size=60)
       | st.lists(st.integers(-5, 5), max_size=10),
       cuts=st.lists(st.integers(0, 60), min_size=2, max_size=6), kept=st.lists(st.integers(0, 60), max_size=3))
def test_integer_ids_hash_as_their_spelling(ids: list[int], cuts: list[int], kept: list[int]) -> None:
    """The hashes of a shared table's integer ids, from their digits' checksums computed per block of the column
    and shifted by the unit's title, are exactly those of their decimal spellings (8-digit ids kept as they are,
    collisions salted, hashes already taken in the unit avoided), unit after unit over one column."""
    import numpy as np

    from predport.core import writer

    column = np.array(ids, dtype=np.int64)
    column.flags.writeable = False
    bounds = sorted(min(c, len(ids)) for c in cuts)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(writer._Digits, "BLOCK", 16)  # (units across blocks)
        for k, (a, b) in enumerate(pairwise(bounds)):
            fast, slow = writer.InstanceHashes(f"unit {k}"), writer.InstanceHashes(f"unit {k}")
            for i in kept:  # (hashes the unit's objects took first)
                fast.one(str(i))
                slow.one(str(i))
            assert fast.many_ints(column, a, b) == slow.many_bytes([str(i) for i in ids[a:b]])
            assert fast.taken == slow.taken
