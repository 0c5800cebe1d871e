"""Cameras against the running server: a heartbeat gap turns a camera offline (in the layer the map
reads), and repeated AI events of one camera and kind within the window give one incident.

Each test adds its own camera to the shared demo database and removes it (with what it raised)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from conftest import ensure_token

from gis_core.incidents.cameras import parse_event
from gis_core.incidents.errors import ValidationFailed

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 64


def call(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture
def camera(demo_url):
    """A test camera at Cốc Lếu with a one-second heartbeat interval."""
    code = f"CAM-T{uuid.uuid4().hex[:6].upper()}"
    with psycopg.connect(demo_url) as conn:
        cam_id = conn.execute(
            "INSERT INTO cameras (code, name, kind, status, last_seen, heartbeat_interval_s, ai_enabled,"
            " commune_code, source, geom) VALUES (%s, 'Camera thử nghiệm ngã tư Cốc Lếu', 'traffic', 'offline',"
            " NULL, 1, true, '02647', 'test:incidents', ST_SetSRID(ST_MakePoint(103.9705, 22.4985), 4326))"
            " RETURNING id", (code,)).fetchone()[0]
    yield cam_id, code
    with psycopg.connect(demo_url) as conn:
        conn.execute("DELETE FROM camera_events WHERE camera_id = %s", (cam_id,))
        conn.execute("DELETE FROM incidents WHERE camera_id = %s", (cam_id,))
        conn.execute("DELETE FROM cameras WHERE id = %s", (cam_id,))


def ogc_status(server: str, cam_id: int) -> str:
    status, item = call("GET", f"{server}/ogc/collections/cameras/items/{cam_id}?f=json")
    assert status == 200
    return item["properties"]["status"]


def test_a_heartbeat_gap_turns_the_camera_offline_on_the_map(server, camera):
    cam_id, code = camera
    status, body = call("POST", f"{server}/api/cameras/{cam_id}/heartbeat")
    assert status == 200 and body["status"] == "online" and body["code"] == code
    assert ogc_status(server, cam_id) == "online"
    time.sleep(2.5)          # silent for longer than its one-second interval
    cams = {c["code"]: c for c in call("GET", f"{server}/api/cameras/status")[1]}
    assert cams[code]["live_status"] == "offline" and cams[code]["status"] == "offline"
    assert "stream_url" not in cams[code]
    assert ogc_status(server, cam_id) == "offline"
    # it comes back with its next heartbeat, addressed by code this time
    assert call("POST", f"{server}/api/cameras/{code}/heartbeat")[1]["status"] == "online"
    assert ogc_status(server, cam_id) == "online"
    assert call("POST", f"{server}/api/cameras/CAM-NOPE/heartbeat")[0] == 404


def test_ten_identical_events_within_the_window_give_one_incident(server, demo_url, camera):
    cam_id, code = camera
    event = {"camera": code, "kind": "traffic_jam", "confidence": 0.91}

    def send(_i: int) -> tuple[int, dict]:
        return call("POST", f"{server}/api/camera-events", event)

    with ThreadPoolExecutor(max_workers=10) as pool:      # at once: the dedup must hold under concurrency
        answers = list(pool.map(send, range(10)))
    assert sorted(s for s, _ in answers) == [200] * 9 + [201]
    tickets = {a["incident"] for _, a in answers}
    assert len(tickets) == 1 and sum(a["duplicate"] for _, a in answers) == 9
    with psycopg.connect(demo_url) as conn:
        rows = conn.execute("SELECT ticket_code, source, category, status, commune_code FROM incidents"
                            " WHERE camera_id = %s", (cam_id,)).fetchall()
        events = conn.execute("SELECT count(*), count(DISTINCT incident_id) FROM camera_events WHERE camera_id = %s",
                              (cam_id,)).fetchone()
    assert rows == [(tickets.pop(), "camera", "traffic", "new", "02647")]
    assert events == (10, 1)

    # another kind is another incident; a low-confidence event is kept but raises nothing
    status, other = call("POST", f"{server}/api/camera-events",
                         {"camera": cam_id, "kind": "accident", "confidence": 0.8,
                          "snapshot": base64.b64encode(JPEG).decode()})
    assert status == 201 and other["incident"] != rows[0][0]
    status, weak = call("POST", f"{server}/api/camera-events", {"camera": code, "kind": "smoke", "confidence": 0.2})
    assert status == 200 and weak["incident"] is None
    # once the first incident is closed, the same kind raises a new one
    code0 = rows[0][0]
    operator = ensure_token(demo_url, "operator")
    for to, extra in (("assigned", {}), ("in_progress", {}), ("resolved", {"answer": "Đã phân luồng."}),
                      ("closed", {})):
        assert call("POST", f"{server}/incidents/{code0}/transition", {"to": to, **extra}, operator)[0] == 200
    status, again = call("POST", f"{server}/api/camera-events", event)
    assert status == 201 and again["incident"] not in (code0, other["incident"])


def test_bad_events_are_refused(server, camera):
    cam_id, code = camera
    assert call("POST", f"{server}/api/camera-events", {"camera": "CAM-NOPE", "kind": "fire",
                                                         "confidence": 0.9})[0] == 404
    status, body = call("POST", f"{server}/api/camera-events", {"camera": code, "kind": "ufo", "confidence": 0.9})
    assert status == 400 and "kind" in body["fields"]
    status, body = call("POST", f"{server}/api/camera-events", {"camera": code, "kind": "fire", "confidence": 3,
                                                                "time": "2020-01-01T00:00:00+07:00"})
    assert status == 400 and set(body["fields"]) == {"confidence", "time"}
    status, body = call("POST", f"{server}/api/camera-events",
                        {"camera": code, "kind": "fire", "confidence": 0.9, "snapshot": "R0lGODlhAQABAAAAACw="})
    assert status == 415    # a GIF is not among the accepted snapshot types


def test_event_times_need_an_offset():
    with pytest.raises(ValidationFailed) as err:
        parse_event({"camera": "CAM-0001", "kind": "fire", "confidence": 0.5, "time": "2026-01-01T10:00:00"})
    assert "time" in err.value.fields
