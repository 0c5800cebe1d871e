"""A layer as it was: its rows' versions in history.<table> (migration 0008), each valid over
[version_from, version_to). The current state is a version too, so one query answers any date."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
from psycopg import sql

from gis_core.registry import Layer
from gis_core.rows import one

from .errors import EtlError

AS_OF = sql.SQL("""
SELECT json_build_object('type', 'FeatureCollection', 'asOf', %(at)s::timestamptz, 'features',
  coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', h.{id}, 'geometry', ST_AsGeoJSON(h.{geom})::json,
    'properties', json_build_object({props})) ORDER BY h.{id}), '[]'))::text
FROM history.{table} h
WHERE h.version_from <= %(at)s AND (h.version_to IS NULL OR h.version_to > %(at)s)
""")


def _at(when: dt.date | dt.datetime) -> dt.datetime:
    """A date means the end of that day in Việt Nam: the layer as the day closed."""
    if isinstance(when, dt.datetime):
        return when if when.tzinfo else when.replace(tzinfo=dt.timezone(dt.timedelta(hours=7)))
    return dt.datetime.combine(when + dt.timedelta(days=1), dt.time(), dt.timezone(dt.timedelta(hours=7))) \
        - dt.timedelta(microseconds=1)


def has_history(conn: psycopg.Connection, table: str) -> bool:
    name = sql.SQL("history.{}").format(sql.Identifier(table)).as_string(conn)
    return one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)))[0]


def layer_as_of(conn: psycopg.Connection, layer: Layer, when: dt.date | dt.datetime,
                include_restricted: bool = False) -> dict:
    """The layer's features valid at `when` as a GeoJSON FeatureCollection (public fields only
    unless asked otherwise), built by PostGIS."""
    if not has_history(conn, layer.table):
        raise EtlError(f"Lớp {layer.id} không lưu lịch sử.", f"Layer {layer.id} keeps no history.")
    fields = [f for f in (layer.fields if include_restricted else layer.public_fields)
              if f.name not in (layer.id_field, layer.geometry_column)]
    props = sql.SQL(", ").join(sql.SQL("{}, h.{}").format(sql.Literal(f.name), sql.Identifier(f.name))
                               for f in fields)
    query = AS_OF.format(id=sql.Identifier(layer.id_field), geom=sql.Identifier(layer.geometry_column),
                         props=props, table=sql.Identifier(layer.table))
    return json.loads(one(conn.execute(query, {"at": _at(when)}))[0])


def versions(conn: psycopg.Connection, table: str, row_id: int) -> list[tuple[dt.datetime, dt.datetime | None, int]]:
    """(version_from, version_to, etl_run) of every version of one row, oldest first."""
    return conn.execute(sql.SQL("SELECT version_from, version_to, etl_run FROM history.{} WHERE id = %s"
                                " ORDER BY version_from, version_to NULLS LAST").format(sql.Identifier(table)),
                        (row_id,)).fetchall()
