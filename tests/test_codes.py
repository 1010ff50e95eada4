"""Problem codes: declared (never registered by import), complete right after import, documented, emitted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EMITTED

ROOT = Path(__file__).parent.parent
ROW = re.compile(r"^\| `([a-z0-9_]+\.[a-z0-9_.]+)` \| ([^|]+) \| (.+) \|$")


def readme_codes() -> dict[str, tuple[str, str]]:
    """The README's table of codes: code -> (declared by, meaning)."""
    text = (ROOT / "README.md").read_text()
    return {m[1]: (m[2].strip(), m[3].strip()) for line in text.splitlines() if (m := ROW.match(line))}


def test_codes_are_complete_right_after_import() -> None:
    code = ("import predport, sys; c = predport.CODES; "
            "print(sorted(k for k in c if k.startswith(('coco.', 'upload.')))); "
            "print(sorted(m for m in sys.modules if m.startswith('predport.converters')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed, _ = run.stdout.splitlines()
    assert listed == str(["coco.box_as_polygon", "coco.crowd_area", "coco.geometry_unfit", "coco.image_unresolved",
                          "coco.keypoint_scores", "coco.no_scores", "coco.not_carried", "coco.traced",
                          "upload.kind_mismatch", "upload.unit_ambiguous", "upload.unit_missing"])


def test_a_reader_may_not_redefine_a_code(tmp_path: Path) -> None:
    from predport import plugins
    from predport.core.problems import PredportError

    (tmp_path / "r.py").write_text(
        "import predport\n\nclass R(predport.BaseReader):\n    name = 'r'\n    description = 'x'\n"
        "    codes = {'coco.traced': 'something else'}\n\n"
        "@predport.hookimpl\ndef predport_readers():\n    return [R()]\n")
    (tmp_path / "p.yaml").write_text("readers:\n  r: r.py\n")
    with pytest.raises(PredportError, match=r"reader 'r' of plugin 'r' .* declares problem code 'coco.traced' as "
                                            r"'something else', but reader 'coco' .* declares it as"):
        plugins.load([tmp_path / "p.yaml"], entry_points=False)


def test_codes_command_lists_every_code(capsys: pytest.CaptureFixture[str]) -> None:
    import predport
    from predport.cli import main

    assert main(["codes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(predport.CODES)
    assert any(line.startswith("coco.traced") and line.endswith("[reader 'coco' of plugin 'coco' (built-in "
                                                                  "predport.converters.coco)]") for line in lines)


def test_readme_documents_every_code() -> None:
    import predport

    documented = readme_codes()
    # (the built-in readers' and the core's: a test that loaded a third-party plugin earlier in this process
    # declared its codes too, and the README documents predport's own)
    expected = {code: (_who(predport.CODES.origin(code)), predport.CODES[code]) for code in predport.CODES
                if _builtin(predport.CODES.origin(code))}
    rows = "\n".join(f"| `{c}` | {w} | {m} |" for c, (w, m) in expected.items() if documented.get(c) != (w, m))
    assert documented == expected, f"README's table of codes should have these rows:\n{rows}"


def _builtin(origin: str) -> bool:
    return _who(origin) in ("core", "upload") or "(built-in " in origin


def _who(origin: str) -> str:
    if origin.startswith("reader "):
        return origin.split("'")[1] + " reader"
    return {"predport": "core", "predport.core.upload": "upload"}.get(origin, origin)


@pytest.mark.audit
def test_every_emitted_code_is_declared_and_every_declared_code_is_emitted(request: pytest.FixtureRequest) -> None:
    """Runs last: every code the suite emitted is declared (and so documented, by the test above); after a
    full run, every declared code of the built-in readers and the core was emitted by some test."""
    import predport

    undeclared = sorted(set(EMITTED) - set(predport.CODES))
    assert not undeclared, f"emitted but not declared: {undeclared}"
    if not request.config.full_run:  # type: ignore[attr-defined]
        pytest.skip("part of the suite ran: which codes it emits is not the whole suite's")
    builtin = {c for c in predport.CODES if _builtin(predport.CODES.origin(c))}
    assert sorted(builtin - set(EMITTED)) == []
