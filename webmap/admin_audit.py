"""/admin/audit: the audit trail for administrators — who changed which row, when, from what to
what — filtered by table, actor and dates, newest first, paged by id. It reads gis_core.audit,
the same reader as `iocgis audit`."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, render_template, request, url_for

from gis_core.audit import AuditFilter, entries
from gis_core.errors import InvalidParameter, IocgisError

from .auth import guard
from .map import ASSETS

blueprint = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")
guard(blueprint, "admin_audit")

PAGE_ASSETS = {"css": [ASSETS["bootstrap_css"]]}
PAGE_SIZE = 50
VN_TZ = dt.timezone(dt.timedelta(hours=7))


@blueprint.errorhandler(IocgisError)
def _error(exc: IocgisError):
    return Response(render_template("admin/error.html", error=exc, assets=PAGE_ASSETS), exc.status,
                    mimetype="text/html")


def _day(name: str) -> dt.date | None:
    value = request.args.get(name) or None
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(f"'{name}' phải là ngày dạng YYYY-MM-DD.",
                               f"'{name}' must be a YYYY-MM-DD date.") from None


def _text(name: str) -> str | None:
    value = (request.args.get(name) or "").strip()
    if len(value) > 200:
        raise InvalidParameter(f"'{name}' quá dài.", f"'{name}' is too long.")
    return value or None


def _filter() -> AuditFilter:
    before = request.args.get("before") or None
    if before is not None and not (before.isdigit() and len(before) <= 18):
        raise InvalidParameter("'before' phải là số nguyên dương.", "'before' must be a positive whole number.")
    since, until = _day("since"), _day("until")
    start = lambda day: dt.datetime.combine(day, dt.time(), VN_TZ)  # noqa: E731  (days as the province counts them)
    return AuditFilter(table=_text("table"), actor=_text("actor"), limit=PAGE_SIZE,
                       since=start(since) if since else None,
                       until=start(until + dt.timedelta(days=1)) if until else None,
                       before_id=int(before) if before else None)


@blueprint.get("")
@blueprint.get("/")
def audit_page():
    f = _filter()
    with current_app.extensions["iocgis"]["db"].connection() as conn:
        rows = entries(conn, f)
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    next_url = url_for("admin_audit.audit_page", **args, before=rows[-1]["id"]) if len(rows) == PAGE_SIZE else None
    html = render_template("admin/audit.html", rows=rows, args=args, next_url=next_url, assets=PAGE_ASSETS,
                           tz=VN_TZ)
    return Response(html, mimetype="text/html")
