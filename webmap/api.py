"""JSON endpoints for the pages. They call gis_core; no SQL here."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from gis_core.errors import InvalidParameter
from gis_core.places import search_places

blueprint = Blueprint("api", __name__, url_prefix="/api")


@blueprint.route("/places")
def places():
    raw_limit = request.args.get("limit", "10")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise InvalidParameter(f"limit phải là số nguyên, không phải {raw_limit!r}.",
                               f"limit must be a whole number, not {raw_limit!r}.") from None
    db = current_app.extensions["iocgis"]["db"]
    found = search_places(db.engine, request.args.get("q", ""), limit)
    return jsonify([{"code": p.code, "level": p.level, "name": p.name, "full_name": p.full_name,
                     "bbox": list(p.bbox)} for p in found])
