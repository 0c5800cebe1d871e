"""Endpoints for machines: camera heartbeats and AI camera events.

Kept apart from the public and the operator blueprints so that device credentials (a token per
camera or per video-analytics box, in the access-control issue) can guard exactly these routes.
"""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, request

from gis_core.incidents import cameras
from gis_core.incidents.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

from .incidents_common import database, incident_settings, install_error_handlers, json_response

blueprint = Blueprint("devices", __name__)
install_error_handlers(blueprint)
MAX_EVENT_BYTES = cameras.MAX_SNAPSHOT_BYTES * 4 // 3 + 64 * 1024   # a base64 snapshot and the fields


@blueprint.before_app_request
def _sweep_cameras():
    """Silent cameras turn offline on the map even when no scheduler runs the sweep: at most every
    camera_sweep_s seconds, the first request to come along runs it (one UPDATE on a small table)."""
    every = incident_settings().camera_sweep_s
    sweep = current_app.extensions["iocgis"].setdefault("camera_sweep", {"at": 0.0, "lock": threading.Lock()})
    if every <= 0 or time.monotonic() - sweep["at"] < every or not sweep["lock"].acquire(blocking=False):
        return
    try:
        sweep["at"] = time.monotonic()
        with database().connection(actor="system:camera-sweep") as conn:
            cameras.sweep_offline(conn)
    except Exception:   # noqa: BLE001 - a failed sweep must never fail the page that triggered it
        current_app.logger.exception("camera sweep failed")
    finally:
        sweep["lock"].release()


@blueprint.post("/api/cameras/<ref>/heartbeat")
def heartbeat(ref: str):
    with database().connection(actor=f"device:{ref}") as conn:
        row = cameras.heartbeat(conn, ref)
    return json_response(row)


@blueprint.get("/api/cameras/status")
def status():
    """Stored status and live status (from the heartbeats) of every camera; no stream addresses."""
    with database().connection(actor="system:camera-sweep") as conn:
        cameras.sweep_offline(conn)
        return json_response(cameras.status(conn))


@blueprint.post("/api/camera-events")
def camera_event():
    request.max_content_length = MAX_EVENT_BYTES
    if request.content_length is not None and request.content_length > MAX_EVENT_BYTES:
        raise PayloadTooLarge("Sự kiện quá lớn.", "The event is too large.")
    snapshot = None
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValidationFailed({"body": ("Nội dung JSON không hợp lệ.", "The JSON body is invalid.")})
    elif request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        data = request.form.to_dict()
        upload = request.files.get("snapshot")
        if upload is not None and upload.filename:
            snapshot = upload.stream.read(cameras.MAX_SNAPSHOT_BYTES + 1)
    else:
        raise UnsupportedMediaType("Gửi JSON hoặc biểu mẫu.", "Send JSON or a form.")
    event = cameras.parse_event(data, snapshot)
    with database().connection(actor=f"device:{event.camera}") as conn:
        result = cameras.ingest_event(conn, event)
    return json_response(result, 201 if result["created"] else 200)
