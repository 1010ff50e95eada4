"""Uploads through the real encord SDK, over HTTP, to a stand-in Encord API on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import predport
from conftest import DATA
from encord_stub import PROJECT, Fault, Server, State, Unit
from predport.cli import main
from predport.core.upload import Connection, upload
from sdk_oracle import assert_close, canonical, parse, sdk_ontology

ONT = DATA / "encord" / "reference" / "ontology.json"
BOX = {"shape": "bounding_box", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2}
UNITS = [Unit("d1", "img1.jpg"), Unit("d2", "img2.jpg"), Unit("d3", "clip.mp4", "video", frames=20, fps=2.0)]


def predictions() -> list[dict[str, Any]]:
    return [
        {"title": "img1.jpg", "kind": "image", "width": 640, "height": 480, "classifications": [
            {"id": "c1", "class": {"name": "Weather"}, "frames": [[0, 0]], "confidence": 0.7,
             "answers": [{"attribute": {"name": "Weather"}, "radio": {"name": "Rainy"}},
                         {"attribute": {"name": "Rain intensity"}, "radio": {"name": "Light"}}]}],
         "objects": [
             {"id": "o1", "class": {"name": "Car"}, "frames": [{"frame": 0, "geometry": BOX, "confidence": 0.9}],
              "answers": [{"attribute": {"name": "Plate"}, "text": "AB-1"}]},
             {"id": "o2", "class": {"name": "Animal"}, "frames": [{"frame": 0, "geometry": BOX, "confidence": 0.4}],
              "answers": [{"attribute": {"name": "Species"}, "radio": {"name": "Dog"}},
                          {"attribute": {"name": "Dog features"}, "checklist": [{"name": "Spotted"}]}]}]},
        {"title": "img2.jpg", "kind": "image", "width": 640, "height": 480, "classifications": [], "objects": [
            {"id": "p1", "class": {"name": "Building"}, "frames": [{"frame": 0, "confidence": 0.6, "geometry": {
                "shape": "polygon", "polygons": [[[0.5, 0.5, 0.9, 0.5, 0.9, 0.9, 0.5, 0.9],
                                                  [0.6, 0.6, 0.6, 0.8, 0.8, 0.8, 0.8, 0.6]]]}}]}]},
        {"title": "clip.mp4", "kind": "video", "width": 640, "height": 480, "frame_count": 20, "objects": [
            {"id": "t1", "class": {"name": "Car"},
             "frames": [{"frame": f, "geometry": {**BOX, "x": 0.1 + f / 100}, "confidence": 0.5} for f in range(4)],
             "answers": [{"attribute": {"name": "Moving"}, "radio": {"name": "no"}, "frames": [[0, 1]]},
                         {"attribute": {"name": "Moving"}, "radio": {"name": "yes"}, "frames": [[2, 3]]}]}],
         "classifications": [{"id": "k1", "class": {"name": "Scene tags"}, "frames": [[2, 5]],
                              "answers": [{"attribute": {"name": "Scene tags"}, "checklist": [{"name": "Night"}]}]}]},
    ]


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    src = tmp_path / "preds.json"
    src.write_text(json.dumps(predictions()))
    out = tmp_path / "out"
    assert predport.convert([src], ONT, "model-v1", out, fmt="predport").ok
    return out


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    state = State(json.loads(ONT.read_text()), list(UNITS))
    # ground truth on MAIN for two units
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps([{**predictions()[0], "title": "img1.jpg"}, {**predictions()[2], "title": "clip.mp4"}]))
    assert predport.convert([gt], ONT, "gt", tmp_path / "gt", fmt="predport").ok
    for dh, title in (("d1", "img1.jpg"), ("d3", "clip.mp4")):
        row = json.loads((tmp_path / "gt" / f"{title}.json").read_text())
        [du] = row["data_units"].values()
        du["data_hash"] = dh
        row.update(label_hash=f"main-{dh}", data_hash=dh, branch_name="main", data_units={dh: du})
        state.rows[(dh, "main")] = row
    srv = Server(state)
    yield srv
    srv.close()


def conn(server: Server, tmp_path: Path, **kw: Any) -> Connection:
    token = tmp_path / "token"
    token.write_text(server.state.token)
    return Connection(PROJECT, token_file=str(token), domain=server.url, backoff=0.01, sdk_backoff=0.01, **kw)


def main_rows(server: Server) -> str:
    return json.dumps({f"{k[0]}": v for k, v in server.state.rows.items() if k[1] == "main"}, sort_keys=True)


def branch_rows(server: Server, branch: str) -> dict[str, dict[str, Any]]:
    return {r["data_title"]: r for (_, b), r in server.state.rows.items() if b == branch}


def assert_branch_holds(server: Server, converted: Path) -> None:
    ont = sdk_ontology(json.loads(ONT.read_text()))
    rows = branch_rows(server, "model-v1")
    manifest = json.loads((converted / "manifest.json").read_text())
    assert set(rows) == {u["title"] for u in manifest["units"]}
    for unit in manifest["units"]:
        written = json.loads((converted / unit["file"]).read_text())
        live = rows[unit["title"]]
        assert_close(canonical(parse(live, ont)), canonical(parse(written, ont, media_from=live)))
        assert rows[unit["title"]]["branch_name"] == "model-v1"


def saves(server: Server) -> list[dict[str, Any]]:
    return [e for e in server.state.log if (e["query_type"], e["query_method"]) == ("labelrow", "POST")]


def test_upload_replace_idempotent_and_main_untouched(server: Server, converted: Path, tmp_path: Path) -> None:
    before_main = main_rows(server)
    report = upload(converted, conn(server, tmp_path))
    assert report.ok, [str(p) for p in report.problems]
    assert [e.action for e in report.plan] == ["create", "create", "create"]
    assert_branch_holds(server, converted)
    assert main_rows(server) == before_main
    assert all(e.get("branch") in (None, "model-v1") for e in server.state.log)  # nothing ever asked for main
    n_saves = len(saves(server))
    again = upload(converted, conn(server, tmp_path))  # the same upload again: nothing to do
    assert [e.action for e in again.plan] == ["unchanged"] * 3 and again.saved == 0
    assert len(saves(server)) == n_saves
    assert_branch_holds(server, converted)
    assert main_rows(server) == before_main


def test_reupload_after_reconvert_replaces_without_duplicates(server: Server, converted: Path,
                                                              tmp_path: Path) -> None:
    assert upload(converted, conn(server, tmp_path)).ok
    preds = predictions()
    preds[0]["objects"] = preds[0]["objects"][:1]  # the model now finds one object on img1
    src = tmp_path / "preds2.json"
    src.write_text(json.dumps(preds))
    out2 = tmp_path / "out2"
    assert predport.convert([src], ONT, "model-v1", out2, fmt="predport").ok
    report = upload(out2, conn(server, tmp_path))
    assert {e.title: (e.action, e.before, e.after) for e in report.plan}["img1.jpg"] == ("replace", (2, 1), (1, 1))
    assert_branch_holds(server, out2)


def test_dry_run_sends_no_write(server: Server, converted: Path, tmp_path: Path, capsys: Any) -> None:
    token = tmp_path / "token"
    token.write_text(server.state.token)
    code = main(["upload", str(converted), "--project", PROJECT, "--domain", server.url, "--token-file", str(token),
                 "--dry-run"])
    out = capsys.readouterr()
    assert code == 0
    assert server.state.writes() == []
    assert "create    clip.mp4: objects 0 -> 1, classifications 0 -> 1" in out.out
    assert "would save 3 label row(s)" in out.err
    assert server.state.token not in out.out + out.err


def test_rate_limits_and_server_errors_are_retried(server: Server, converted: Path, tmp_path: Path) -> None:
    state = server.state
    state.faults = [Fault(lambda qt, qm: (qt, qm) == ("labelrow", "POST"), 429, 5),
                    Fault(lambda qt, qm: (qt, qm) == ("labelrowmetadata", "GET"), 500, 2)]
    report = upload(converted, conn(server, tmp_path, sdk_retries=1), bundle_size=1)
    assert report.ok and report.saved == 3
    assert all(f.times == 0 for f in state.faults)
    assert_branch_holds(server, converted)


def test_rate_limit_exhausted_gives_a_clear_message(server: Server, converted: Path, tmp_path: Path) -> None:
    server.state.faults = [Fault(lambda qt, qm: (qt, qm) == ("labelrow", "POST"), 429, 1000)]
    with pytest.raises(predport.PredportError, match=r"0 of 3 row\(s\) were saved; re-run the same command"):
        upload(converted, conn(server, tmp_path, retries=1, sdk_retries=0))


def test_killed_mid_upload_then_rerun_completes(server: Server, converted: Path, tmp_path: Path) -> None:
    state = server.state
    state.hold_save = 2  # the second save request (bundle size 1: the second row) never comes back
    token = tmp_path / "token"
    token.write_text(state.token)
    proc = subprocess.Popen([sys.executable, "-m", "predport.cli", "upload", str(converted), "--project", PROJECT,
                             "--domain", server.url, "--token-file", str(token), "--bundle-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    assert state.held.wait(60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state.release.set()
    state.hold_save = None
    done_before = {t for t, r in branch_rows(server, "model-v1").items() if r["data_units"] and any(
        du["labels"] for du in r["data_units"].values())}
    assert len(done_before) == 1  # one row made it before the kill
    report = upload(converted, conn(server, tmp_path), bundle_size=1)
    assert report.ok
    # all three rows were created (one bundle) before the kill, one was saved: it is not sent again
    assert sorted(e.action for e in report.plan) == ["replace", "replace", "unchanged"]
    assert report.saved == 2
    assert_branch_holds(server, converted)


def test_missing_unit_is_located_and_nothing_sent(server: Server, tmp_path: Path) -> None:
    preds = predictions()
    preds[1]["title"] = "not-in-project.jpg"
    src = tmp_path / "p.json"
    src.write_text(json.dumps(preds))
    out = tmp_path / "o"
    assert predport.convert([src], ONT, "model-v1", out, fmt="predport").ok
    report = upload(out, conn(server, tmp_path))
    [p] = [p for p in report.problems if p.severity == "error"]
    assert (p.code, p.location.file) == ("upload.unit_missing", str(out / "not-in-project.jpg.json"))
    assert server.state.writes() == []


def test_revalidated_against_the_project_ontology(server: Server, converted: Path, tmp_path: Path) -> None:
    server.state.ontology = {**server.state.ontology,
                             "objects": [o for o in server.state.ontology["objects"] if o["name"] != "Building"]}
    report = upload(converted, conn(server, tmp_path))
    assert [p.code for p in report.problems if p.severity == "error"] == ["class.unknown"]
    assert server.state.writes() == []


def test_delete_branch_empties_it_and_refuses_main(server: Server, converted: Path, tmp_path: Path,
                                                   capsys: Any) -> None:
    before_main = main_rows(server)
    assert upload(converted, conn(server, tmp_path)).ok
    token = tmp_path / "token"
    token.write_text(server.state.token)
    args = ["--project", PROJECT, "--domain", server.url, "--token-file", str(token)]
    assert main(["delete-branch", "main", *args]) == 1
    assert "branch 'main' holds ground truth" in capsys.readouterr().out
    assert main(["delete-branch", "model-v1", *args]) == 0
    ont = sdk_ontology(json.loads(ONT.read_text()))
    for row in branch_rows(server, "model-v1").values():
        lr = parse(row, ont)
        assert lr.get_object_instances() == [] and lr.get_classification_instances() == []
    assert main_rows(server) == before_main
    capsys.readouterr()
    assert main(["branches", *args]) == 0
    listing = capsys.readouterr().out
    assert "model-v1: 3 data unit(s)" in listing and "  img1.jpg: 0 object(s), 0 classification(s)" in listing
    assert "main: 2 data unit(s)" in listing and "  clip.mp4: 1 object(s), 1 classification(s)" in listing


def test_branches_of_an_output_directory(converted: Path, capsys: Any) -> None:
    assert main(["branches", str(converted)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "model-v1: 3 data unit(s)", "  clip.mp4: 1 object(s), 1 classification(s)",
        "  img1.jpg: 2 object(s), 1 classification(s)", "  img2.jpg: 1 object(s), 0 classification(s)"]


def test_bad_credentials_and_project(server: Server, converted: Path, tmp_path: Path, capsys: Any) -> None:
    token = tmp_path / "token"
    token.write_text("wrong-token-123")
    code = main(["upload", str(converted), "--project", PROJECT, "--domain", server.url, "--token-file", str(token),
                 "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "not allowed" in err and "wrong-token-123" not in err
    token.write_text(server.state.token)
    code = main(["upload", str(converted), "--project", "99999999-9999-9999-9999-999999999999", "--domain",
                 server.url, "--token-file", str(token), "--retries", "0"])
    assert code == 2 and "not found" in capsys.readouterr().err
    assert server.state.writes() == []


def test_convert_straight_through(server: Server, tmp_path: Path) -> None:
    src = tmp_path / "preds.json"
    src.write_text(json.dumps(predictions()))
    token = tmp_path / "token"
    token.write_text(server.state.token)
    code = main(["convert", str(src), "--from", "predport", "--branch", "model-v1", "--project", PROJECT,
                 "--domain", server.url, "--token-file", str(token)])  # ontology: the project's
    assert code == 0
    assert set(branch_rows(server, "model-v1")) == {"img1.jpg", "img2.jpg", "clip.mp4"}


def test_convert_straight_through_prints_one_json_document(server: Server, tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "preds.json"
    src.write_text(json.dumps(predictions()))
    token = tmp_path / "token"
    token.write_text(server.state.token)
    code = main(["convert", str(src), "--from", "predport", "--branch", "model-v1", "--project", PROJECT,
                 "--domain", server.url, "--token-file", str(token), "--format", "json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)  # one document: json.loads refuses two
    assert doc["ok"] and doc["summary"]["data_units"] == 3 and doc["upload"]["saved"] == 3
    assert {e["title"]: e["action"] for e in doc["upload"]["plan"]} == {
        "img1.jpg": "create", "img2.jpg": "create", "clip.mp4": "create"}


def test_ssh_key_authentication(server: Server, converted: Path, tmp_path: Path, capsys: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    server.state.ssh_public_hex = key.public_key().public_bytes(serialization.Encoding.Raw,
                                                                serialization.PublicFormat.Raw).hex()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(pem)
    code = main(["upload", str(converted), "--project", PROJECT, "--domain", server.url, "--ssh-key", str(key_file)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "PRIVATE KEY" not in out.out + out.err
    assert_branch_holds(server, converted)


def test_ambiguous_title_and_kind_mismatch(server: Server, tmp_path: Path) -> None:
    server.state.units.append(Unit("d4", "img2.jpg"))  # a second data unit titled img2.jpg
    preds = predictions()
    preds[0]["kind"] = "video"  # img1.jpg is an image in the project
    preds[0]["frame_count"] = 1
    src = tmp_path / "p.json"
    src.write_text(json.dumps(preds))
    out = tmp_path / "o"
    assert predport.convert([src], ONT, "model-v1", out, fmt="predport").ok
    report = upload(out, conn(server, tmp_path))
    assert sorted((p.code, Path(p.location.file).name) for p in report.problems if p.severity == "error") == [
        ("upload.kind_mismatch", "img1.jpg.json"), ("upload.unit_ambiguous", "img2.jpg.json")]
    assert server.state.writes() == []


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz"])
def test_a_one_file_output_uploads_as_the_directory_does(server: Server, converted: Path, tmp_path: Path,
                                                        name: str, capsys: Any) -> None:
    src = tmp_path / "preds.json"
    one = tmp_path / name
    assert predport.convert([src], ONT, "model-v1", one, fmt="predport").ok
    assert main(["branches", str(one)]) == 0  # (what it holds, read through its manifest)
    assert capsys.readouterr().out.splitlines()[0] == "model-v1: 3 data unit(s)"
    report = upload(one, conn(server, tmp_path))
    assert report.ok, [str(p) for p in report.problems]
    assert [(e.action, e.file) for e in report.plan] == [("create", f"line {k}") for k in (1, 2, 3)]
    assert_branch_holds(server, converted)  # (the same rows as the directory form's)
    assert [e.action for e in upload(one, conn(server, tmp_path)).plan] == ["unchanged"] * 3
