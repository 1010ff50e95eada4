"""Reading what ``convert`` wrote -- a directory of label rows with ``manifest.json``, or one file
(``FILE.jsonl`` / ``FILE.jsonl.gz`` with ``FILE.manifest.json``) -- for ``upload``, ``branches``, ``evaluate`` and
the encord reader. A one-file output is complete when its manifest's rows add up to the file (length) and each
row read has the CRC-32 the manifest gives; a file renamed into place by a run killed before its manifest was
is said to be incomplete, never read as if it were whole."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from predport.core import checksum
from predport.core.problems import PredportError
from predport.core.staging import MANIFEST
from predport.core.writer import file_manifest, is_file_output


@dataclass
class Output:
    """A predport output: its manifest, and its rows by manifest entry."""

    path: Path
    manifest: dict[str, Any]
    one_file: bool

    @property
    def units(self) -> list[dict[str, Any]]:
        return self.manifest["units"]  # type: ignore[no-any-return]

    def where(self, unit: dict[str, Any]) -> str:
        """Where a unit's row is, for messages: its file, or the output file and line."""
        return f"{self.path}:{unit['line']}" if self.one_file else str(self.path / unit["file"])

    def row_bytes(self, unit: dict[str, Any]) -> bytes:
        """The JSON of a unit's label row."""
        if not self.one_file:
            return Path(self.path, str(unit["file"])).read_bytes()
        with open(self.path, "rb") as f:
            f.seek(unit["offset"])
            data = f.read(unit["bytes"])
        if len(data) != unit["bytes"] or checksum.crc32(data) != unit["crc32"]:
            raise PredportError(f"{self.path}: line {unit['line']} is not the row its manifest describes: the "
                                "output is incomplete (a run ended between writing it and its manifest); convert "
                                "again")
        return gzip.decompress(data) if self.path.name.endswith(".gz") else bytes(data)

    def row(self, unit: dict[str, Any]) -> dict[str, Any]:
        return orjson.loads(self.row_bytes(unit))  # type: ignore[no-any-return]

    def rows(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        """Every unit's entry and row JSON, in the output's order."""
        for unit in self.units:
            yield unit, self.row_bytes(unit)


def is_output(path: Path) -> bool:
    """Whether ``path`` is a predport output (a directory with our manifest, or a file with one beside it)."""
    if path.is_dir():
        return (path / MANIFEST).is_file()
    return is_file_output(path) and file_manifest(path).is_file()


def open_output(path: str | Path) -> Output:
    """The output at ``path`` (a directory, or ``FILE.jsonl[.gz]``); raises when it is not one, or is
    incomplete."""
    path = Path(path)
    one_file = not path.is_dir() and is_file_output(path)
    manifest_path = file_manifest(path) if one_file else path / MANIFEST
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise PredportError(f"{path} is not a predport output (no readable {manifest_path.name}): {e}") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("units"), list):
        raise PredportError(f"{manifest_path} is not a predport manifest")
    if one_file:
        size = path.stat().st_size if path.is_file() else -1
        expected = sum(int(u.get("bytes", 0)) for u in manifest["units"])
        if size != expected:
            raise PredportError(f"{path} holds {size} bytes, its manifest {expected}: the output is incomplete (a run "
                                "ended between writing it and its manifest); convert again")
    return Output(path, manifest, one_file)
