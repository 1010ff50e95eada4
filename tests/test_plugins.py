"""Plugins: built-ins through plugins.yaml, installed packages through entry points, local files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DATA
from predport import plugins
from predport.core.problems import PredportError

ROOT = Path(__file__).parent.parent
ONT = DATA / "encord" / "reference" / "ontology.json"
EXAMPLE_PLUGIN = ROOT / "examples" / "plugin" / "predport_csvboxes"


def test_builtins_come_from_plugins_yaml() -> None:
    listed = plugins.read_plugins_file(ROOT / "plugins.yaml")
    reg = plugins.load(entry_points=False)
    assert set(listed) == set(reg.readers)
    assert all(o.startswith("built-in ") for o in reg.origins.values())


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example third-party package, really installed (pip, no network) into its own directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(EXAMPLE_PLUGIN)], check=True)
    return target


def _predport(args: list[str], site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "predport.cli", *args], capture_output=True, text=True, env=env)


def test_installed_plugin_is_listed_and_converts(installed_plugin: Path, tmp_path: Path) -> None:
    formats = _predport(["formats"], installed_plugin)
    assert formats.returncode == 0
    line = next(x for x in formats.stdout.splitlines() if x.startswith("csvboxes"))
    assert "entry point predport_csvboxes of predport-csvboxes" in line
    out = tmp_path / "out"
    # no --from: the plugin's detector claims the CSV
    run = _predport(["convert", str(ROOT / "examples" / "detections.csv"), "--ontology", str(ONT),
                     "--branch", "csv-preds", "--out", str(out)], installed_plugin)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(u["title"], u["objects"]) for u in manifest["units"]] == [("img_001.jpg", 2), ("img_002.jpg", 1)]
    row = json.loads((out / "img_002.jpg.json").read_text())
    [obj] = next(iter(row["data_units"].values()))["labels"]["objects"]
    assert obj["boundingBox"] == {"x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0} and obj["confidence"] == 0.66


def test_installed_plugin_reports_a_zero_image_size_instead_of_dividing_by_it(installed_plugin: Path,
                                                                              tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    rows = (ROOT / "examples" / "detections.csv").read_text().splitlines()
    csv.write_text("\n".join([*rows, "img_003.jpg,0,480,Car,1,2,3,4,0.5", "img_004.jpg,640,x,Car,1,2,3,4,0.5"]))
    out = tmp_path / "out"
    run = _predport(["convert", str(csv), "--ontology", str(ONT), "--branch", "b", "--out", str(out)], installed_plugin)
    assert run.returncode == 1, run.stderr
    n = len(rows)
    *warnings, = (line for line in run.stdout.splitlines() if "[reader.cannot_carry]" in line)
    errors = [line for line in run.stdout.splitlines() if "[reader.cannot_carry]" not in line]
    # (the plugin declares it carries no attributes and no classifications: warned, the ontology requires some)
    assert [w.split(": ")[1] for w in warnings] == ["warning"] * 2 and "'Species' of 'Animal'" in warnings[0]
    assert errors == [
        f"{csv}:{n + 1}: image size 0x480 is not positive [csvboxes.bad_row]",
        f"{csv}:{n + 2}: cannot read the row: invalid literal for int() with base 10: 'x' [csvboxes.bad_row]"]
    assert "Car: 2 converted, 2 reported" in run.stderr and not out.exists()


def _local(tmp_path: Path, readers: dict[str, str], files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "plugins.yaml"
    path.write_text("readers:\n" + "".join(f"  {k}: {v}\n" for k, v in readers.items()))
    return path


READER = '''
import predport

class R(predport.BaseReader):
    name = "{name}"
    description = "test"
    def detect(self, path):
        return predport.Detection(0, "never")
    def read(self, path, ctx):
        return iter(())

@predport.hookimpl
def predport_readers():
    return [R()]
'''


def test_local_plugins_file(tmp_path: Path) -> None:
    path = _local(tmp_path, {"mine": "mine.py"}, {"mine.py": READER.format(name="mine")})
    reg = plugins.load([path], entry_points=False)
    assert "mine" in reg.readers and reg.origins["mine"] == f"mine.py from {path}"


def test_plugin_that_fails_to_import_is_named(tmp_path: Path) -> None:
    path = _local(tmp_path, {"broken": "broken.py"}, {"broken.py": "import does_not_exist\n"})
    with pytest.raises(PredportError, match=r"plugin 'broken' \(broken.py\) failed to import: ModuleNotFoundError"):
        plugins.load([path], entry_points=False)


def test_duplicate_plugin_name(tmp_path: Path) -> None:
    path = _local(tmp_path, {"encord": "mine.py"}, {"mine.py": READER.format(name="x")})
    with pytest.raises(PredportError, match=r"two plugins named 'encord': built-in .* and mine.py from"):
        plugins.load([path], entry_points=False)


def test_duplicate_reader_name(tmp_path: Path) -> None:
    path = _local(tmp_path, {"other": "other.py"}, {"other.py": READER.format(name="encord")})
    with pytest.raises(PredportError, match=r"two readers named 'encord': from built-in .* and from other.py"):
        plugins.load([path], entry_points=False)


def test_misspelt_hook(tmp_path: Path) -> None:
    code = "import predport\n\n@predport.hookimpl\ndef predport_reader():\n    return []\n"
    path = _local(tmp_path, {"typo": "typo.py"}, {"typo.py": code})
    expected = r"plugin 'typo' \(typo.py from .*\) has an unknown hook: unknown hook 'predport_reader'"
    with pytest.raises(PredportError, match=expected):
        plugins.load([path], entry_points=False)


#: plugins files that the plain reading takes (the same as PyYAML's), and files it leaves to PyYAML
PLAIN_FILES = [
    "readers:\n  a: x.y\n",
    "# a comment\n\nreaders:\n    a: m\n\n    # another\n    b-c: ./p/q.py  \n",
    "readers:\r\n  a: m\r\n  b_2: pkg.mod_1\r\n",
    "readers:\n  a: m\n  a: n\n",  # (a repeated name: the last)
    "readers:\n  y: m\n  n: Yes_not\n",  # (y and n are strings to PyYAML; Yes_not is no boolean)
]
YAML_FILES = [
    "readers:\n  on: m\n", "readers:\n  a: yes\n", "readers:\n  a: NULL\n", "readers:\n  a: 'm'\n",
    "readers: {a: m}\n", "readers:\n  a: m\n   b: n\n", "readers:\n\ta: m\n", "readers:\n  a: m # c\n",
    "readers:\n", "\ufeffreaders:\n  a: m\n", "---\nreaders:\n  a: m\n", "other:\n  a: m\n",
    "readers:\n  a: m\nother: 1\n", "readers:\n  A: m\n", "readers:\n  a: m:n\n", "readers:\n  a: &x m\n",
    "readers:\n  a: - m\n", "readers:\n  a:  m\n  b:\n",
]


@pytest.mark.parametrize("text", [(ROOT / "plugins.yaml").read_text("utf-8"), *PLAIN_FILES])
def test_plain_plugins_file_as_yaml_reads_it(text: str) -> None:
    """The built-in plugins file (and files like it) is read without PyYAML, to the same result."""
    import yaml

    assert plugins._plain_plugins(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", YAML_FILES)
def test_other_plugins_files_go_to_yaml(text: str) -> None:
    assert plugins._plain_plugins(text) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["readers:", "  a: m", "  b: x.y", "    c: d.py", "  on: m", "  e: No", "# c", "",
                                 "  f: 'g'", "  g: h # i", "\tj: k", "  k:  l", "other: 1", "  m: n.o.p"]),
                max_size=8))
def test_plain_plugins_never_differs_from_yaml(lines: list[str]) -> None:
    """Whatever the lines, the plain reading is PyYAML's or declines (a file PyYAML refuses: declines)."""
    import yaml

    text = "\n".join(lines) + "\n"
    plain = plugins._plain_plugins(text)
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        assert plain is None
        return
    assert plain is None or plain == expected


def test_invalid_plugins_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("readers: [a, b]\n")
    with pytest.raises(PredportError, match="invalid plugins file"):
        plugins.load([path], entry_points=False)


def test_ambiguous_detection_lists_reasons(tmp_path: Path) -> None:
    always = READER.replace('Detection(0, "never")', 'Detection(1.0, "claims everything")')
    path = _local(tmp_path, {"a": "a.py", "b": "b.py"}, {"a.py": always.format(name="a"),
                                                         "b.py": always.format(name="b")})
    reg = plugins.load([path], entry_points=False)
    with pytest.raises(PredportError, match=r"ambiguous; give --from[\s\S]*a: claims everything[\s\S]*b: claims"):
        reg.detect(tmp_path / "a.py")


def test_readme_shows_the_example_plugin_as_it_is() -> None:
    module = (EXAMPLE_PLUGIN / "src" / "predport_csvboxes" / "__init__.py").read_text()
    assert f"```python\n{module}```" in (ROOT / "README.md").read_text()


NUMPY_UNIT = '''
from collections import OrderedDict
import numpy as np
import predport

def unit(k, plain):
    num = (lambda v: v) if plain else np.float64
    seq = list if plain else tuple
    table = {"classes": [{"class": {"name": "Car"}, "group": "car"}], "class": [0, 0, 0], "id": ["r1", "r2", "r3"],
             "x": [0.1, 0.2, 0.3], "y": [0.1, 0.2, 0.3], "w": [0.1, 0.1, 0.1], "h": [0.1, 0.1, 0.1],
             "confidence": [float(np.float32(c)) for c in (0.9, 0.2, 0.6)]}
    if not plain:  # columns as arrays, one of them float32 (its float64 value is what gets written)
        table = {key: (np.array(col) if key != "classes" else col) for key, col in table.items()}
        table["confidence"] = np.array([0.9, 0.2, 0.6], dtype=np.float32)
    frame = {"frame": 0, "confidence": np.float32(0.25) if not plain else float(np.float32(0.25)),
             "geometry": {"shape": "bounding_box", "x": num(0.5), "y": 0.5, "w": num(0.25), "h": 0.25}}
    doc = {"title": f"img{k}.jpg", "kind": "image", "width": 640 if plain else np.int64(640), "height": 480,
           "classifications": [], "boxes": table,
           "objects": seq([(dict if plain else OrderedDict)(id="a", **{"class": {"name": "Car"}},
                                                           frames=seq([frame]))])}
    return doc
'''


@pytest.mark.parametrize("options", [{}, {"min_confidence": 0.3}, {"top_k": 1}])
def test_numpy_values_tuples_and_subclasses_convert_as_the_plain_values(tmp_path: Path, options: dict[str, Any]) \
        -> None:
    """A reader's numpy scalars and arrays, tuples and dict subclasses are the JSON values they stand for: the rows
    and counts are those of the plain values (before, numpy.float64 passed validation, then stopped the writer;
    filters passed numpy confidences over)."""
    import predport
    from output_kit import TS
    from predport.core.output import open_output

    def reader(name: str, plain: bool) -> str:
        return NUMPY_UNIT + READER.format(name=name).replace("return iter(())",
                                                             f"return (unit(k, {plain}) for k in range(2))")

    path = _local(tmp_path, {"plain": "plain.py", "numpy": "numpy_reader.py"},
                  {"plain.py": reader("plain", True), "numpy_reader.py": reader("numpy", False)})
    (tmp_path / "in.x").write_text("")
    rows, per_group = [], []
    for name in ("plain", "numpy"):
        out = tmp_path / f"{name}.jsonl"
        report = predport.convert([tmp_path / "in.x"], ONT, "b", out, fmt=name, plugins=[path], options=options)
        assert report.ok, [p.message for p in report.problems if p.severity == "error"]
        # (the runs' timestamps aside: two runs can fall in two seconds)
        rows.append([json.loads(TS.sub("T", data.decode())) for _, data in open_output(out).rows()])
        per_group.append(report.per_group())
    assert rows[0] == rows[1] and per_group[0] == per_group[1]
    written = [len(du["labels"]["objects"]) for r in rows[0] for du in r["data_units"].values()]
    assert written == {"min_confidence": [2, 2], "top_k": [1, 1]}.get(next(iter(options), ""), [4, 4])
