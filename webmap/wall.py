"""The video wall at `/wall`: KPI tiles, rotating themes on the province map, new incidents as they
arrive. The page polls small JSON endpoints; it never needs a click or a reload.

The numbers are cached for a few seconds per process so that a wall, a few phones and a few
browser tabs polling together cost the database one query set, and the flagged-permits count
(a spatial join over every live permit) for a few minutes.
"""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, jsonify, render_template, request

from gis_core import wall
from gis_core.errors import InvalidParameter

from .map import ASSETS, PROVINCE_NAME

blueprint = Blueprint("wall", __name__, template_folder="templates")

SUMMARY_TTL_S = 5.0
PERMITS_TTL_S = 300.0
ROTATE_S = (3, 600, 20)     # min, max, default seconds per theme
POLL_S = (1, 300, 10)       # min, max, default seconds between polls
_lock = threading.RLock()  # the summary computes the permits count under it


def _seconds(name: str, bounds: tuple[int, int, int]) -> int:
    low, high, default = bounds
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} phải là số giây.", f"{name} must be a number of seconds.") from None
    return max(low, min(high, value))


@blueprint.route("/wall")
def page():
    config = {
        "rotate_s": _seconds("rotate", ROTATE_S),
        "poll_s": _seconds("poll", POLL_S),
        "lang": "en" if request.args.get("lang") == "en" else "vi",
        "province": PROVINCE_NAME,
    }
    return render_template("wall.html", config=config, assets=ASSETS, lang=config["lang"])


def _cached(key: str, ttl: float, compute):
    """A value computed at most once per ttl per process; concurrent callers wait for the one."""
    cache = current_app.extensions["iocgis"].setdefault("wall_cache", {})
    with _lock:
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        value = compute()
        cache[key] = (time.monotonic(), value)
        return value


@blueprint.route("/api/wall/summary")
def summary():
    db = current_app.extensions["iocgis"]["db"]

    def compute():
        with db.connection() as conn:
            permits = _cached("permits", PERMITS_TTL_S, lambda: wall.permits_flagged(conn))
            data = wall.summary(conn, permits=permits)
            data["open_by_commune"] = wall.open_by_commune(conn)
            return data

    return jsonify(_cached("summary", SUMMARY_TTL_S, compute))


@blueprint.route("/api/wall/incidents")
def incidents():
    raw = request.args.get("after")
    try:
        after = int(raw) if raw not in (None, "") else None
    except ValueError:
        raise InvalidParameter("after phải là số nguyên.", "after must be a whole number.") from None
    with current_app.extensions["iocgis"]["db"].connection() as conn:
        return jsonify(wall.incident_feed(conn, after=after))
