"""Helpers for the output tests (directory and one-file): a snapshot of an output, the convert command line of
the old and new inputs, running the CLI in a process of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TS = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [\d:]+ UTC")


def snapshot(out: Path) -> dict[str, str] | None:
    """Every file of an output directory, the run's timestamps blanked (None: there is no directory)."""
    if not out.exists():
        return None
    return {p.name: TS.sub("T", p.read_text()) for p in sorted(out.iterdir())}


def same_but_time(a: bytes, b: bytes) -> bool:
    """Two outputs' bytes are the same, the runs' timestamps aside."""
    return TS.sub("T", a.decode()) == TS.sub("T", b.decode())


def convert_args(inputs: dict[str, Path], which: str, out: Path) -> list[str]:
    src = [str(inputs["old"])] if which == "old" else [str(inputs["new"]), "--images", str(inputs["images"])]
    return ["convert", *src, "--ontology", str(inputs["ontology"]), "--branch", "b", "--out", str(out), "--quiet"]


def leftovers(directory: Path, out: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != out.name)


def run_cli(args: list[str], env: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\n{prelude}\nfrom predport.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
