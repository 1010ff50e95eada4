"""The output directory: all or nothing even under SIGKILL, nothing stale left behind, plain permissions,
and a worker's failure told with its exception."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DATA
from output_kit import convert_args, leftovers, run_cli, snapshot
from predport.cli import main

REF = DATA / "encord" / "reference"


# (fault point, extra arguments): killed after a label row, after the workers started, before the swap, after it
KILLS = [("unit:3", []), ("unit:40", ["--workers", "2"]), ("forked", ["--workers", "2"]), ("commit", []),
         ("swapped", [])]


@pytest.mark.parametrize(("fault", "extra"), KILLS)
def test_sigkill_at_any_point_leaves_old_or_new_output_and_the_next_run_cleans_up(
        inputs: dict[str, Path], expected: dict[str, dict[str, str] | None], tmp_path: Path, fault: str,
        extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "work" / "out"
    assert main(convert_args(inputs, "old", out)) == 0
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PREDPORT_FAULT": fault, "TMPDIR": str(tmp)}
    run = run_cli([*convert_args(inputs, "new", out), *extra], env)
    assert run.returncode == -signal.SIGKILL, run.stderr
    now = snapshot(out)
    assert now == expected["old" if fault != "swapped" else "new"]  # never half of either
    stale = leftovers(out.parent, out)
    assert stale and all(name.startswith(".out.predport-") for name in stale)  # the killed run's staging
    # the next run into the same --out removes it, and says so
    capsys.readouterr()
    assert main([*convert_args(inputs, "old", out), "--format", "json"]) == 0
    said = [p for p in json.loads(capsys.readouterr().out)["problems"] if p["code"] == "output.stale"]
    assert sorted(Path(p["location"]["file"]).name for p in said) == stale
    assert leftovers(out.parent, out) == [] and list(tmp.iterdir()) == []
    assert snapshot(out) == expected["old"]


def test_sigkill_at_random_moments(inputs: dict[str, Path], expected: dict[str, dict[str, str] | None],
                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(convert_args(inputs, "old", out)) == 0
    code = "import sys\nfrom predport.cli import main\nsys.exit(main(sys.argv[1:]))"
    for delay in (0.05, 0.3, 0.6, 0.9, 1.2):
        proc = subprocess.Popen([sys.executable, "-c", code, *convert_args(inputs, "new", out), "--workers", "2"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert snapshot(out) in (expected["old"], expected["new"])
    assert main(convert_args(inputs, "old", out)) == 0
    assert leftovers(out.parent, out) == [] and snapshot(out) == expected["old"]


def test_without_the_atomic_swap_a_commit_killed_between_its_renames_is_finished_by_the_next_run(
        inputs: dict[str, Path], expected: dict[str, dict[str, str] | None], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(convert_args(inputs, "old", out)) == 0
    no_swap = "import predport.core.staging as s\ns.exchange = lambda a, b: False"
    run = run_cli(convert_args(inputs, "new", out), {**os.environ, "PREDPORT_FAULT": "moved-old"}, no_swap)
    assert run.returncode == -signal.SIGKILL
    assert snapshot(out) is None  # (the one moment without --out, which only the atomic swap avoids)
    from predport.core import staging

    [restored] = [r for r in staging.sweep(out) if r.restored]
    assert restored.path.name.endswith("-old") is False  # the complete new rows went in, not the old ones
    assert snapshot(out) == expected["new"] and leftovers(out.parent, out) == []
    # and killed before its first rename, the old output stays
    run = run_cli(convert_args(inputs, "old", out), {**os.environ, "PREDPORT_FAULT": "commit"}, no_swap)
    assert run.returncode == -signal.SIGKILL and snapshot(out) == expected["new"]


def test_a_live_runs_staging_is_never_removed(inputs: dict[str, Path], tmp_path: Path) -> None:
    from predport.core.staging import Staging, sweep

    out = tmp_path / "out"
    live = Staging(out)  # this process is alive and holds the lock
    assert sweep(out) == [] and live.path.exists()
    live.discard()


def test_output_directory_gets_the_permissions_of_a_plain_mkdir(inputs: dict[str, Path], tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        os.mkdir(tmp_path / "plain")
        assert main(convert_args(inputs, "old", tmp_path / "out")) == 0
        os.umask(0o002)
        assert main(convert_args(inputs, "old", tmp_path / "out2")) == 0
    finally:
        os.umask(old)
    mode = (tmp_path / "out").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out2").stat().st_mode & 0o777 == 0o775


WORKER_FAILS = '''
import os
import predport

PARENT = os.getpid()  # (plugins load before the fork)

class Flaky(predport.Reader):
    name = "flaky"
    description = "fails in worker processes"

    def detect(self, path):
        return predport.Detection(0, "never")

    def read(self, path, ctx):
        for k in range(40):
            if k == 5 and os.getpid() != PARENT:
                {failure}
            yield {{"title": f"u{{k}}.jpg", "kind": "image", "width": 10, "height": 10, "objects": [],
                   "classifications": []}}

@predport.hookimpl
def predport_readers():
    return [Flaky()]
'''


@pytest.mark.parametrize(("failure", "said"), [
    ("raise ValueError('bad thing in a worker')",
     r"worker 1 failed: reader 'flaky' failed on .*x\.txt: ValueError: bad thing in a worker\n  last frames:"
     r"[\s\S]*flaky\.py:\d+ in read: raise ValueError\('bad thing in a worker'\)\nnothing was written"),
    ("os.kill(os.getpid(), 9)", r"worker 1 was killed by SIGKILL; nothing was written"),
])
def test_a_failing_worker_is_told_with_its_exception_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], failure: str, said: str) -> None:
    (tmp_path / "flaky.py").write_text(WORKER_FAILS.format(failure=failure))
    (tmp_path / "p.yaml").write_text("readers:\n  flaky: flaky.py\n")
    (tmp_path / "x.txt").write_text("")
    out = tmp_path / "out"
    code = main(["--plugins", str(tmp_path / "p.yaml"), "convert", str(tmp_path / "x.txt"), "--from", "flaky",
                 "--ontology", str(REF / "ontology.json"), "--branch", "b", "--out", str(out), "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 2 and re.search(said, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flaky.py", "p.yaml", "x.txt"]  # no output, no staging
