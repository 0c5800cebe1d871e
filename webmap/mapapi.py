"""JSON for the leaders' map: indicators (choropleth, series), commune drill-down, clustered point
layers, and the relief image of the offline base map. They call gis_core; no SQL here."""

from __future__ import annotations

import datetime as dt
import threading

from flask import Blueprint, Response, current_app, jsonify, request

from gis_core import hillshade, indicators, mapdata
from gis_core.errors import InvalidParameter, NotFound

blueprint = Blueprint("mapapi", __name__, url_prefix="/api")
MAX_DAYS = 3660
_relief_lock = threading.Lock()


def _state() -> dict:
    return current_app.extensions["iocgis"]


def _optional_int(name: str) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} phải là số nguyên, không phải {raw!r}.",
                               f"{name} must be a whole number, not {raw!r}.") from None


def _int(name: str, default: int) -> int:
    value = _optional_int(name)
    return default if value is None else value


@blueprint.route("/indicators")
def indicator_list():
    with _state()["db"].connection() as conn:
        return jsonify([i.to_dict() for i in indicators.definitions(conn)])


@blueprint.route("/indicators/<code>/choropleth")
def indicator_choropleth(code: str):
    period = request.args.get("period")
    with _state()["db"].connection() as conn:
        result = indicators.choropleth(
            conn, code, indicators.parse_period(period) if period else None,
            method=request.args.get("method", "natural_breaks"), k=_int("k", 5))
    return jsonify(result)


@blueprint.route("/indicators/<code>/series")
def indicator_series(code: str):
    unit = request.args.get("unit", "")
    with _state()["db"].connection() as conn:
        return jsonify(indicators.series(conn, code, unit))


@blueprint.route("/communes/<code>")
def commune(code: str):
    with _state()["db"].connection() as conn:
        return jsonify(mapdata.commune_detail(conn, _state()["registry"], code))


@blueprint.route("/layers/<layer_id>/clusters")
def clusters(layer_id: str):
    registry = _state()["registry"]
    try:
        layer = registry[layer_id]
    except KeyError:
        raise NotFound(f"Không có lớp {layer_id!r}.", f"No layer {layer_id!r}.") from None
    if not layer.public:
        raise NotFound(f"Không có lớp {layer_id!r}.", f"No layer {layer_id!r}.")
    days = _optional_int("days")
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise InvalidParameter(f"days phải từ 1 đến {MAX_DAYS}.", f"days must be between 1 and {MAX_DAYS}.")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days) if days else None
    bbox = mapdata.BBox.parse(request.args.get("bbox", ""))
    with _state()["db"].connection() as conn:
        result = mapdata.cluster_points(conn, layer, bbox, _int("zoom", 8), since)
    response = jsonify(result)
    response.cache_control.max_age = 30  # a pan back and forth asks once; new points show within 30 s
    return response


def _relief() -> hillshade.Relief:
    """Drawn once per app and DEM file (a reload of the demo writes a new file)."""
    state = _state()
    with state["db"].connection() as conn:
        path, _footprint = hillshade.dem_source(conn)
    key = (str(path), path.stat().st_mtime_ns)
    with _relief_lock:
        cached = state.get("relief")
        if cached is None or cached[0] != key:
            cached = state["relief"] = (key, hillshade.render_relief(path))
    return cached[1]


@blueprint.route("/relief.json")
def relief_info():
    relief = _relief()
    west, south, east, north = relief.bounds
    return jsonify({"url": "/api/relief.png", "bounds": [[south, west], [north, east]],
                    "width": relief.width, "height": relief.height})


@blueprint.route("/relief.png")
def relief_png():
    response = Response(_relief().png, mimetype="image/png")
    response.cache_control.max_age = 86400
    return response
