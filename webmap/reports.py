"""Public endpoints: citizens send reports and track them; the wall and the map read active alerts.

No login here by design. Abuse is held off by size limits (checked before the body is read), photo
types sniffed from the bytes, strict per-field validation and a per-client token bucket kept in
this process's memory (see gis_core/incidents/ratelimit.py for what that does not cover).
"""

from __future__ import annotations

import base64
import binascii
import threading

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from gis_core.errors import TooManyRequests
from gis_core.incidents import alerts, reports, workflow
from gis_core.incidents.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from gis_core.incidents.ratelimit import TokenBucket

from .incidents_common import (
    PAGE_ASSETS,
    database,
    incident_settings,
    install_error_handlers,
    install_template_filters,
    json_response,
)

blueprint = Blueprint("reports", __name__)
install_error_handlers(blueprint)
install_template_filters(blueprint)
_limiter_lock = threading.Lock()


def _limiter() -> TokenBucket | None:
    state = current_app.extensions["iocgis"]
    if "report_limiter" not in state:
        with _limiter_lock:
            if "report_limiter" not in state:
                cfg = incident_settings()
                state["report_limiter"] = (TokenBucket(cfg.report_rate_per_min / 60.0, cfg.report_burst)
                                           if cfg.report_rate_per_min > 0 else None)
    return state["report_limiter"]


def _photo_from_request(data: dict, max_bytes: int) -> reports.Photo | None:
    upload = request.files.get("photo")
    if upload is not None and upload.filename:
        raw = upload.stream.read(max_bytes + 1)
        return reports.check_photo(raw, max_bytes)
    encoded = data.get("photo")
    if isinstance(encoded, str) and encoded:
        if len(encoded) > (max_bytes * 4) // 3 + 8:
            raise PayloadTooLarge("Ảnh quá lớn.", "Photo too large.")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed({"photo": ("Ảnh phải mã hóa base64.", "The photo must be base64.")}) from None
        return reports.check_photo(raw, max_bytes)
    return None


@blueprint.post("/api/reports")
def submit():
    cfg = incident_settings()
    # Refuse an oversized body before reading it; the per-request cap also stops a chunked upload
    # that never announced its length.
    request.max_content_length = cfg.max_request_bytes
    if request.content_length is not None and request.content_length > cfg.max_request_bytes:
        raise PayloadTooLarge(f"Dữ liệu gửi lên quá lớn: tối đa {cfg.max_request_bytes // (1024 * 1024)} MB.",
                              f"Request too large: at most {cfg.max_request_bytes // (1024 * 1024)} MB.")
    limiter = _limiter()
    if limiter is not None:
        wait = limiter.take(request.remote_addr or "unknown")
        if wait:
            seconds = limiter.retry_after(wait)
            raise TooManyRequests(f"Gửi quá nhiều phản ánh; vui lòng thử lại sau {seconds} giây.",
                                  f"Too many reports; please retry in {seconds} s.", seconds)
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValidationFailed({"body": ("Nội dung JSON không hợp lệ.", "The JSON body is invalid.")})
    elif request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        data = request.form.to_dict()
    else:
        raise UnsupportedMediaType("Gửi JSON hoặc biểu mẫu (multipart/form-data).",
                                   "Send JSON or a form (multipart/form-data).")
    photo = _photo_from_request(data, cfg.max_photo_bytes)
    with database().connection(actor="web:citizen") as conn:
        report = reports.parse_report(data, reports.citizen_categories(conn), photo)
        receipt = reports.submit_report(conn, report)
    code = receipt["ticket_code"]
    body = {**receipt, "track_url": url_for("reports.track_page", code=code),
            "message": {"vi": f"Đã tiếp nhận phản ánh. Mã phiếu của bạn: {code}.",
                        "en": f"Report received. Your ticket code: {code}."}}
    response = json_response(body, 201)
    response.headers["Location"] = body["track_url"]
    return response


@blueprint.get("/api/report-categories")
def categories():
    with database().connection() as conn:
        rows = [c for c in workflow.categories(conn) if c["citizen"]]
    return json_response([{k: c[k] for k in ("code", "name_vi", "name_en", "sla_hours")} for c in rows])


@blueprint.get("/api/track/<code>")
def track_json(code: str):
    with database().connection() as conn:
        return json_response(reports.track(conn, code))


@blueprint.get("/track")
def track_form():
    code = (request.args.get("code") or "").strip().upper()
    if code:
        return redirect(url_for("reports.track_page", code=code), 303)
    return Response(render_template("incidents/track_form.html", assets=PAGE_ASSETS), mimetype="text/html")


@blueprint.get("/track/<code>")
def track_page(code: str):
    with database().connection() as conn:
        ticket = reports.track(conn, code)
    return Response(render_template("incidents/track.html", t=ticket, assets=PAGE_ASSETS), mimetype="text/html")


@blueprint.get("/api/alerts")
def active_alerts():
    """Alerts shown until acknowledged; ?f=geojson gives the affected communes as features."""
    with database().connection() as conn:
        if request.args.get("f") == "geojson":
            return Response(alerts.active_geojson(conn), mimetype="application/geo+json")
        return json_response(alerts.active(conn))
