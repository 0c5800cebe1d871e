"""What the leaders' map asks of the database beyond the OGC API: point layers clustered on a grid
in PostGIS (a million incidents become a few hundred cells), and one commune with the features
inside it (the drill-down).

Table and column names come from the layer registry and go through sql.Identifier; values are
parameters. The JSON is built by PostGIS, not row by row in Python.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import psycopg
from psycopg import sql

from . import indicators
from .errors import InvalidParameter, NotFound
from .registry import Layer, Registry
from .rows import one

TILE_PX = 256
CELL_PX = 64             # one cluster per 64x64 screen pixels: a readable bubble for each
MIN_ZOOM, MAX_ZOOM = 0, 22
MAX_CELLS = 5000         # a viewport at CELL_PX never holds more; a guard against odd requests
DRILL_LIMIT = 200        # features of one layer in one commune sent with the drill-down

# Points of one layer inside the bbox (optionally since a time), grouped per grid cell: the count,
# the mean position (so a bubble sits where its points are), the cell's extent (a click zooms
# there) and, for a cell of one point, its id so the browser can ask for its details.
CLUSTER_SQL = """
WITH pts AS (
  SELECT {geom} AS geom, {id} AS id FROM {table}
  WHERE {geom} && ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326) {since}
)
SELECT count(*)::int, avg(ST_X(geom)), avg(ST_Y(geom)),
       ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)), ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom)),
       CASE WHEN count(*) = 1 THEN min(id) END
FROM pts
GROUP BY ST_SnapToGrid(geom, %(size)s)
ORDER BY 1 DESC
LIMIT %(max_cells)s
"""

UNIT_SQL = """
SELECT code, level, name, name_en, full_name, full_name_en, area_km2::float8,
       ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
FROM admin_units WHERE code = %(code)s AND valid_to IS NULL AND geom IS NOT NULL
"""

# One layer's features in one commune as a GeoJSON FeatureCollection, newest first when the
# layer has a time field, plus how many there are in all.
FEATURES_SQL = """
SELECT (SELECT count(*) FROM {table} WHERE commune_code = %(code)s)::int,
       json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f), '[]'::json))
FROM (
  SELECT json_build_object('type', 'Feature', 'id', {id}, 'geometry', ST_AsGeoJSON({geom}, 6)::json,
                           'properties', json_build_object({props})) AS f
  FROM {table} WHERE commune_code = %(code)s {order}
  LIMIT %(limit)s
) s
"""


@dataclass(frozen=True)
class BBox:
    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, text: str) -> BBox:
        try:
            west, south, east, north = (float(v) for v in (text or "").split(","))
        except ValueError:
            raise InvalidParameter("bbox phải là bốn số: tây,nam,đông,bắc.",
                                   "bbox must be four numbers: west,south,east,north.") from None
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise InvalidParameter("bbox nằm ngoài phạm vi WGS84 hoặc bị đảo.",
                                   "bbox is outside WGS84 or inverted.")
        return cls(west, south, east, north)


def cell_size(zoom: float) -> float:
    """Grid cell in degrees: CELL_PX screen pixels at this zoom in Web Mercator at the equator
    (a little generous at 22°N, which only makes bubbles slightly larger)."""
    return 360.0 / (TILE_PX * 2 ** zoom) * CELL_PX


def snap_bbox(bbox: BBox, size: float) -> BBox:
    """Widen the bbox to whole cells, so a pan by less than a cell asks the same question and a
    cell is never cut in two at the viewport's edge."""
    return BBox(math.floor(bbox.west / size) * size, math.floor(bbox.south / size) * size,
                math.ceil(bbox.east / size) * size, math.ceil(bbox.north / size) * size)


def cluster_points(conn: psycopg.Connection, layer: Layer, bbox: BBox, zoom: int,
                   since: dt.datetime | None = None) -> dict:
    """A layer's points in the bbox, one entry per grid cell."""
    if not layer.geometry_type.endswith("Point"):
        raise InvalidParameter(f"Lớp {layer.id} không phải lớp điểm.", f"Layer {layer.id} is not a point layer.")
    if not MIN_ZOOM <= zoom <= MAX_ZOOM:
        raise InvalidParameter(f"zoom phải từ {MIN_ZOOM} đến {MAX_ZOOM}.",
                               f"zoom must be between {MIN_ZOOM} and {MAX_ZOOM}.")
    since_sql: sql.Composable = sql.SQL("")
    if since is not None:
        if layer.temporal_field is None:
            raise InvalidParameter(f"Lớp {layer.id} không có trường thời gian.", f"Layer {layer.id} has no time field.")
        since_sql = sql.SQL("AND {} >= %(since)s").format(sql.Identifier(layer.temporal_field))
    size = cell_size(zoom)
    box = snap_bbox(bbox, size)
    query = sql.SQL(CLUSTER_SQL).format(
        geom=sql.Identifier(layer.geometry_column), id=sql.Identifier(layer.id_field),
        table=sql.Identifier(layer.table), since=since_sql)
    params = {"west": box.west, "south": box.south, "east": box.east, "north": box.north, "size": size,
              "since": since, "max_cells": MAX_CELLS}
    with conn.transaction():
        # A grid query over a few hundred thousand points: JIT compiling it costs more than running it.
        conn.execute("SET LOCAL jit = off")
        rows = conn.execute(query, params).fetchall()
    cells = [{"count": n, "lon": round(x, 6), "lat": round(y, 6),
              "bbox": [round(v, 6) for v in (x0, y0, x1, y1)], "id": ident}
             for n, x, y, x0, y0, x1, y1, ident in rows]
    return {"layer": layer.id, "zoom": zoom, "cell_deg": size,
            "bbox": [box.west, box.south, box.east, box.north],
            "since": since.isoformat() if since else None,
            "total": sum(c["count"] for c in cells), "cells": cells}


def _features_query(layer: Layer) -> sql.Composed:
    fields = [name for name in layer.style.popup if not layer.field(name).restricted]
    if layer.style.label_field and layer.style.label_field not in fields:
        fields.append(layer.style.label_field)
    props = sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(name), sql.Identifier(name)) for name in fields)
    order = sql.SQL("ORDER BY {} DESC").format(sql.Identifier(layer.temporal_field)) \
        if layer.temporal_field else sql.SQL("ORDER BY {}").format(sql.Identifier(layer.id_field))
    return sql.SQL(FEATURES_SQL).format(table=sql.Identifier(layer.table), id=sql.Identifier(layer.id_field),
                                        geom=sql.Identifier(layer.geometry_column), props=props, order=order)


def commune_detail(conn: psycopg.Connection, registry: Registry, code: str, limit: int = DRILL_LIMIT) -> dict:
    """One commune: its names and extent, its latest indicators, and for each published layer
    that records a commune, how many features it has there and (up to `limit`) the features."""
    row = conn.execute(UNIT_SQL, {"code": code}).fetchone()
    if row is None or row[1] != "commune":
        raise NotFound(f"Không có xã/phường mã {code!r}.", f"No commune with code {code!r}.")
    layers = {}
    for layer in registry.published():
        if "commune_code" not in {f.name for f in layer.fields}:
            continue
        total, collection = one(conn.execute(_features_query(layer), {"code": code, "limit": limit}))
        layers[layer.id] = {"total": total, "shown": len(collection["features"]), "features": collection}
    return {
        "code": row[0], "name": row[2], "name_en": row[3], "full_name": row[4], "full_name_en": row[5],
        "area_km2": row[6], "bbox": [row[7], row[8], row[9], row[10]],
        "indicators": indicators.latest_for_unit(conn, code),
        "layers": layers,
    }
