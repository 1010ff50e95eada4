"""The end-to-end notebook (examples/end-to-end.ipynb) runs, every cell, against the Encord API stand-in on
127.0.0.1 (no project hash or key in the environment): a failing cell fails this test."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_end_to_end_notebook(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PREDPORT_PROJECT", "ENCORD_SSH_KEY_FILE", "ENCORD_SSH_KEY", "PREDPORT_DOMAIN"):
        monkeypatch.delenv(var, raising=False)
    nb = nbformat.read(EXAMPLES / "end-to-end.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert "the stand-in Encord API at http://127.0.0.1:" in text
    assert "[geometry.out_of_frame]" in text and "geometry.out_of_frame at /" in text
    assert "branch 'fake-detector-v1': saved 25 label row(s)" in text
    assert "person     strict" in text and "person     partial" in text
    assert len(images) == 3  # the two precision-recall curves and the confusion matrix
