"""Reading the run record: the runs (newest first, paged by id, filtered), one run, what it
rejected and repaired. Named statements, values as parameters; used by `/admin/etl` (webmap) so
that the web side holds no SQL of its own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from gis_core.errors import IocgisError, NotFound
from gis_core.rows import one

STATUSES = ("running", "succeeded", "unchanged", "failed")
STATUS_LABELS = {
    "running": ("Đang chạy", "Running"),
    "succeeded": ("Thành công", "Succeeded"),
    "unchanged": ("Không thay đổi", "Unchanged"),
    "failed": ("Thất bại", "Failed"),
}
MAX_LIMIT = 200

# Keyset paging on the primary key (newest first): no OFFSET, no count of the whole table.
LIST_RUNS = """
SELECT id, source, layer, checksum, status, started_at, ended_at, n_read, n_inserted, n_updated,
  n_unchanged, n_repaired, n_rejected, n_retired, message
FROM etl_runs
WHERE (%(layer)s::text IS NULL OR layer = %(layer)s)
  AND (%(source)s::text IS NULL OR source = %(source)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(before)s::bigint IS NULL OR id < %(before)s)
ORDER BY id DESC LIMIT %(limit)s
"""
GET_RUN = """
SELECT id, source, layer, checksum, status, started_at, ended_at, n_read, n_inserted, n_updated,
  n_unchanged, n_repaired, n_rejected, n_retired, message, request
FROM etl_runs WHERE id = %s
"""
REJECTS = """
SELECT row_no, field, reason_vi, reason_en, row_data FROM etl_rejects WHERE run_id = %s
ORDER BY row_no, id LIMIT %s
"""
REPAIRS = """
SELECT row_no, field, reason_vi, reason_en FROM etl_repairs WHERE run_id = %s ORDER BY row_no, id LIMIT %s
"""
COUNT_PROBLEMS = """
SELECT (SELECT count(*) FROM etl_rejects WHERE run_id = %(id)s),
       (SELECT count(*) FROM etl_repairs WHERE run_id = %(id)s)
"""
FACETS = "SELECT DISTINCT layer, source FROM etl_runs ORDER BY layer, source"


class FileGone(IocgisError):
    """An ad-hoc load asked to run again whose file is no longer where it was."""

    status = 409
    code = "Conflict"


@dataclass(frozen=True)
class RunFilter:
    layer: str | None = None
    source: str | None = None
    status: str | None = None
    before_id: int | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            from gis_core.errors import InvalidParameter

            raise InvalidParameter(f"Trạng thái không hợp lệ: {self.status!r} (có: {', '.join(STATUSES)}).",
                                   f"Unknown status {self.status!r} (there are: {', '.join(STATUSES)}).")
        object.__setattr__(self, "limit", max(1, min(int(self.limit), MAX_LIMIT)))


def list_runs(conn: psycopg.Connection, f: RunFilter) -> list[dict]:
    """One page of runs, newest first; the next page starts before the last id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(LIST_RUNS, {"layer": f.layer, "source": f.source, "status": f.status,
                                       "before": f.before_id, "limit": f.limit}).fetchall()


def get_run(conn: psycopg.Connection, run_id: int) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(GET_RUN, (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"Không có lần chạy ETL số {run_id}.", f"There is no ETL run {run_id}.")
    return row


def run_problems(conn: psycopg.Connection, run_id: int, limit: int = 1000) -> dict:
    """The run's rejects (with the row as read) and repairs, at most `limit` of each, and their totals."""
    with conn.cursor(row_factory=dict_row) as cur:
        rejects = cur.execute(REJECTS, (run_id, limit)).fetchall()
        repairs = cur.execute(REPAIRS, (run_id, limit)).fetchall()
    n_rejects, n_repairs = one(conn.execute(COUNT_PROBLEMS, {"id": run_id}))
    return {"rejects": rejects, "repairs": repairs, "n_rejects": n_rejects, "n_repairs": n_repairs}


def facets(conn: psycopg.Connection) -> dict[str, list[str]]:
    """The layers and sources that have runs, for the filters."""
    rows = conn.execute(FACETS).fetchall()
    return {"layers": sorted({r[0] for r in rows}), "sources": sorted({r[1] for r in rows})}


def sources_dir(override: str | Path | None = None) -> Path:
    """Where the declared sources are: the override (an app's config), else IOCGIS_ETL_SOURCES, else etl/sources."""
    from .sources import SOURCES_DIR

    return Path(override or os.environ.get("IOCGIS_ETL_SOURCES") or SOURCES_DIR)


def declared_sources(directory: Path) -> dict:
    from .sources import load_sources

    return load_sources(directory)


def rerun(url: str, registry, directory: Path, name: str, actor: str | None = None) -> list:
    """Run the declared source `name` now (each waiting file, for a drop directory). An unknown
    name is a 404; a run refused before writing raises EtlError, its failed run already recorded."""
    from .schedule import run_any

    sources = declared_sources(directory)
    if name not in sources:
        raise NotFound(f"Không có nguồn khai báo '{name}'.", f"There is no declared source '{name}'.")
    return run_any(url, registry, sources[name], actor=actor)


def request_file(run: dict) -> Path | None:
    """The file an ad-hoc run loaded, when the run kept its request (None: not re-runnable here)."""
    return Path(run["request"]["path"]) if run.get("request") else None


def rerun_load(url: str, registry, run: dict, actor: str | None = None):
    """Make the ad-hoc load of `run` (as get_run reads it) again, with the same layer, file and options. A run
    that kept no request (a declared source's, or one from before requests were kept) is a 404;
    a file no longer there is a 409 saying where it was; a run refused before writing raises
    EtlError, its failed run already recorded."""
    from .pipeline import run_source
    from .sources import Source

    run_id, path = run["id"], request_file(run)
    if path is None:
        raise NotFound(f"Lần chạy {run_id} không phải lần nạp tức thời có lưu yêu cầu: không chạy lại được.",
                       f"Run {run_id} is not an ad-hoc load with its request kept: it cannot be re-run.")
    if not path.is_file():
        raise FileGone(f"Không chạy lại được lần nạp {run_id}: tệp {path} không còn nữa. Đặt lại tệp vào chỗ cũ"
                       f" hoặc nạp lại bằng iocgis etl load.",
                       f"Cannot re-run load {run_id}: the file {path} is no longer there. Put it back or load"
                       f" it again with iocgis etl load.")
    return run_source(url, registry, Source.from_request(run["request"]), actor=actor)


def latest_run_of(conn: psycopg.Connection, source: str) -> int | None:
    row = conn.execute("SELECT max(id) FROM etl_runs WHERE source = %s", (source,)).fetchone()
    return row[0] if row else None
