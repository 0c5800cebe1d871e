"""Cameras: heartbeats, the sweep that turns silent cameras offline, and AI events turned into
incidents (source 'camera'), one incident per camera and kind while the situation lasts.

Offline is stored, not only computed, because the map reads the `cameras` layer through the OGC
API: `sweep_offline` writes it. It runs on every heartbeat and camera event, from the web app at
most every few seconds, and from `iocgis incidents cameras-sweep` (for a scheduler).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..errors import NotFound
from ..rows import one
from .errors import ValidationFailed
from .reports import check_photo
from .workflow import OPEN_STATUSES, NewIncident, create_incident

MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
FUTURE_SLACK = dt.timedelta(minutes=5)      # camera clocks drift; further ahead is a broken clock
MAX_AGE = dt.timedelta(days=1)              # an event older than this is history, not an alert
LOCK_SEED = 7_240_617                       # advisory locks of (camera, kind): see ingest_event


def _camera_where(ref: str | int) -> tuple[sql.Composable, Any]:
    """Cameras are addressed by numeric id or by code (CAM-0042)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and len(ref) < 19):
        return sql.SQL("id = %s"), int(ref)
    return sql.SQL("code = %s"), str(ref)


HEARTBEAT = """
UPDATE cameras SET last_seen = now(),
  status = CASE WHEN status = 'maintenance' THEN status ELSE 'online' END   -- maintenance is set by people
WHERE {where}
RETURNING id, code, status, last_seen, heartbeat_interval_s
"""

# A camera silent for longer than its own heartbeat interval is offline.
SWEEP = """
UPDATE cameras SET status = 'offline'
WHERE status = 'online' AND (last_seen IS NULL OR last_seen < now() - make_interval(secs => heartbeat_interval_s))
RETURNING code
"""


def heartbeat(conn: psycopg.Connection, ref: str | int) -> dict[str, Any]:
    where, value = _camera_where(ref)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(HEARTBEAT).format(where=where), (value,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"Không có camera {ref}.", f"No camera {ref}.")
        cur.execute(SWEEP)
    return row


def sweep_offline(conn: psycopg.Connection) -> list[str]:
    """Mark offline every online camera silent past its interval; return their codes."""
    with conn.transaction():
        return [r[0] for r in conn.execute(SWEEP).fetchall()]


def status(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every camera's stored status and what its heartbeats say right now (no stream URL)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("""
            SELECT id, code, name, kind, status, last_seen, heartbeat_interval_s, commune_code,
                   CASE WHEN status = 'maintenance' THEN 'maintenance'
                        WHEN last_seen IS NOT NULL
                         AND last_seen >= now() - make_interval(secs => heartbeat_interval_s) THEN 'online'
                        ELSE 'offline' END AS live_status
            FROM cameras ORDER BY code""")
        return cur.fetchall()


# -- AI events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraEvent:
    camera: str | int
    kind: str
    confidence: float
    observed_at: dt.datetime
    snapshot_type: str | None = None
    snapshot: bytes | None = None


def _parse_time(value: Any, now: dt.datetime) -> dt.datetime | None:
    if value is None or value == "":
        return now
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None   # a time without its offset is ambiguous


def parse_event(data: Mapping[str, Any], snapshot: bytes | None = None,
                now: dt.datetime | None = None) -> CameraEvent:
    """Check an event's fields, all problems at once (ValidationFailed, 400)."""
    now = now or dt.datetime.now(dt.UTC)
    errors: dict[str, tuple[str, str]] = {}
    camera = data.get("camera", data.get("camera_id"))
    if isinstance(camera, bool) or not isinstance(camera, (str, int)) or str(camera).strip() == "":
        errors["camera"] = ("Thiếu mã camera.", "The camera is missing.")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        errors["kind"] = ("Thiếu loại sự kiện.", "The event kind is missing.")
    raw_conf = data.get("confidence")
    confidence: float | None = None
    if isinstance(raw_conf, (int, float, str)) and not isinstance(raw_conf, bool):
        try:
            confidence = float(raw_conf)
        except ValueError:
            confidence = None
    if confidence is None or not math.isfinite(confidence) or not 0 <= confidence <= 1:
        errors["confidence"] = ("Độ tin cậy phải là số từ 0 đến 1.", "The confidence must be a number from 0 to 1.")
    observed = _parse_time(data.get("time", data.get("observed_at")), now)
    if observed is None:
        errors["time"] = ("Thời điểm phải theo ISO 8601 kèm múi giờ.", "The time must be ISO 8601 with an offset.")
    elif observed > now + FUTURE_SLACK or observed < now - MAX_AGE:
        errors["time"] = ("Thời điểm không hợp lý (quá xa hiện tại).", "The time is implausible (too far from now).")
    raw_snapshot = snapshot
    encoded = data.get("snapshot")
    if raw_snapshot is None and isinstance(encoded, str) and encoded:
        if len(encoded) > MAX_SNAPSHOT_BYTES * 4 // 3 + 8:
            raw_snapshot = b"\0" * (MAX_SNAPSHOT_BYTES + 1)     # let check_photo say it is too large
        else:
            try:
                raw_snapshot = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                errors["snapshot"] = ("Ảnh chụp phải mã hóa base64.", "The snapshot must be base64.")
    if errors:
        raise ValidationFailed(errors)
    photo = check_photo(raw_snapshot, MAX_SNAPSHOT_BYTES) if raw_snapshot is not None else None
    assert isinstance(kind, str) and confidence is not None and observed is not None and camera is not None
    return CameraEvent(camera if isinstance(camera, int) else str(camera).strip(), kind.strip(), confidence,
                       observed, photo.media_type if photo else None, photo.data if photo else None)


CAMERA = """
SELECT id, code, name, commune_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM cameras WHERE {where}
"""

# The incident an earlier event of this camera and kind raised, if that event is within the window
# of this one and the incident is still open.
PREVIOUS = """
SELECT i.id, i.ticket_code FROM camera_events e JOIN incidents i ON i.id = e.incident_id
WHERE e.camera_id = %(camera_id)s AND e.kind = %(kind)s
  AND e.observed_at BETWEEN %(observed)s - make_interval(secs => %(window)s)
                        AND %(observed)s + make_interval(secs => %(window)s)
  AND i.status = ANY(%(open)s)
ORDER BY e.observed_at DESC LIMIT 1
"""

INSERT_EVENT = """
INSERT INTO camera_events (camera_id, kind, confidence, observed_at, incident_id, duplicate, snapshot_type, snapshot)
VALUES (%(camera_id)s, %(kind)s, %(confidence)s, %(observed)s, %(incident_id)s, %(duplicate)s,
        %(snapshot_type)s, %(snapshot)s)
RETURNING id
"""


def ingest_event(conn: psycopg.Connection, event: CameraEvent) -> dict[str, Any]:
    """Store the event; raise an incident, or attach it to the one the same camera and kind raised
    within the kind's window. Returns {event_id, incident (ticket or None), duplicate, created}."""
    where, value = _camera_where(event.camera)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(CAMERA).format(where=where), (value,))
        camera = cur.fetchone()
        if camera is None:
            raise NotFound(f"Không có camera {event.camera}.", f"No camera {event.camera}.")
        cur.execute("SELECT category, dedup_window_s, min_confidence, name_vi FROM camera_event_kinds WHERE kind = %s",
                    (event.kind,))
        kind = cur.fetchone()
        if kind is None:
            raise ValidationFailed({"kind": (f"Loại sự kiện không hỗ trợ: {event.kind!r}.",
                                             f"Unsupported event kind: {event.kind!r}.")})
        # An event is a sign of life too.
        cur.execute("UPDATE cameras SET last_seen = greatest(last_seen, now()),"
                    " status = CASE WHEN status = 'maintenance' THEN status ELSE 'online' END WHERE id = %s",
                    (camera["id"],))
        # Concurrent events of one camera and kind queue here, so that two of them cannot both see
        # "no open incident" and raise two.
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))",
                    (f"{camera['id']}:{event.kind}", LOCK_SEED))
        params = {"camera_id": camera["id"], "kind": event.kind, "confidence": event.confidence,
                  "observed": event.observed_at, "snapshot_type": event.snapshot_type,
                  "snapshot": event.snapshot, "window": kind["dedup_window_s"], "open": list(OPEN_STATUSES)}
        incident: dict[str, Any] | None = None
        duplicate = created = False
        if event.confidence >= float(kind["min_confidence"]):
            cur.execute(PREVIOUS, params)
            incident = cur.fetchone()
            duplicate = incident is not None
            if incident is None:
                description = (f"Camera AI phát hiện {kind['name_vi']} (độ tin cậy {event.confidence:.0%})"
                               f" tại {camera['name']}")
                incident = create_incident(conn, NewIncident(
                    category=kind["category"], source="camera", description=description, lon=camera["lon"],
                    lat=camera["lat"], commune_code=camera["commune_code"], data_source="camera:ai",
                    actor=f"camera:{camera['code']}", camera_id=camera["id"]))
                created = True
        cur.execute(INSERT_EVENT, {**params, "incident_id": incident["id"] if incident else None,
                                   "duplicate": duplicate})
        event_id = one(cur)["id"]
    return {"event_id": event_id, "camera": camera["code"], "incident": incident["ticket_code"] if incident else None,
            "duplicate": duplicate, "created": created}
