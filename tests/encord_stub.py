"""A stand-in for the Encord API on 127.0.0.1, for testing uploads with the real SDK over HTTP.

Modelled on shared/reference/generators/fake_server.py (the server used to capture the SDK's exchange):
the `/public` RPC endpoint (labelrowmetadata GET, labelrow PUT / GET / POST) and the v2 project, ontology and
branches endpoints. Assumptions, not platform facts: no branch name means "main"; saves replace the stored row.
It adds several data units (images and a video) with ground truth on MAIN, a request log, injected errors
(HTTP 429 / 500 for chosen requests) and a gate that holds a chosen save request until the test releases it
(to kill a client mid-upload).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT = "11111111-1111-1111-1111-111111111111"
ONTOLOGY = "22222222-2222-2222-2222-222222222222"
DATASET = "33333333-3333-3333-3333-333333333333"
T = "2025-01-01 00:00:00"


@dataclass
class Unit:
    data_hash: str
    title: str
    data_type: str = "image"  # image | video
    width: int = 640
    height: int = 480
    frames: int = 1
    fps: float = 1.0


@dataclass
class Fault:
    """Answer matching requests with ``status`` (``times`` times)."""

    match: Callable[[str, str], bool]  # (query_type, query_method) -> bool
    status: int
    times: int


@dataclass
class State:
    ontology: dict[str, Any]
    units: list[Unit]
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (data_hash, branch) -> row
    log: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    hold_save: int | None = None  # hold the n-th save request (1-based) ...
    held: threading.Event = field(default_factory=threading.Event)  # ... set once it is held
    release: threading.Event = field(default_factory=threading.Event)
    saves: int = 0
    token: str = "secret-token"
    ssh_public_hex: str | None = None  # also accept requests signed with this ed25519 key
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unit(self, data_hash: str) -> Unit:
        return next(u for u in self.units if u.data_hash == data_hash)

    def writes(self) -> list[dict[str, Any]]:
        return [e for e in self.log if (e["query_type"], e["query_method"]) in (("labelrow", "PUT"),
                                                                                ("labelrow", "POST"))]


def empty_row(unit: Unit, branch: str, label_hash: str) -> dict[str, Any]:
    du: dict[str, Any] = {"data_hash": unit.data_hash, "data_title": unit.title, "data_link": "",
                          "data_type": "video/mp4" if unit.data_type == "video" else "image/jpeg",
                          "data_sequence": 0, "width": unit.width, "height": unit.height, "labels": {}}
    if unit.data_type == "video":
        du["data_fps"] = unit.fps
        du["data_duration"] = unit.frames / unit.fps
    return {
        "label_hash": label_hash, "branch_name": branch, "created_at": T, "last_edited_at": T,
        "data_hash": unit.data_hash, "dataset_hash": DATASET, "dataset_title": "ds", "data_title": unit.title,
        "data_type": unit.data_type, "annotation_task_status": "QUEUED", "is_shadow_data": False,
        "object_answers": {}, "classification_answers": {}, "object_actions": {}, "label_status": "LABEL_IN_PROGRESS",
        "data_units": {unit.data_hash: du}, "spaces": {},
    }


def metadata(unit: Unit, branch: str, label_hash: str | None) -> dict[str, Any]:
    # the platform sends metadata data types in upper case (the SDK reads them with from_upper_case_string)
    return {"label_hash": label_hash, "branch_name": branch, "data_hash": unit.data_hash, "dataset_hash": DATASET,
            "dataset_title": "ds", "data_title": unit.title, "data_type": unit.data_type.upper(), "data_link": None,
            "spaces": {}, "label_status": "NOT_LABELLED" if label_hash is None else "LABEL_IN_PROGRESS",
            "annotation_task_status": "QUEUED", "number_of_frames": unit.frames, "width": unit.width,
            "height": unit.height, "frames_per_second": unit.fps if unit.data_type == "video" else None,
            "duration": unit.frames / unit.fps if unit.data_type == "video" else None,
            "created_at": None if label_hash is None else T, "last_edited_at": None if label_hash is None else T}


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, obj: Any, status: int = 200) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self, body: bytes | None = None) -> bool:
            auth = self.headers.get("Authorization") or ""
            if state.ssh_public_hex and _ssh_ok(state.ssh_public_hex, auth, body, dict(self.headers)):
                return True
            if auth != f"Bearer {state.token}":
                self._send({"status": 401, "response": ["AUTHENTICATION_ERROR"], "payload": "bad token"}, 401)
                return False
            return True

        def do_GET(self) -> None:
            with state.lock:
                state.log.append({"method": "GET", "path": self.path, "query_type": None, "query_method": None})
            if not self._authorised():
                return
            if self.path.startswith(f"/v2/public/projects/{PROJECT}/branches"):
                names = sorted({b for _, b in state.rows} | {"main"})
                return self._send({"results": [{"name": n} for n in names], "next_page_token": None})
            if self.path.startswith(f"/v2/public/projects/{PROJECT}"):
                return self._send({"project_hash": PROJECT, "project_type": "workflow", "status": "inProgress",
                                   "title": "p", "description": "", "created_at": T, "creator_email": "a@b.c",
                                   "last_edited_at": T, "ontology_hash": ONTOLOGY, "editor_ontology": state.ontology})
            if self.path.startswith(f"/v2/public/ontologies/{ONTOLOGY}"):
                return self._send({"ontology_uuid": ONTOLOGY, "title": "o", "description": "",
                                   "editor": state.ontology, "created_at": T, "last_edited_at": T, "user_role": None})
            self._send({"message": "not found"}, 404)

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(n)
            body = json.loads(raw or b"null")
            qt, qm = body["query_type"], body["query_method"]
            uid, payload = body["values"]["uid"], body["values"]["payload"]
            with state.lock:
                state.log.append({"method": "POST", "path": self.path, "query_type": qt, "query_method": qm,
                                  "branch": (payload or {}).get("branch_name"), "uid": uid})
                fault = next((f for f in state.faults if f.times > 0 and f.match(qt, qm)), None)
                if fault is not None:
                    fault.times -= 1
            if not self._authorised(raw):
                return
            if self.headers.get("ResourceID") != PROJECT:
                return self._send({"status": 404, "response": ["RESOURCE_NOT_FOUND_ERROR"], "payload": "no"}, 200)
            if fault is not None:
                return self._send({"status": fault.status, "response": ["ERROR"], "payload": "injected"},
                                  fault.status)
            if qt == "labelrow" and qm == "POST":
                with state.lock:
                    state.saves += 1
                    hold = state.hold_save == state.saves
                if hold:
                    state.held.set()
                    state.release.wait(30)
                    return self._send({"status": 500, "response": ["ERROR"], "payload": "held"}, 500)
            with state.lock:
                if qt == "labelrowmetadata" and qm == "GET":
                    branch = payload.get("branch_name") or "main"
                    hashes = payload.get("data_hashes") or [u.data_hash for u in state.units]
                    out = []
                    for dh in hashes:
                        unit = state.unit(dh)
                        if payload.get("data_title_eq") not in (None, unit.title):
                            continue
                        row = state.rows.get((dh, branch))
                        out.append(metadata(unit, branch, row["label_hash"] if row else None))
                    return self._send({"status": 200, "response": out})
                if qt == "labelrow" and qm == "PUT":
                    branch = payload.get("branch_name") or "main"
                    out = []
                    for dh in uid:
                        row = state.rows.get((dh, branch)) or empty_row(state.unit(dh), branch, str(uuid.uuid4()))
                        state.rows[(dh, branch)] = row
                        out.append(copy.deepcopy(row))
                    return self._send({"status": 200, "response": out})
                if qt == "labelrow" and qm == "GET":
                    by_label = {r["label_hash"]: r for r in state.rows.values()}
                    return self._send({"status": 200, "response": [copy.deepcopy(by_label[u]) for u in uid]})
                if qt == "labelrow" and qm == "POST":
                    by_label = {r["label_hash"]: k for k, r in state.rows.items()}
                    for lh, lab in zip(uid, payload["labels"], strict=True):
                        key = by_label[lh]
                        if lab.get("branch_name") != key[1]:
                            return self._send({"status": 400, "response": ["BRANCH_MISMATCH"], "payload": ""}, 400)
                        state.rows[key] = copy.deepcopy(lab)
                    return self._send({"status": 200, "response": True})
            self._send({"status": 400, "response": "unsupported"}, 400)

    return Handler


def _ssh_ok(public_hex: str, auth: str, body: bytes | None, headers: dict[str, str]) -> bool:
    """v1 (RPC) requests: "<public key hex>:<signature of sha256(body)>"; v2 requests carry the key id in
    their HTTP message signature headers (accepted on the key id alone here)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if body is None:
        return any(public_hex in v for v in headers.values())
    key_hex, _, sig_hex = auth.partition(":")
    if key_hex != public_hex:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(sig_hex), hashlib.sha256(body).digest())
        return True
    except (InvalidSignature, ValueError):
        return False


class Server:
    """Start with ``Server(state)``; ``url`` is the domain to give the SDK; ``close()`` stops it."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.state.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
