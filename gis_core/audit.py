"""The audit trail: who changed which layer row, when, from what to what.

The database writes it (postgis/migrations/0019_audit_triggers.sql): triggers on every layer table
and on the incident workflow tables, so no path can skip it. The application only says who acts,
for the current transaction, with `set_actor`; `entries` and `iocgis audit` read the trail.
The rows an ETL run inserts into a layer with history are one entry per statement (row_key
'etl_run:<run>', the ids as ranges in `after`); SQL `audit_etl_inserts(run)` gives each of those rows
back as inserted (0028_audit_etl_bulk.sql).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .rows import one

MAX_ACTOR = 200

SET_ACTOR = "SELECT set_config('iocgis.actor', %s, true)"
TABLE_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = %s AND relkind IN ('r', 'p'))"


def set_actor(conn: psycopg.Connection | psycopg.Cursor, actor: str) -> None:
    """Name who acts in the current transaction ('web:citizen', 'device:CAM-001', 'user:lan', 'token:qgis-sync',
    'etl:<source>'). Transaction-local: it ends with the transaction, so a pooled connection never
    carries it to the next request. Call it inside the transaction that writes."""
    actor = " ".join(str(actor).split())[:MAX_ACTOR] or "unknown"
    conn.execute(SET_ACTOR, (actor,))


@dataclass(frozen=True)
class AuditFilter:
    table: str | None = None
    since: dt.datetime | None = None
    actor: str | None = None
    row_key: str | None = None
    limit: int = 50
    until: dt.datetime | None = None   # entries before this time
    before_id: int | None = None       # the next page: entries older than this one


def where_clause(f: AuditFilter) -> tuple[sql.Composable, dict[str, Any]]:
    """WHERE for a filter, values as parameters (pure: unit-tested without a database)."""
    parts: list[sql.Composable] = [sql.SQL("TRUE")]
    params: dict[str, Any] = {}
    if f.table:
        parts.append(sql.SQL("table_name = %(table)s"))
        params["table"] = f.table
    if f.since:
        parts.append(sql.SQL("at >= %(since)s"))
        params["since"] = f.since
    if f.actor:
        parts.append(sql.SQL("actor = %(actor)s"))
        params["actor"] = f.actor
    if f.row_key:
        # A row an ETL run inserted is in its run's bulk entry (0028), among the id ranges.
        parts.append(sql.SQL(
            "(row_key = %(row_key)s OR (left(row_key, 8) = 'etl_run:' AND EXISTS ("
            "SELECT 1 FROM jsonb_array_elements(after -> 'ids') r"
            " WHERE %(row_id)s::bigint BETWEEN (r ->> 0)::bigint AND (r ->> 1)::bigint)))"))
        params["row_key"] = f.row_key
        params["row_id"] = int(f.row_key) if f.row_key.isdigit() and len(f.row_key) < 19 else None
    if f.until:
        parts.append(sql.SQL("at < %(until)s"))
        params["until"] = f.until
    if f.before_id:
        parts.append(sql.SQL("id < %(before_id)s"))
        params["before_id"] = f.before_id
    return sql.SQL(" AND ").join(parts), params


def entries(conn: psycopg.Connection, f: AuditFilter) -> list[dict[str, Any]]:
    """The newest entries first (by id, the order they were written in, so pages by `before_id`
    neither overlap nor skip)."""
    where, params = where_clause(f)
    query = sql.SQL("SELECT id, at, actor, db_user, etl_run, table_name, row_key, action, before, after"
                    " FROM audit_log WHERE {} ORDER BY id DESC LIMIT %(limit)s").format(where)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, {**params, "limit": f.limit})
        return cur.fetchall()


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def describe(entry: dict[str, Any]) -> str:
    """One line per entry: for an UPDATE the changed columns, old -> new."""
    head = (f"{entry['at']:%Y-%m-%d %H:%M:%S}  {entry['actor']:<24} {entry['action']:<6} "
            f"{entry['table_name']}[{entry['row_key']}]")
    if entry["action"] == "UPDATE":
        before, after = entry["before"] or {}, entry["after"] or {}
        changes = ", ".join(f"{k}: {_short(before.get(k), 30)} -> {_short(after.get(k), 30)}"
                            for k in sorted(after) if k != "geom")
        if "geom" in after:
            changes = ", ".join(filter(None, [changes, "geom changed"]))
        return f"{head}  {changes}"
    return head


# -- the CLI -------------------------------------------------------------------------------------


@contextmanager
def command_connection(actor: str | None = None) -> Iterator[psycopg.Connection]:
    """The settings' database for one CLI command (committed at the end), its changes named `actor`
    in the trail; bad settings and an unreachable database become click errors, not tracebacks."""
    from .db import connect, database_url
    from .errors import IocgisError
    from .settings import Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        with connect(database_url(settings)) as conn:
            if actor is not None:
                set_actor(conn, actor)
            yield conn
    except IocgisError as exc:
        raise click.ClickException(f"{exc.message_vi}\n{exc.message_en}") from None


def _since(_ctx, _param, value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("Dùng YYYY-MM-DD hoặc YYYY-MM-DDTHH:MM / use YYYY-MM-DD or YYYY-MM-DDTHH:MM.",
                                 param_hint="--since") from None
    return parsed if parsed.tzinfo else parsed.astimezone()


@click.command("audit")
@click.option("--table", help="Chỉ bảng này / only this table (e.g. incidents).")
@click.option("--since", callback=_since, help="Từ thời điểm / from this date or time (YYYY-MM-DD).")
@click.option("--actor", help="Chỉ người/hệ thống này / only this actor (e.g. etl:load:schools).")
@click.option("--key", "row_key", help="Chỉ bản ghi có khoá này / only the row with this key.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="In dạng JSON, mỗi dòng một mục / JSON lines.")
def audit(table: str | None, since: dt.datetime | None, actor: str | None, row_key: str | None, limit: int,
          as_json: bool) -> None:
    """Nhật ký thay đổi dữ liệu, mới nhất trước / the audit trail of data changes, newest first."""
    with command_connection() as conn:
        if table and not one(conn.execute(TABLE_EXISTS, (table,)))[0]:
            raise click.BadParameter(f"Không có bảng {table!r} / no table {table!r}.", param_hint="--table")
        rows = entries(conn, AuditFilter(table, since, actor, row_key, limit))
    for entry in rows:
        click.echo(json.dumps(entry, ensure_ascii=False, default=str) if as_json else describe(entry))
    if not as_json:
        click.echo(f"{len(rows)} mục / entries")
