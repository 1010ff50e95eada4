"""The reader contract: a Protocol, each reader's own options, plugins loaded once, a failing reader named,
and the core's --class-map / --image-map applied to every reader's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import predport
from conftest import DATA, coco_ontology
from predport import plugins
from predport.cli import main
from predport.core.problems import PredportError

REF = DATA / "encord" / "reference"
ONT = REF / "ontology.json"

#: a reader of "*.<name>" files holding a JSON list of internal data units; it yields them as they are and
#: says which options it was given (an info problem)
READER = '''
import json
import predport

class R(predport.Reader):  # (subclassing the Protocol works too: readers written for 0.1 keep working)
    name = "{name}"
    description = "test reader {name}"
    codes = {{"{name}.odd": "a test code"}}

    def add_arguments(self, group):
        group.add_argument("{option}", dest="images", {images})
        group.add_argument("--flag", action="store_true")

    def detect(self, path):
        return predport.Detection(1.0 if path.suffix == ".{name}" else 0, "by suffix")

    def read(self, path, ctx):
        ctx.report("{name}.odd", "{name} options: images=%r flag=%r" % (ctx.options["images"], ctx.options["flag"]),
                   predport.Location(str(path)), "info")
        yield from json.loads(path.read_text())

@predport.hookimpl
def predport_readers():
    return [R()]
'''


def plugins_file(tmp_path: Path, readers: dict[str, str], extra: str = "", option: str = "--images") -> Path:
    lines = []
    for name, images in readers.items():
        (tmp_path / f"{name}.py").write_text(extra + READER.format(name=name, images=images, option=option))
        lines.append(f"  {name}: {name}.py\n")
    path = tmp_path / "plugins.yaml"
    path.write_text("readers:\n" + "".join(lines))
    return path


def unit(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "kind": "image", "width": 10, "height": 10, "classifications": [], "objects": [
        {"id": f"{title}-o", "class": {"name": "car"}, "frames": [
            {"frame": 0, "geometry": {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}}]}], **extra}


def test_two_readers_may_offer_an_option_of_the_same_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both declare --images (one as a string, one as an int): argparse used to crash before any output."""
    pf = plugins_file(tmp_path, {"aa": 'metavar="DIR"', "bb": "type=int"})
    assert main(["--plugins", str(pf), "formats"]) == 0
    assert "aa " in capsys.readouterr().out
    for name in ("aa", "bb"):
        (tmp_path / f"in.{name}").write_text(json.dumps([unit(f"{name}.jpg")]))
    args = ["--plugins", str(pf), "validate", str(tmp_path / "in.aa"), str(tmp_path / "in.bb"), "--ontology", str(ONT),
            "--images", "7", "--flag", "--format", "json"]
    assert main(args) == 1  # ('car' is not in the ontology)
    seen = [p["message"] for p in json.loads(capsys.readouterr().out)["problems"] if p["code"].endswith(".odd")]
    assert seen == ["aa options: images='7' flag=True", "bb options: images=7 flag=True"]  # each parser's own
    # the Python API: values as given, to every reader that declares them; defaults otherwise
    report = predport.validate([tmp_path / "in.aa", tmp_path / "in.bb"], ONT, plugins=[pf], options={"images": "7"})
    assert [p.message for p in report.problems if p.code.endswith(".odd")] == [
        "aa options: images='7' flag=False", "bb options: images='7' flag=False"]
    report = predport.validate([tmp_path / "in.bb"], ONT, plugins=[pf])
    assert [p.message for p in report.problems if p.code.endswith(".odd")] == ["bb options: images=None flag=False"]


def test_reader_options_are_parsed_by_each_readers_own_parser(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    pf = plugins_file(tmp_path, {"aa": 'metavar="DIR"', "bb": "type=int"})
    (tmp_path / "in.bb").write_text(json.dumps([unit("bb.jpg")]))
    src = str(tmp_path / "in.bb")
    out = tmp_path / "out"
    # --images x is fine for aa but not an int for bb, which reads this file
    assert main(["--plugins", str(pf), "convert", src, "--ontology", str(ONT), "--branch", "b", "--out", str(out),
                 "--images", "x"]) == 2
    assert "reader 'bb': argument --images: invalid int value: 'x'" in capsys.readouterr().err
    assert main(["--plugins", str(pf), "validate", src, "--ontology", str(ONT), "--from", "encord",
                 "--images", "3"]) == 2
    assert "reader 'encord' has no option --images" in capsys.readouterr().err
    assert main(["--plugins", str(pf), "validate", src, "--ontology", str(ONT), "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(PredportError, match="unknown option\\(s\\) 'imagez'"):
        predport.validate([src], ONT, plugins=[pf], options={"imagez": "1"})


def test_readers_that_tokenise_one_option_differently_are_a_usage_error(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pf = plugins_file(tmp_path, {"aa": 'nargs=2', "bb": "type=int"})
    assert main(["--plugins", str(pf), "formats"]) == 0  # listing the readers still works
    capsys.readouterr()
    assert main(["--plugins", str(pf), "validate", "x", "--ontology", str(ONT)]) == 2
    assert "readers declare --images with different numbers of values: aa (2), bb (one value)" in \
        capsys.readouterr().err


def test_plugins_are_loaded_once_per_run(tmp_path: Path) -> None:
    counter = tmp_path / "imported"
    pf = plugins_file(tmp_path, {"aa": 'metavar="DIR"'}, extra=f"open({str(counter)!r}, 'a').write('x')\n",
                      option="--aa-dir")
    (tmp_path / "in.aa").write_text(json.dumps([unit("aa.jpg")]))
    main(["--plugins", str(pf), "convert", str(tmp_path / "in.aa"), "--ontology", str(ONT), "--branch", "b",
          "--out", str(tmp_path / "out")])
    assert counter.read_text() == "x"


def test_a_reader_that_raises_is_named_with_its_exception(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "boom.py").write_text(
        "import predport\n\nclass Boom(predport.BaseReader):\n    name = 'boom'\n    description = 'x'\n"
        "    def detect(self, path):\n        return predport.Detection(1.0, 'all')\n"
        "    def read(self, path, ctx):\n        yield from ()\n        1 / 0\n\n"
        "@predport.hookimpl\ndef predport_readers():\n    return [Boom()]\n")
    (tmp_path / "p.yaml").write_text("readers:\n  boom: boom.py\n")
    out = tmp_path / "out"
    assert main(["--plugins", str(tmp_path / "p.yaml"), "convert", str(tmp_path / "boom.py"), "--from", "boom",
                 "--ontology", str(ONT), "--branch", "b", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"reader 'boom' failed on {tmp_path / 'boom.py'}: ZeroDivisionError: division by zero" in err
    assert "boom.py:10 in read: 1 / 0" in err and not out.exists()


def test_any_object_with_the_members_is_a_reader_and_one_without_is_refused(tmp_path: Path) -> None:
    (tmp_path / "duck.py").write_text(
        "import predport\n\nclass Duck:\n    name = 'duck'\n    description = 'no base class'\n"
        "    def detect(self, path):\n        return predport.Detection(0, 'never')\n"
        "    def read(self, path, ctx):\n        return iter(())\n\n"
        "class Lame:\n    name = 'lame'\n    description = 'no read'\n"
        "    def detect(self, path):\n        return predport.Detection(0, 'never')\n\n"
        "@predport.hookimpl\ndef predport_readers():\n    return [Duck()]\n")
    (tmp_path / "p.yaml").write_text("readers:\n  duck: duck.py\n")
    reg = plugins.load([tmp_path / "p.yaml"], entry_points=False)
    assert isinstance(reg.readers["duck"], predport.Reader)
    (tmp_path / "duck.py").write_text((tmp_path / "duck.py").read_text().replace("[Duck()]", "[Lame()]"))
    with pytest.raises(PredportError, match=r"plugin 'duck' \(.*\) returned .*Lame.* not a reader \(missing: read\)"):
        plugins.load([tmp_path / "p.yaml"], entry_points=False)


# -- the core's maps, on readers other than COCO -----------------------------------------------------------

def write_units(tmp_path: Path, units: list[dict[str, Any]]) -> Path:
    src = tmp_path / "units.json"
    src.write_text(json.dumps(units))
    return src


def test_class_map_applies_to_a_reader_that_writes_class_names(tmp_path: Path) -> None:
    src = write_units(tmp_path, [unit("a.jpg"), unit("b.jpg")])
    cmap = tmp_path / "classes.yaml"
    cmap.write_text("car: Car\n")
    report = predport.convert([src], ONT, "b", tmp_path / "out", fmt="predport", options={"class_map": str(cmap)})
    assert report.ok, [str(p) for p in report.problems]
    assert dict(report.objects) == {"Car": 2}
    unmapped = predport.validate([src], ONT, fmt="predport")
    assert [p.code for p in unmapped.problems] == ["class.unknown", "class.unknown"]


def test_image_map_renames_merges_frames_and_reports_what_it_lacks(tmp_path: Path) -> None:
    car = {"name": "Car"}
    units = [unit("a.jpg"), unit("b.jpg"), unit("c.jpg"), unit("d.jpg", width=20), unit("e.jpg"),
             {**unit("empty.jpg"), "objects": []}]
    for u in units:
        for o in u["objects"]:
            o["class"] = car
    src = write_units(tmp_path, units)
    imap = tmp_path / "images.yaml"
    imap.write_text("a.jpg: renamed.jpg\nb.jpg: {title: clip.mp4, frame: 4}\nc.jpg: {title: clip.mp4, frame: 0}\n"
                    "d.jpg: {title: clip.mp4, frame: 9}\n")
    report = predport.convert([src], ONT, "b", tmp_path / "out", fmt="predport", options={"image_map": str(imap)},
                              keep_going=True)
    problems = sorted((p.code, p.severity, p.location.pointer) for p in report.problems)
    assert problems == [("unit.frame_count_unknown", "warning", "/1"),  # (the video's source: its first image's)
                        ("unit.unmapped", "error", "/3"), ("unit.unmapped", "error", "/4"),
                        ("unit.unmapped", "info", None)]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(u["title"] for u in manifest["units"]) == ["clip.mp4", "renamed.jpg"]
    row = json.loads((tmp_path / "out" / "clip.mp4.json").read_text())
    [du] = row["data_units"].values()
    assert sorted(du["labels"]) == ["0", "4"]
    info = next(p for p in report.problems if p.severity == "info")
    assert "1 data unit(s) without predictions" in info.message and "'empty.jpg'" in info.message


def test_image_map_on_coco_keys_on_image_ids_and_reports_unmapped_images(tmp_path: Path) -> None:
    gt = json.loads((DATA / "coco" / "fce_gt_dataset.json").read_text())
    first, second = gt["images"][0], gt["images"][1]
    imap = tmp_path / "m.yaml"
    imap.write_text(f"{first['id']}: one.jpg\n{second['file_name']}: two.jpg\n")
    ont = coco_ontology(tmp_path / "o.json", gt["categories"])
    report = predport.validate([DATA / "coco" / "fce_dt_dataset.json"], ont, options={
        "images": str(DATA / "coco" / "fce_gt_dataset.json"), "image_map": str(imap)})
    unmapped = [p for p in report.problems if p.code == "unit.unmapped" and p.severity == "error"]
    with_predictions = {a["image_id"] for a in json.loads((DATA / "coco" / "fce_dt_dataset.json").read_text())}
    assert len(unmapped) == len(with_predictions - {first["id"], second["id"]})
    anns = json.loads((DATA / "coco" / "fce_dt_dataset.json").read_text())
    counts = report.per_group()
    assert sum(c["converted"] for c in counts.values()) == sum(a["image_id"] in (first["id"], second["id"])
                                                               for a in anns)
    assert sum(c["reported"] for c in counts.values()) == sum(a["image_id"] not in (first["id"], second["id"])
                                                              for a in anns) > 0


def test_documents_parsed_before_the_fork_are_held_and_later_ones_are_not(tmp_path: Path) -> None:
    """load_json puts what it parses into the run's Shared documents while they are open (before worker
    processes fork: every process then holds them, so that no worker frees, and so copies, their pages), and
    not after; a file it cannot parse is reported and held nowhere."""
    from predport.core.ontology import Ontology
    from predport.core.reader import ReadContext, Shared

    first, later, broken = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    first.write_text('[{"a": 1}]')
    later.write_text('{"b": 2}')
    broken.write_text("[1,")
    ctx = ReadContext(Ontology.from_dict({"objects": [], "classifications": []}), shared=Shared())
    assert ctx.load_json(first) == (True, [{"a": 1}])
    assert ctx.load_json(broken) == (False, None)
    assert ctx.shared is not None
    ctx.shared.open = False
    assert ctx.load_json(later) == (True, {"b": 2})
    assert ctx.shared.documents == [[{"a": 1}]]
    assert [p.code for p in ctx.problems.items] == ["source.unreadable"]


def test_head_lines_leave_out_a_line_the_head_cuts(tmp_path: Path) -> None:
    f = tmp_path / "labels.txt"
    f.write_bytes(b"\n a 1 \n\nb 2\n" + b"c" * 70_000 + b"\nd\n")
    assert predport.head_lines(f) == ["a 1", "b 2"]  # (c... is cut at 64 KB: left out, not taken as a line)
    assert predport.head_lines(f, count=1) == ["a 1"]
    assert predport.head_lines(f, size=1 << 20) == ["a 1", "b 2", "c" * 70_000, "d"]
    f.write_bytes(b"x" * 70_000)  # (one line, cut: all there is to look at)
    assert predport.head_lines(f) == ["x" * 65536]
    assert predport.file_head(f, 10) == b"x" * 10
