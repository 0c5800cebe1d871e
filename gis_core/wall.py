"""The numbers on the video wall: open and overdue incidents, flagged permits, cameras offline,
indicators off target; the newest incidents; open incidents per commune.

Permits flagged: when the zoning work's `permit_checks` table exists and holds verdicts, it is the
source (verdict 'non_compliant'); otherwise a plain rule here: a live permit (submitted or approved)
whose footprint's inner point lies in a zone of its commune whose maximum height or floors it exceeds.
The result says which source it used.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from . import indicators
from .rows import one

OPEN_STATUSES = ("new", "assigned", "in_progress")
FEED_LIMIT = 50          # newest incidents one poll may return

INCIDENT_COUNTS_SQL = """
SELECT count(*)::int, (count(*) FILTER (WHERE due_at < %(now)s))::int,
       (count(*) FILTER (WHERE reported_at >= %(day_ago)s))::int
FROM incidents WHERE status = ANY(%(open)s)
"""

REPORTED_TODAY_SQL = "SELECT count(*)::int FROM incidents WHERE reported_at >= %(day_ago)s"

# Offline: the status says so. Silent: said online but no heartbeat for three intervals (shown
# apart: a status feed that stalls should not turn the whole tile red at once). Maintenance apart.
CAMERAS_SQL = """
SELECT count(*)::int, (count(*) FILTER (WHERE status = 'offline'))::int,
       (count(*) FILTER (WHERE status = 'maintenance'))::int,
       (count(*) FILTER (WHERE status = 'online' AND
          (last_seen IS NULL OR last_seen < %(now)s - 3 * heartbeat_interval_s * interval '1 second')))::int
FROM cameras
"""

PERMIT_CHECKS_EXIST_SQL = "SELECT to_regclass('public.permit_checks') IS NOT NULL"
PERMIT_CHECKS_SQL = """
SELECT (count(*) FILTER (WHERE verdict = 'non_compliant'))::int,
       (count(*) FILTER (WHERE verdict = 'needs_review'))::int, count(*)::int
FROM permit_checks
"""
PERMIT_RULE_SQL = """
SELECT count(DISTINCT p.id)::int
FROM building_permits p
JOIN landuse_zones z ON z.commune_code = p.commune_code
  AND (z.valid_to IS NULL OR z.valid_to > current_date)
  AND ST_Intersects(z.geom, ST_PointOnSurface(p.geom))
WHERE p.status IN ('submitted', 'approved')
  AND (p.height_m > z.max_height_m OR p.floors > z.max_floors)
"""

# Newest incidents (for a first paint), or those after the last id the wall has seen (a poll).
FEED_COLUMNS = """
SELECT i.id, i.ticket_code, i.category, i.status, i.reported_at, i.due_at, i.commune_code, u.name,
       ST_X(i.geom), ST_Y(i.geom)
FROM incidents i JOIN admin_units u ON u.code = i.commune_code
"""
NEWEST_SQL = FEED_COLUMNS + "ORDER BY i.reported_at DESC, i.id DESC LIMIT %(limit)s"
AFTER_SQL = FEED_COLUMNS + "WHERE i.id > %(after)s ORDER BY i.id DESC LIMIT %(limit)s"
LAST_ID_SQL = "SELECT coalesce(max(id), 0) FROM incidents"
LAST_UPDATE_SQL = "SELECT max(reported_at) FROM incidents"

OPEN_BY_COMMUNE_SQL = """
SELECT commune_code, count(*)::int FROM incidents WHERE status = ANY(%(open)s) GROUP BY commune_code
"""


def _permits_flagged(conn: psycopg.Connection) -> dict:
    if one(conn.execute(PERMIT_CHECKS_EXIST_SQL))[0]:
        flagged, review, checked = one(conn.execute(PERMIT_CHECKS_SQL))
        if checked:
            return {"count": flagged, "needs_review": review, "checked": checked, "source": "permit_checks"}
    with conn.transaction():
        # JIT compiling this join costs ~1 s at 200k permits, twice the query itself.
        conn.execute("SET LOCAL jit = off")
        (flagged,) = one(conn.execute(PERMIT_RULE_SQL))
    return {"count": flagged, "needs_review": None, "checked": None, "source": "zone_height_floors_rule"}


def permits_flagged(conn: psycopg.Connection) -> dict:
    """Permits breaking the zoning rules (seconds of work at 200k permits: callers cache it)."""
    return _permits_flagged(conn)


def summary(conn: psycopg.Connection, now: dt.datetime | None = None, permits: dict | None = None) -> dict:
    """The KPI tiles. `permits`: a recent permits_flagged() result, or None to compute it."""
    now = now or dt.datetime.now(dt.UTC)
    params = {"now": now, "day_ago": now - dt.timedelta(days=1), "open": list(OPEN_STATUSES)}
    open_n, overdue, open_today = one(conn.execute(INCIDENT_COUNTS_SQL, params))
    (today,) = one(conn.execute(REPORTED_TODAY_SQL, params))
    cameras, offline, maintenance, silent = one(conn.execute(CAMERAS_SQL, params))
    targets = indicators.off_target(conn)
    (last_update,) = one(conn.execute(LAST_UPDATE_SQL))
    (last_id,) = one(conn.execute(LAST_ID_SQL))
    return {
        "now": now.isoformat(),
        "last_data_update": last_update.isoformat() if last_update else None,
        "last_incident_id": last_id,
        "incidents": {"open": open_n, "overdue": overdue, "reported_24h": today, "open_reported_24h": open_today},
        "permits": permits if permits is not None else _permits_flagged(conn),
        "cameras": {"total": cameras, "offline": offline, "maintenance": maintenance, "silent": silent},
        "indicators": {"with_target": len(targets),
                       "off_target": sum(1 for t in targets if t["province_off_target"]),
                       "items": targets},
    }


def _feed_row(row: tuple) -> dict:
    ident, ticket, category, status, reported, due, commune, name, lon, lat = row
    return {"id": ident, "ticket_code": ticket, "category": category, "status": status,
            "reported_at": reported.isoformat(), "due_at": due.isoformat() if due else None,
            "commune_code": commune, "commune": name, "lon": round(lon, 6), "lat": round(lat, 6)}


def incident_feed(conn: psycopg.Connection, after: int | None = None, limit: int = FEED_LIMIT) -> dict:
    """The newest incidents, or only those with an id above `after` (ids only grow)."""
    limit = max(1, min(limit, FEED_LIMIT))
    if after is None:
        rows = conn.execute(NEWEST_SQL, {"limit": limit}).fetchall()
    else:
        rows = conn.execute(AFTER_SQL, {"after": after, "limit": limit}).fetchall()
    (last_id,) = one(conn.execute(LAST_ID_SQL))
    return {"last_id": last_id, "incidents": [_feed_row(r) for r in rows]}


def open_by_commune(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute(OPEN_BY_COMMUNE_SQL, {"open": list(OPEN_STATUSES)}).fetchall())
