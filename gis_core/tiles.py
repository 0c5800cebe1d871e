"""Mapbox vector tiles made by PostGIS (`ST_AsMVT`), for every layer and one combined base map.

- Zoom limits come from the registry; a tile outside them is a 404, not an empty tile.
- Dense point layers are aggregated below their `cluster_below` zoom: points are snapped to a grid
  of 1/64 of the tile and each cell becomes one point with a `count`, so a tile of a million
  incidents stays a few tens of kilobytes. The cells are counted in process from the layer's
  points held as two sorted arrays (`PointSet`): in PostGIS, an overview tile over 100,000 points
  reads as many scattered heap rows (~0.5 s); from the arrays it takes a few milliseconds, and
  PostGIS only encodes the cells. The arrays are used only at the data version they were loaded
  at; while they are missing or stale, PostGIS counts the cells itself (exact, slower) and the
  arrays are reloaded in the background, at most every RELOAD_EVERY seconds, so a layer written
  every few seconds does not reload a million points on each write.
- Tiles are cached in process, keyed by the layer's data version (`layer_versions`, bumped by a
  trigger on every write), so a change to the data is seen at once and nothing else is recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout
from pygeoapi.provider.base_mvt import BaseMVTProvider
from pygeoapi.provider.mvt_postgresql import MVTPostgreSQLProvider
from pygeoapi.provider.tile import ProviderTileNotFoundError

from . import features_sql as fsql
from .ogc_provider import DatabaseUnavailableError, catalog_for, connection, plain_url
from .rows import one

LOGGER = logging.getLogger(__name__)

EXTENT = 4096
BUFFER = 64
GRID = 64                 # cells per tile side when points are aggregated
MAX_FEATURES = 20_000     # per layer and tile: a safety net for layers without aggregation
EARTH_RADIUS = 6378137.0  # EPSG:3857's sphere

# ST_TileEnvelope is in EPSG:3857; the layer's index is in the storage SRID, so the envelope is
# transformed to it (with the buffer) and `&&` uses the GiST index. The rows (only the columns the
# tile carries) are picked in a MATERIALIZED CTE: with ST_AsMVTGeom's high declared cost in the
# same select, the planner prefers a parallel sequential scan of the whole table (50,000 zones:
# 180 ms instead of 10).
# ST_AsMVT skips a row whose geometry ST_AsMVTGeom clipped away (NULL): a `WHERE geom IS NOT NULL`
# on it would be pulled into the join as a filter and compute every feature's ST_AsMVTGeom twice
# (a dense tile of polygons: 8 ms instead of 5).
TILE = """
WITH b AS (
  SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
         ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), {srid}) AS env_storage
), s AS MATERIALIZED (
  SELECT s.{id}, s.{geom} {columns} FROM {table} s, b WHERE s.{geom} && b.env_storage LIMIT {max_features}
)
SELECT coalesce(ST_AsMVT(t, %(layer)s, {extent}, 'geom', {feature_id}), '') FROM (
  SELECT s.{id} AS {id_alias}, ST_AsMVTGeom(ST_Transform(s.{geom}, 3857), b.env, {extent}, {buffer}, true) AS geom
         {columns}
  FROM s, b
) t"""

# The same cells counted by PostGIS, while the layer's PointSet is missing or stale: points snapped
# in degrees to cells of 1/GRID of the tile's width, one reprojection per cell.
CLUSTERED = """
WITH b AS (
  SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
         ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), {srid}) AS env_storage,
         360.0 / (2 ^ %(z)s) / {grid} AS cell
), cells AS (
  SELECT avg(ST_X(s.{geom})) AS lon, avg(ST_Y(s.{geom})) AS lat, count(*)::int AS count
  FROM {table} s, b
  WHERE s.{geom} && b.env_storage
  GROUP BY floor(ST_X(s.{geom}) / b.cell), floor(ST_Y(s.{geom}) / b.cell)
)
SELECT coalesce(ST_AsMVT(t, %(layer)s, {extent}, 'geom'), '') FROM (
  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), {srid}), 3857), b.env, {extent}, 0, true)
           AS geom, count
  FROM cells, b
) t"""

# The cells of an aggregated tile, counted and placed on the tile's pixel grid by PointSet: PostGIS
# only encodes them (reprojecting 4,000 cells one by one in PostGIS took ~100 ms).
CELLS = """
SELECT coalesce(ST_AsMVT(t, %(layer)s, {extent}, 'geom'), '') FROM (
  SELECT ST_MakePoint(c.px, c.py) AS geom, c.count
  FROM unnest(%(px)s::int[], %(py)s::int[], %(count)s::int[]) AS c(px, py, count)
) t"""

# In degrees (WGS 84) whatever the storage CRS: the cells are fractions of a tile's width in degrees.
POINTS = """COPY (SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform({geom}, 4326) AS g FROM {table}
                                              WHERE {geom} IS NOT NULL) p) TO STDOUT (FORMAT BINARY)"""
# A binary COPY row of two float8 columns: field count, then (length, value) per field.
COPY_ROW = np.dtype([("n", ">i2"), ("xl", ">i4"), ("x", ">f8"), ("yl", ">i4"), ("y", ">f8")])
COPY_HEADER, COPY_TRAILER = 19, 2
RELOAD_EVERY = 30.0       # seconds between two loads of one layer's points, per process

VERSION = "SELECT coalesce((SELECT version FROM layer_versions WHERE table_name = %s), 0)"


@dataclass(frozen=True)
class TileLayer:
    name: str
    catalog: fsql.Catalog
    version_table: str
    min_zoom: int
    max_zoom: int
    cluster_below: int


def tile_sql(layer: TileLayer) -> sql.Composed:
    cat = layer.catalog
    columns = sql.SQL("").join(sql.SQL(", s.{}").format(sql.Identifier(c.name)) for c in cat.columns
                               if not c.pg_type.endswith("[]"))  # MVT attributes are scalars
    # MVT feature ids are integers; a text key (a commune code) travels as an attribute instead.
    integer_id = cat.id_column.pg_type in ("smallint", "integer", "bigint")
    return sql.SQL(TILE).format(
        feature_id=sql.Literal("id") if integer_id else sql.SQL("NULL"),
        id_alias=sql.Identifier("id" if integer_id else cat.id_column.name),
        srid=sql.Literal(cat.srid), extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER),
        id=sql.Identifier(cat.id_column.name), geom=sql.Identifier(cat.geometry), columns=columns,
        table=sql.Identifier(cat.table), max_features=sql.Literal(MAX_FEATURES))


class PointSet:
    """Point layers' coordinates in degrees, sorted by longitude, for counting cells in process:
    per process and layer, each with the data version it was read at (a binary COPY: about a
    second and 16 MB per million points)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple, tuple[int, np.ndarray, np.ndarray]] = {}
        self._started: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def points(self, url: str, layer: TileLayer, version: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The layer's points at `version`, or None when they are not loaded at that version (a
        background load is then started, unless one started less than RELOAD_EVERY seconds ago)."""
        key = (url, layer.name)
        found = self._loaded.get(key)
        if found is not None and found[0] == version:
            return found[1], found[2]
        with self._lock:
            started = self._started.get(key)
            if started is None or time.monotonic() - started > RELOAD_EVERY:
                self._started[key] = time.monotonic()
                threading.Thread(target=self.load, args=(url, layer), daemon=True,
                                 name=f"points-{layer.name}").start()
        return None

    def load(self, url: str, layer: TileLayer) -> None:
        copy_sql = sql.SQL(POINTS).format(geom=sql.Identifier(layer.catalog.geometry),
                                          table=sql.Identifier(layer.catalog.table))
        try:
            with connection(url) as conn:
                # The version first: data newer than it only makes the copy look stale, never fresh.
                version = conn.execute(VERSION, (layer.version_table,)).fetchone()[0]
                with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    data = b"".join(bytes(block) for block in copy)
        except (PoolTimeout, psycopg.Error) as exc:
            LOGGER.warning("points of %s not loaded (%s); PostGIS counts its overview tiles", layer.name, exc)
            return
        rows = np.frombuffer(data[COPY_HEADER:len(data) - COPY_TRAILER], dtype=COPY_ROW)
        order = np.argsort(rows["x"], kind="stable")
        self._loaded[(url, layer.name)] = (version, rows["x"][order].astype(np.float64),
                                           rows["y"][order].astype(np.float64))

    @staticmethod
    def cells(points: tuple[np.ndarray, np.ndarray], z: int, x: int, y: int) -> tuple[np.ndarray, ...]:
        """A tile's points grouped by cells of 1/GRID of the tile's width (in degrees), as CLUSTERED
        groups them: each cell's mean position in tile pixels, and its count. The tile's edges are
        inclusive, as `&&` is."""
        xs, ys = points
        west, south, east, north = tile_bounds(z, x, y)
        band = slice(np.searchsorted(xs, west, side="left"), np.searchsorted(xs, east, side="right"))
        px, py = xs[band], ys[band]
        inside = (py >= south) & (py <= north)
        px, py = px[inside], py[inside]
        if not len(px):
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
        cell = 360.0 / 2**z / GRID
        gx, gy = np.floor(px / cell).astype(np.int64), np.floor(py / cell).astype(np.int64)
        gx -= gx.min()
        gy -= gy.min()
        key = gx * (int(gy.max()) + 1) + gy
        count = np.bincount(key)
        used = np.nonzero(count)[0]
        n = count[used]
        lon, lat = np.bincount(key, px)[used] / n, np.bincount(key, py)[used] / n
        # Each cell's mean point in Web Mercator, then in the tile's pixels (y down), as ST_AsMVTGeom would.
        mx = np.radians(lon) * EARTH_RADIUS
        my = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS
        size = 2 * math.pi * EARTH_RADIUS / 2**z
        left, top = -math.pi * EARTH_RADIUS + x * size, math.pi * EARTH_RADIUS - y * size
        return (np.rint((mx - left) / size * EXTENT).astype(int), np.rint((top - my) / size * EXTENT).astype(int), n)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """A WebMercatorQuad tile's west, south, east, north in degrees."""
    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / 2**z))))
    return x / 2**z * 360 - 180, lat(y + 1), (x + 1) / 2**z * 360 - 180, lat(y)


POINT_SETS = PointSet()


class TileCache:
    """Bytes-bounded LRU of tiles; keys carry the data version, so stale entries just age out."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            tile = self._items.get(key)
            if tile is not None:
                self._items.move_to_end(key)
            return tile

    def put(self, key: tuple, tile: bytes) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = tile
            self._size += len(tile)
            while self._size > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)


CACHE = TileCache()


def etag(tile: bytes) -> str:
    return '"' + hashlib.blake2b(tile, digest_size=12).hexdigest() + '"'


def render(url: str, layers: list[TileLayer], z: int, x: int, y: int) -> bytes:
    """One tile holding every given layer that exists at this zoom (MVT layers concatenate)."""
    if not 0 <= z <= 24 or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise ProviderTileNotFoundError(f"no tile {z}/{x}/{y}")
    wanted = [layer for layer in layers if layer.min_zoom <= z <= layer.max_zoom]
    if not wanted:
        raise ProviderTileNotFoundError(f"zoom {z} is outside the layer's zoom range")
    try:
        with connection(url) as conn:
            parts = []
            for layer in wanted:
                version = conn.execute(VERSION, (layer.version_table,)).fetchone()[0]
                key = (url, layer.name, version, z, x, y)
                tile = CACHE.get(key)
                if tile is None:
                    tile = _make(conn, url, layer, version, z, x, y)
                    CACHE.put(key, tile)
                parts.append(tile)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailableError() from exc
    return b"".join(parts)


def _make(conn: psycopg.Connection, url: str, layer: TileLayer, version: int, z: int, x: int, y: int) -> bytes:
    if z < layer.cluster_below:
        return overview_tile(conn, layer, z, x, y, POINT_SETS.points(url, layer, version))
    params = {"z": z, "x": x, "y": y, "layer": layer.name, "margin": BUFFER / EXTENT}
    return bytes(one(conn.execute(tile_sql(layer), params))[0])


def overview_tile(conn: psycopg.Connection, layer: TileLayer, z: int, x: int, y: int,
                  points: tuple[np.ndarray, np.ndarray] | None) -> bytes:
    """An aggregated tile: cells counted from `points` in memory, or by PostGIS when None."""
    params = {"z": z, "x": x, "y": y, "layer": layer.name}
    if points is None:
        clustered = sql.SQL(CLUSTERED).format(
            srid=sql.Literal(layer.catalog.srid), extent=sql.Literal(EXTENT), grid=sql.Literal(GRID),
            geom=sql.Identifier(layer.catalog.geometry), table=sql.Identifier(layer.catalog.table))
        return bytes(one(conn.execute(clustered, params))[0])
    px, py, count = PointSet.cells(points, z, x, y)
    if not len(count):
        return b""
    # The arrays go as array literals made in C: psycopg adapting thousands of Python ints one by
    # one cost more than the whole tile.
    arrays = {name: "{" + ",".join(map(str, values.tolist())) + "}"
              for name, values in (("px", px), ("py", py), ("count", count))}
    return bytes(one(conn.execute(sql.SQL(CELLS).format(extent=sql.Literal(EXTENT)), {**params, **arrays}))[0])


def tile_layer(url: str, provider_def: dict, name: str) -> TileLayer:
    options = provider_def.get("options") or {}
    zoom = options.get("zoom") or {}
    catalog = catalog_for(url, provider_def["table"], provider_def["id_field"],
                          provider_def.get("geom_field", "geom"), provider_def.get("properties"))
    return TileLayer(name=name, catalog=catalog,
                     version_table=options.get("version_table", provider_def["table"]),
                     min_zoom=int(zoom.get("min", 0)), max_zoom=int(zoom.get("max", 22)),
                     cluster_below=int(options.get("cluster_below", 0)))


class FastMVTProvider(MVTPostgreSQLProvider):
    """pygeoapi tile provider over `render`; pygeoapi's MVT metadata and links are kept."""

    def __init__(self, provider_def: dict):
        # Only the MVT base: the PostgreSQL half of the parent would reflect the table with
        # SQLAlchemy and psycopg2, which we do not use.
        BaseMVTProvider.__init__(self, provider_def)
        self.url = plain_url(provider_def["data"])
        self.table = provider_def["table"]
        self.id_field = provider_def["id_field"]
        self.geom = provider_def.get("geom_field", "geom")
        self.layer = tile_layer(self.url, provider_def, provider_def["table"])

    def get_fields(self):
        return {c.name: c.name for c in self.layer.catalog.columns}

    def get_layer(self):
        return self.layer.name

    def get_tiles(self, layer="default", tileset=None, z=None, y=None, x=None, format_=None):
        if tileset != "WebMercatorQuad":
            raise ProviderTileNotFoundError("only WebMercatorQuad tiles are served")
        try:
            z, y, x = int(z), int(y), int(x)
        except (TypeError, ValueError):
            raise ProviderTileNotFoundError("tile indices must be whole numbers") from None
        return render(self.url, [self.layer], z, x, y) or None

    def get_tiling_schemes(self):
        from pygeoapi.models.provider.base import TileMatrixSetEnum

        return [TileMatrixSetEnum.WEBMERCATORQUAD.value]

    def __repr__(self):
        return f"<FastMVTProvider> {self.table}"
