"""What the incident blueprints share: JSON that keeps times as ISO 8601, errors rendered as JSON
for /api/ paths and as a page elsewhere, the area's settings, and the local assets of its pages."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, jsonify, render_template
from werkzeug.exceptions import HTTPException

from gis_core.errors import IocgisError
from gis_core.incidents.errors import PayloadTooLarge
from gis_core.incidents.settings import IncidentSettings

from .auth import wants_json
from .map import ASSETS

# The pages use Bootstrap's stylesheet from our own /vendor (see webmap/map.py ASSETS): no CDN.
PAGE_ASSETS = {"css": [ASSETS["bootstrap_css"]]}


def jsonable(value: Any) -> Any:
    """Times as ISO 8601 (Flask's default is the HTTP date format, which drops the offset)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def json_response(value: Any, status: int = 200) -> Response:
    response = jsonify(jsonable(value))
    response.status_code = status
    return response


def database():
    return current_app.extensions["iocgis"]["db"]


def incident_settings() -> IncidentSettings:
    state = current_app.extensions["iocgis"]
    if "incidents" not in state:
        # Read once, when the first incident endpoint runs: the app's entry point has built the app
        # by then, and nothing is read at import time.
        state["incidents"] = IncidentSettings.from_env()
    return state["incidents"]


def render_error(exc: IocgisError) -> Response:
    if wants_json():
        response = json_response(exc.to_dict(), exc.status)
    else:
        html = render_template("incidents/error.html", error=exc, assets=PAGE_ASSETS)
        response = Response(html, exc.status, mimetype="text/html")
    retry = getattr(exc, "retry_after_s", None)
    if retry:
        response.headers["Retry-After"] = str(retry)
    return response


VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def vn_time(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """Times as people in the province read them: Việt Nam time (UTC+7), day first."""
    return value.astimezone(VN_TZ).strftime(fmt) if value else ""


def install_template_filters(bp: Blueprint) -> None:
    bp.add_app_template_filter(vn_time, "vntime")


def install_error_handlers(bp: Blueprint) -> None:
    bp.register_error_handler(IocgisError, render_error)

    @bp.errorhandler(413)
    def _too_large(_exc: HTTPException):
        # Werkzeug's own 413 (a body past request.max_content_length) in our bilingual form.
        return render_error(PayloadTooLarge("Dữ liệu gửi lên quá lớn.", "The request body is too large."))
