"""The data stewards' page, /admin/etl: the ETL runs with their counts and status (newest first,
paged by id, filtered by layer, source and status), one run's rejects and repairs with the row,
the field and the reason in Vietnamese and English, and buttons that re-run a declared source or
an ad-hoc load (`iocgis etl load`, from the layer, file and options its run kept) whose file is
still there.

Access: stewards and administrators (webmap/auth.py `guard`, rules in gis_core/auth/rules.py); the
re-run button is a POST carrying the session's CSRF token.

The data come from `etl.runs` (the run record) and the runs from `etl.schedule` via `etl.runs.rerun`:
no SQL here.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from etl import runs as etl_runs
from etl.errors import EtlError
from gis_core.db import database_url
from gis_core.errors import InvalidParameter, IocgisError, NotFound

from .auth import CSRF_FIELD, csrf_token, guard, principal
from .map import ASSETS

blueprint = Blueprint("admin_etl", __name__, url_prefix="/admin/etl")
guard(blueprint, "admin_etl")

PAGE_ASSETS = {"css": [ASSETS["bootstrap_css"]]}
VN_TZ = dt.timezone(dt.timedelta(hours=7))


def _state() -> dict:
    return current_app.extensions["iocgis"]


def _database():
    return _state()["db"]


def _sources_dir():
    return etl_runs.sources_dir(current_app.config.get("IOCGIS_ETL_SOURCES"))


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
    with _database().connection() as conn:
        run = etl_runs.get_run(conn, _run_id(run_id))
    state = _state()
    try:
        made = etl_runs.rerun_load(database_url(state["settings"]), state["registry"], run,
                                   actor=principal().actor).run_id
    except EtlError:                # refused before writing: recorded as a failed run of that load
        with _database().connection() as conn:
            made = etl_runs.latest_run_of(conn, run["source"])
    return redirect(url_for("admin_etl.run_page", run_id=made), 303)


@blueprint.post("/sources/<name>/run")
def rerun(name: str):
    """Run a declared source now, then show the run it made (or, refused, the failed run recorded)."""
    state = _state()
    url = database_url(state["settings"])
    refused = False
    try:
        results = etl_runs.rerun(url, state["registry"], _sources_dir(), name, actor=principal().actor)
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
