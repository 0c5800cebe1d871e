"""Mapbox vector tiles made by PostGIS (`ST_AsMVT`), for every layer and one combined base map.

- Zoom limits come from the registry; a tile outside them is a 404, not an empty tile.
- Dense point layers are aggregated below their `cluster_below` zoom: points are snapped to a grid
  of 1/64 of the tile and each cell becomes one point with a `count`, so a tile of a million
  incidents stays a few tens of kilobytes.
- Tiles are cached in process, keyed by the layer's data version (`layer_versions`, bumped by a
  trigger on every write), so a change to the data is seen at once and nothing else is recomputed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout
from pygeoapi.provider.base_mvt import BaseMVTProvider
from pygeoapi.provider.mvt_postgresql import MVTPostgreSQLProvider
from pygeoapi.provider.tile import ProviderTileNotFoundError

from . import features_sql as fsql
from .ogc_provider import DatabaseUnavailableError, catalog_for, connection, plain_url

EXTENT = 4096
BUFFER = 64
GRID = 64                 # cells per tile side when points are aggregated
MAX_FEATURES = 20_000     # per layer and tile: a safety net for layers without aggregation

# ST_TileEnvelope is in EPSG:3857; the layer's index is in the storage SRID, so the envelope is
# transformed to it (with the buffer) and `&&` uses the GiST index.
TILE = """
WITH b AS (
  SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
         ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), {srid}) AS env_storage
)
SELECT coalesce(ST_AsMVT(t, %(layer)s, {extent}, 'geom', {feature_id}), '') FROM (
  SELECT s.{id} AS {id_alias}, ST_AsMVTGeom(ST_Transform(s.{geom}, 3857), b.env, {extent}, {buffer}, true) AS geom
         {columns}
  FROM {table} s, b
  WHERE s.{geom} && b.env_storage
  LIMIT {max_features}
) t WHERE t.geom IS NOT NULL"""

# Aggregation snaps points in the storage CRS (degrees) to cells of 1/GRID of the tile's width:
# no per-point reprojection, only one per cell, so a tile over a million points stays fast.
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
) t WHERE t.geom IS NOT NULL"""

VERSION = "SELECT coalesce((SELECT version FROM layer_versions WHERE table_name = %s), 0)"


@dataclass(frozen=True)
class TileLayer:
    name: str
    catalog: fsql.Catalog
    version_table: str
    min_zoom: int
    max_zoom: int
    cluster_below: int


def tile_sql(layer: TileLayer, z: int) -> sql.Composable:
    cat = layer.catalog
    if z < layer.cluster_below:
        return sql.SQL(CLUSTERED).format(
            srid=sql.Literal(cat.srid), extent=sql.Literal(EXTENT), grid=sql.Literal(GRID),
            geom=sql.Identifier(cat.geometry), table=sql.Identifier(cat.table))
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
                    margin = BUFFER / EXTENT
                    tile = bytes(conn.execute(tile_sql(layer, z), {
                        "z": z, "x": x, "y": y, "layer": layer.name, "margin": margin}).fetchone()[0])
                    CACHE.put(key, tile)
                parts.append(tile)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailableError() from exc
    return b"".join(parts)


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
