"""The data stewards' page, /admin/etl: the ETL runs with their counts and status (newest first,
paged by id, filtered by layer, source and status), one run's rejects and repairs with the row,
the field and the reason in Vietnamese and English, and buttons that re-run a declared source or
an ad-hoc load (`iocgis etl load`, from the layer, file and options its run kept) whose file is
still there.

Access: everything for stewards is in this one blueprint so that the roles of the access-control
issue can guard it with one `before_request`. Until then it is open to whoever reaches the server.

Forms: the re-run button is a POST carrying a per-browser token that must equal the one in a
`SameSite=Strict`, HttpOnly cookie set by the page (double-submit), and a cross-site `Origin` /
`Sec-Fetch-Site` is refused. Once sessions and roles exist, the token moves into the signed
session (synchronizer token) and the guard checks the role as well.

The data come from `etl.runs` (the run record) and the runs from `etl.schedule` via `etl.runs.rerun`:
no SQL here.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for

from etl import runs as etl_runs
from etl.errors import EtlError
from gis_core.db import database_url
from gis_core.errors import InvalidParameter, IocgisError, NotFound

from .map import ASSETS

blueprint = Blueprint("admin_etl", __name__, url_prefix="/admin/etl")

PAGE_ASSETS = {"css": [ASSETS["bootstrap_css"]]}
CSRF_COOKIE = "iocgis_admin_csrf"
CSRF_FIELD = "csrf_token"
VN_TZ = dt.timezone(dt.timedelta(hours=7))
TOKEN = re.compile(r"^[A-Za-z0-9_\-]{32,64}$")


class Forbidden(IocgisError):
    status = 403
    code = "Forbidden"


def _state() -> dict:
    return current_app.extensions["iocgis"]


def _database():
    return _state()["db"]


def _sources_dir():
    return etl_runs.sources_dir(current_app.config.get("IOCGIS_ETL_SOURCES"))


# -- CSRF: double-submit token -------------------------------------------------------------------


def csrf_token() -> str:
    """The browser's token: the cookie's when it has a well-formed one, else a new one (set on the response)."""
    if "admin_csrf" not in g:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        g.admin_csrf = cookie if TOKEN.match(cookie) else secrets.token_urlsafe(32)
        g.admin_csrf_new = g.admin_csrf != cookie
    return g.admin_csrf


@blueprint.after_request
def _set_csrf_cookie(response: Response) -> Response:
    if g.get("admin_csrf_new"):
        response.set_cookie(CSRF_COOKIE, g.admin_csrf, httponly=True, samesite="Strict", path="/admin",
                            secure=request.is_secure)
    # The pages show data stewards' material: never cached by a shared proxy, never framed.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def _check_csrf() -> None:
    refused = Forbidden("Yêu cầu bị từ chối: thiếu hoặc sai mã chống giả mạo (CSRF). Tải lại trang rồi thử lại.",
                        "Request refused: the anti-forgery (CSRF) token is missing or wrong. Reload the page, retry.")
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise refused
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.host or parts.scheme != request.scheme:
            raise refused
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not (TOKEN.match(cookie) and hmac.compare_digest(cookie, sent)):
        raise refused


@blueprint.context_processor
def _local_time():
    """Times as the province reads them (UTC+7)."""
    def local_time(t, fmt="%Y-%m-%d %H:%M:%S"):
        return t.astimezone(VN_TZ).strftime(fmt) if t else "…"

    return {"local_time": local_time}


# -- errors ----------------------------------------------------------------------------------------


@blueprint.errorhandler(IocgisError)
def _error(exc: IocgisError):
    html = render_template("admin/error.html", error=exc, assets=PAGE_ASSETS)
    return Response(html, exc.status, mimetype="text/html")


# -- pages -----------------------------------------------------------------------------------------


def _whole(name: str) -> int | None:
    value = request.args.get(name) or None
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidParameter(f"'{name}' phải là số nguyên dương.", f"'{name}' must be a positive whole number.")
    return int(value)


def _filter() -> etl_runs.RunFilter:
    return etl_runs.RunFilter(layer=request.args.get("layer") or None, source=request.args.get("source") or None,
                              status=request.args.get("status") or None, before_id=_whole("before"),
                              limit=_whole("limit") or 50)


@blueprint.get("")
@blueprint.get("/")
def runs_page():
    f = _filter()
    with _database().connection() as conn:
        rows = etl_runs.list_runs(conn, f)
        facets = etl_runs.facets(conn)
    sources = etl_runs.declared_sources(_sources_dir())
    args = {k: v for k, v in request.args.items() if k != "before" and v}
    next_url = (url_for("admin_etl.runs_page", **args, before=rows[-1]["id"]) if len(rows) == f.limit else None)
    html = render_template("admin/etl_runs.html", rows=rows, f=f, facets=facets, sources=sources,
                           statuses=etl_runs.STATUS_LABELS, next_url=next_url, first_page=f.before_id is not None,
                           csrf_field=CSRF_FIELD, csrf=csrf_token(), assets=PAGE_ASSETS)
    return Response(html, mimetype="text/html")


@blueprint.get("/runs/<run_id>")
def run_page(run_id: str):
    with _database().connection() as conn:
        run = etl_runs.get_run(conn, _run_id(run_id))
        problems = etl_runs.run_problems(conn, run["id"])
    sources = etl_runs.declared_sources(_sources_dir())
    load_file = etl_runs.request_file(run)
    html = render_template("admin/etl_run.html", run=run, statuses=etl_runs.STATUS_LABELS,
                           declared=run["source"] in sources, load_file=load_file,
                           load_file_exists=load_file is not None and load_file.is_file(),
                           csrf_field=CSRF_FIELD, csrf=csrf_token(), assets=PAGE_ASSETS, **problems)
    return Response(html, mimetype="text/html")


def _run_id(run_id: str) -> int:
    if not run_id.isdigit() or len(run_id) > 18:
        raise NotFound(f"Không có lần chạy ETL '{run_id[:40]}'.", f"There is no ETL run '{run_id[:40]}'.")
    return int(run_id)


@blueprint.post("/runs/<run_id>/rerun")
def rerun_load(run_id: str):
    """Make an ad-hoc load again (same layer, file, options), then show the run it made."""
    _check_csrf()
    with _database().connection() as conn:
        run = etl_runs.get_run(conn, _run_id(run_id))
    state = _state()
    try:
        made = etl_runs.rerun_load(database_url(state["settings"]), state["registry"], run).run_id
    except EtlError:                # refused before writing: recorded as a failed run of that load
        with _database().connection() as conn:
            made = etl_runs.latest_run_of(conn, run["source"])
    return redirect(url_for("admin_etl.run_page", run_id=made), 303)


@blueprint.post("/sources/<name>/run")
def rerun(name: str):
    """Run a declared source now, then show the run it made (or, refused, the failed run recorded)."""
    _check_csrf()
    state = _state()
    url = database_url(state["settings"])
    refused = False
    try:
        results = etl_runs.rerun(url, state["registry"], _sources_dir(), name)
    except EtlError:
        results, refused = [], True       # recorded as a failed run, with its bilingual reason
    made = [r.run_id for r in results if r.run_id is not None]
    if made:
        return redirect(url_for("admin_etl.run_page", run_id=made[-1]), 303)
    if refused:
        with _database().connection() as conn:
            latest = etl_runs.latest_run_of(conn, name)
        if latest is not None:
            return redirect(url_for("admin_etl.run_page", run_id=latest), 303)
    # A drop directory with no file waiting: nothing ran.
    return redirect(url_for("admin_etl.runs_page", source=name, idle=1), 303)
