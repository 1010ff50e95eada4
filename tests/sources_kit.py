"""Inputs for the runs over several sources (workers taking whole sources, Dask tasks): COCO results split into
shards, and a reader plugin that fails on purpose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import DATA

COCO = DATA / "coco"
RESULTS, IMAGES = COCO / "instances_val2014_fakebbox100_results.json", COCO / "instances_val2014_100.json"


def result_shards(tmp: Path, n: int = 3) -> list[Path]:
    """The COCO results split into ``n`` results files by image, to be read with one shared --images file: every
    shard yields every image, most of them without records (and one image has results in none)."""
    results = json.loads(RESULTS.read_text())
    out = []
    for k in range(n):
        path = tmp / f"results-{k}.json"
        path.write_text(json.dumps([a for a in results if a["image_id"] % n == k]))
        out.append(path)
    return out


#: a plugin (``readers: {boom: boom.py}``) whose reader fails on ``.boom`` files as their text says: one that
#: starts with "die" kills its process (never the process whose pid is in $BOOM_PARENT: pytest's), any other raises
BOOM = '''
import os, signal
import predport

class Boom(predport.BaseReader):
    name = "boom"
    description = "fails on .boom files as they say: raise, or die"
    def detect(self, path):
        return predport.Detection(1.0 if str(path).endswith(".boom") else 0.0, "a .boom file")
    def read(self, path, ctx):
        if path.read_text().startswith("die"):
            if os.getpid() == int(os.environ["BOOM_PARENT"]):
                raise RuntimeError("the parent took the source meant for the child")
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("the reader broke")

@predport.hookimpl
def predport_readers():
    return [Boom()]
'''


def log_reads(monkeypatch: Any, log: Path) -> None:
    """Have every process of a run append ``<pid> <file name>`` to ``log`` for each source it reads."""
    import os

    from predport.core import pipeline

    real = pipeline._read

    def logged(path: Path, reader: Any, ctx: Any) -> Any:
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {path.name}\n")
        return real(path, reader, ctx)

    monkeypatch.setattr(pipeline, "_read", logged)
