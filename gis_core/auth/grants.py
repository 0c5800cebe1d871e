"""The database enforces the same field and layer rules as the web app, for whoever connects to it
directly (psql, QGIS, the CLI against a remote database).

Each app role of rules.py has a NOLOGIN database role (`anonymous` is iocgis_read, the public one);
migration 0027 creates them and makes the staff roles members of iocgis_read, so they also read
the shared non-layer tables (indicators, rasters, ...). A person gets a LOGIN role that is a member
of one of them (README, "Database roles").

From the registry, for each layer's table (a view for a layer served from one) and its history
table, every app role gets SELECT on exactly the columns it may see:
- the declared fields it may see (public ones, restricted ones whose restricted_to names it),
- the geometry column and the id field,
- derived search keys `<field>_unaccent` of a field it may see (same content, accents dropped),
- in history.<table>: version_from, version_to, etl_run (when a version was current, which run).
Nothing else: a column the registry does not declare (incidents.camera_id, public_reports'
description) stays hidden until a layer file names it. A role that may see every column gets
table-level SELECT (the same set, and what `\\dp` shows plainly).
A role in `writable_by` gets INSERT, UPDATE, DELETE on the table and nothing more on its history
table: the history trigger writes it with its owner's rights (migration 0029), so no writer can
rewrite the past, which the audit trail of ETL inserts points to (0028). A layer that is not public
is read only by its `readable_by` roles.

`apply` revokes these roles' rights on those tables and grants them again, in the caller's
transaction: re-running it is harmless, and it follows any change of the layer files. The owner
and iocgis_ingest keep their own table-level grants (ETL writes whole rows; it gets SELECT on each
layer table here, as iocgis_read no longer gives it every column). Base tables that are no layer's
table (admin_units, behind provinces and communes) keep the grants of their migrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from ..errors import ConfigError
from ..registry import Layer, Registry
from ..rows import one
from .rules import ALL_ROLES, ANONYMOUS, ROLES, may_read_layer, may_write_layer, visible_fields

INGEST = "iocgis_ingest"
HISTORY_COLUMNS = ("version_from", "version_to", "etl_run")
WRITES = ("INSERT", "UPDATE", "DELETE")


def db_role(role: str) -> str:
    """The database role of an app role."""
    return "iocgis_read" if role == ANONYMOUS else f"iocgis_{role}"


DB_ROLES = tuple(db_role(r) for r in ALL_ROLES)
STAFF_DB_ROLES = tuple(db_role(r) for r in ROLES)


@dataclass(frozen=True)
class Grant:
    schema: str
    table: str
    role: str                  # database role
    columns: tuple[str, ...]   # the columns it may SELECT, in table order; () = none
    all_columns: bool          # every column of the table: granted table-wide
    writes: tuple[str, ...]    # INSERT/UPDATE/DELETE privileges on the table


def _columns(conn: psycopg.Connection, schema: str, table: str) -> tuple[str, ...] | None:
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum", (schema, table)).fetchall()
    return tuple(r[0] for r in rows) or None


def _visible(role: str, layer: Layer, columns: tuple[str, ...], history: bool) -> tuple[str, ...]:
    if not may_read_layer(role, layer):
        return ()
    names = {f.name for f in visible_fields(role, layer)} | {layer.geometry_column, layer.id_field}
    names |= {f"{n}_unaccent" for n in names}
    if history:
        names |= set(HISTORY_COLUMNS)
    return tuple(c for c in columns if c in names)


def plan(conn: psycopg.Connection, registry: Registry) -> list[Grant]:
    """What each app role may do on each layer table and its history table, per the registry."""
    grants = []
    for layer in registry:
        columns = _columns(conn, "public", layer.table)
        if columns is None:
            raise ConfigError(f"Lớp {layer.id}: không có bảng {layer.table} trong CSDL (đã migrate chưa?)",
                              f"Layer {layer.id}: no table {layer.table} in the database (migrated?)")
        targets = [("public", layer.table, columns, False)]
        history = _columns(conn, "history", layer.table)
        if history is not None:
            targets.append(("history", layer.table, history, True))
        for schema, table, cols, is_history in targets:
            for role in ALL_ROLES:
                visible = _visible(role, layer, cols, is_history)
                writes = WRITES if may_write_layer(role, layer) and not is_history else ()
                grants.append(Grant(schema, table, db_role(role), visible, visible == cols, writes))
    return grants


def apply(conn: psycopg.Connection, registry: Registry) -> list[Grant]:
    """Revoke the app roles' rights on the layer tables and grant them per the registry, in one
    transaction (the caller's, or one opened here)."""
    with conn.transaction():
        grants = plan(conn, registry)
        roles = sql.SQL(", ").join(sql.Identifier(r) for r in DB_ROLES)
        tables = dict.fromkeys((g.schema, g.table) for g in grants)
        for schema, table in tables:
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(
                sql.Identifier(schema, table), roles))
            if schema == "public":
                conn.execute(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(
                    sql.Identifier(schema, table), sql.Identifier(INGEST)))
        for g in grants:
            target = sql.Identifier(g.schema, g.table)
            role = sql.Identifier(g.role)
            if g.all_columns:
                conn.execute(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(target, role))
            elif g.columns:
                conn.execute(sql.SQL("GRANT SELECT ({}) ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, g.columns)), target, role))
            if g.writes:
                conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(map(sql.SQL, g.writes)), target, role))
    return grants


def actual(conn: psycopg.Connection, grant: Grant) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The columns `grant.role` may SELECT and the writes it holds on the table now, its own
    grants and those of the roles it belongs to (what a member logging in gets)."""
    table = sql.Identifier(grant.schema, grant.table).as_string(conn)
    columns, writes = one(conn.execute(
        "SELECT (SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}') FROM pg_attribute a"
        "        WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped"
        "          AND has_column_privilege(%(role)s, t.oid, a.attnum, 'SELECT')),"
        "       (SELECT coalesce(array_agg(w ORDER BY o), '{}') FROM unnest(%(writes)s::text[]) WITH ORDINALITY u(w, o)"
        "        WHERE has_table_privilege(%(role)s, t.oid, w))"
        " FROM (SELECT %(table)s::regclass::oid AS oid) t",
        {"role": grant.role, "table": table, "writes": list(WRITES)}))
    return tuple(columns), tuple(writes)
