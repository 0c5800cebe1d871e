"""Our pygeoapi feature provider: PostGIS builds each page's GeoJSON, connections come from a
psycopg pool, and only the registry's public fields can be read, filtered or sorted on.

pygeoapi makes a provider object per request, so what is costly — the pool and the catalog of the
table — is kept per (database, table) for the life of the process.
"""

from __future__ import annotations

import threading
from http import HTTPStatus

import psycopg
import pyproj
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderConnectionError,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)

from . import features_sql as fsql
from . import features_write as fwrite
from .audit import set_actor
from .db import FailFastPool
from .errors import InvalidParameter

# numberMatched is exact when counting is cheap: below this many rows (estimated), or always when
# a layer declares `count: exact`; above it the page says nothing rather than count a million rows.
CHEAP_COUNT_ROWS = 200_000

_lock = threading.Lock()
_pools: dict[str, FailFastPool] = {}
_catalogs: dict[tuple, fsql.Catalog] = {}


class DatabaseUnavailableError(ProviderConnectionError):
    """The database cannot be reached: a 503 (pygeoapi answers a plain ProviderConnectionError with
    a 500), so clients and load balancers retry instead of reporting a server bug."""
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "ServiceUnavailable"
    default_msg = "Cơ sở dữ liệu tạm thời không phản hồi / the database is not answering right now; please retry"


CATALOG_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(postgis_typmod_srid(a.atttypmod), 0) AS srid, a.atttypid = 'geometry'::regtype AS is_geom
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""

ESTIMATE_SQL = "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass(%s)"


def _pool(url: str) -> FailFastPool:
    with _lock:
        pool = _pools.get(url)
        if pool is None:
            pool = FailFastPool(url, min_size=1, max_size=8, timeout=5, open=True,
                                kwargs={"application_name": "iocgis-ogc", "autocommit": True},
                                check=ConnectionPool.check_connection)
            _pools[url] = pool
        return pool


def plain_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgresql+") else url


def connection(url: str):
    """A pooled connection (context manager) to the database behind a provider."""
    return _pool(url).connection()


def catalog_for(url: str, table: str, id_field: str, geom: str, properties: list[str] | None,
                time_field: str | None = None) -> fsql.Catalog:
    """The table as the database describes it, cut to `properties`; looked up once per process."""
    key = (url, table, tuple(properties or ()))
    with _lock:
        found = _catalogs.get(key)
    if found is not None:
        return found
    try:
        with connection(url) as conn:
            rows = conn.execute(CATALOG_SQL, (table,)).fetchall()
            estimate = conn.execute(ESTIMATE_SQL, (table,)).fetchone()
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailableError() from exc
    if not rows:
        raise ProviderConnectionError(f"table {table} not found")
    types = {name: (pg_type, srid, is_geom) for name, pg_type, srid, is_geom in rows}
    if geom not in types or not types[geom][2]:
        raise ProviderConnectionError(f"{table}.{geom} is not a geometry column")
    public = [p for p in (properties or [n for n in types if not types[n][2]]) if p != id_field]
    missing = [p for p in public if p not in types]
    if missing:
        raise ProviderConnectionError(f"{table}: no columns {missing}")
    catalog = fsql.Catalog(
        table=table,
        id_column=fsql.Column(id_field, types[id_field][0]),
        geometry=geom,
        srid=types[geom][1] or 4326,
        columns=tuple(fsql.Column(p, types[p][0]) for p in public),
        time_field=time_field,
        estimated_rows=int(estimate[0]) if estimate else 0,
    )
    with _lock:
        _catalogs[key] = catalog
    return catalog


class FastPostGISProvider(BaseProvider):
    def __init__(self, provider_def: dict):
        super().__init__(provider_def)
        self.url = plain_url(provider_def["data"])
        self.table = provider_def["table"]
        self.id_field = provider_def["id_field"]
        self.geom = provider_def.get("geom_field", "geom")
        self.count_mode = str(provider_def.get("count_mode", "auto"))
        self.geometry_type = str(provider_def.get("geometry_type", "Geometry"))  # checked on writes
        self.catalog = catalog_for(self.url, self.table, self.id_field, self.geom, self.properties,
                                   self.time_field)
        self.get_fields()

    def _connection(self):
        return connection(self.url)

    def get_fields(self) -> dict:
        if not self._fields:
            for column in self.catalog.columns:
                json_type, json_format = column.json_type
                self._fields[column.name] = {"type": json_type, "format": json_format}
        return self._fields

    # -- reading ---------------------------------------------------------------------------------

    def _output(self, crs_transform_spec) -> tuple[int | None, bool]:
        """Target SRID and whether its first axis is latitude (EPSG:4326 by URI, not CRS84)."""
        if crs_transform_spec is None:
            return None, False
        target = pyproj.CRS.from_user_input(crs_transform_spec.target_crs_uri)
        srid = target.to_epsg()
        if srid is None:
            raise ProviderInvalidQueryError("crs has no EPSG code")
        flip = target.axis_info[0].direction.lower() == "north" and not crs_transform_spec.always_xy
        return srid, flip

    def _columns(self, select_properties) -> tuple[fsql.Column, ...]:
        if not select_properties:
            return self.catalog.columns
        return tuple(self.catalog.column(p, "properties") for p in select_properties if p != self.id_field)

    def _where(self, bbox, datetime_, properties, filterq) -> fsql.Clause:
        return fsql.and_all(
            fsql.bbox_clause(self.catalog, bbox),
            fsql.datetime_clause(self.catalog, datetime_),
            fsql.property_clause(self.catalog, properties),
            self._cql_clause(filterq),
        )

    def _cql_clause(self, filterq) -> fsql.Clause:
        if not filterq:
            return sql.SQL("TRUE"), {}
        from .cql import to_where

        return to_where(filterq, self.catalog)

    def _matched(self, conn, where: fsql.Clause) -> int | None:
        """An exact count when it is cheap or the layer asks for one; otherwise none at all."""
        if self.count_mode == "none":
            return None
        if self.count_mode == "exact" or self.catalog.estimated_rows <= CHEAP_COUNT_ROWS:
            return self._exact(conn, where)
        return None

    def query(self, offset=0, limit=10, resulttype="results", bbox=[], datetime_=None, properties=[],  # noqa: B006
              sortby=[], select_properties=[], skip_geometry=False, q=None, filterq=None,  # noqa: B006
              crs_transform_spec=None, **kwargs):
        try:
            target_srid, flip = self._output(crs_transform_spec)
            columns = self._columns(select_properties)
            where = self._where(bbox, datetime_, properties, filterq)
            page = fsql.PageQuery(
                where=where,
                order=fsql.order_clause(self.catalog, sortby),
                geometry=(sql.SQL("NULL::json") if skip_geometry
                          else fsql.geometry_expression(self.catalog, target_srid, flip)),
                properties=fsql.properties_expression(columns),
                columns=columns,
            )
            with self._connection() as conn:
                matched = self._matched(conn, where)
                response: dict = {"type": "FeatureCollection", "features": [], "numberReturned": 0}
                if matched is not None:
                    response["numberMatched"] = matched
                if resulttype == "hits":
                    response["numberMatched"] = matched if matched is not None else self._exact(conn, where)
                    return response
                statement, params = fsql.page_sql(self.catalog, page, int(limit), int(offset))
                features = conn.execute(statement, params).fetchone()[0]
        except InvalidParameter as exc:
            raise ProviderInvalidQueryError(user_msg=f"{exc.message_vi} / {exc.message_en}") from None
        except (psycopg.errors.UndefinedFunction, psycopg.errors.DatatypeMismatch):
            # A filter comparing a field with a value of another type (students BETWEEN 'a' AND 'b').
            if not filterq:
                raise
            raise ProviderInvalidQueryError(
                user_msg="filter: kiểu giá trị không khớp với trường / a value does not match its field's type"
            ) from None
        except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
            # Values the database cannot take (a malformed filter geometry, a date out of range)
            # are the client's mistake; anything else is ours and stays a 500.
            if isinstance(exc, psycopg.errors.InternalError_) and "geometry" not in str(exc):
                raise
            detail = exc.diag.message_primary
            raise ProviderInvalidQueryError(user_msg=f"Giá trị không hợp lệ / invalid value: {detail}") from None
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailableError() from exc
        response["features"] = features
        response["numberReturned"] = len(features)
        return response

    def _exact(self, conn, where: fsql.Clause) -> int:
        query, params = fsql.count_sql(self.catalog, where)
        return conn.execute(query, params).fetchone()[0]

    def get(self, identifier, crs_transform_spec=None, **kwargs):
        key = self._typed_id(identifier)
        target_srid, flip = self._output(crs_transform_spec)
        statement, params = fsql.one_sql(
            self.catalog, fsql.geometry_expression(self.catalog, target_srid, flip),
            fsql.properties_expression(self.catalog.columns), key)
        try:
            with self._connection() as conn:
                row = conn.execute(statement, params).fetchone()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailableError() from exc
        if row is None:
            raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.")
        feature, previous, following = row
        feature["prev"] = previous if previous is not None else key
        feature["next"] = following if following is not None else key
        return feature

    def _typed_id(self, identifier):
        """URLs carry ids as text; compare them in the column's own type."""
        pg_type = self.catalog.id_column.pg_type
        if pg_type in ("smallint", "integer", "bigint"):
            try:
                key = int(identifier)
            except (TypeError, ValueError):
                raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.") from None
            if not -(2**63) <= key < 2**63:
                raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.")
            return key
        return str(identifier)


    # -- writing: OGC API Features Part 4 (SQL in features_write.py) ------------------------------
    # Only collections a role may write are `editable` in that role's config (gis_core/ogc_config.py
    # for_role), and the web face lets only API tokens of such roles reach these methods.

    def create(self, item):
        edit = self._edit(item, partial=False)
        return self._write(lambda copies: fwrite.insert_sql(self.catalog, fwrite.with_search_copies(edit, copies)))

    def update(self, identifier, item, partial: bool = False):
        """PUT replaces the feature (fields left out become NULL); PATCH (`partial`) changes only what it names."""
        key = self._typed_id(identifier)
        edit = self._edit(item, partial=partial)
        self._write(lambda copies: fwrite.update_sql(self.catalog, fwrite.with_search_copies(edit, copies), key),
                    identifier)
        return True

    def delete(self, identifier):
        key = self._typed_id(identifier)
        self._write(lambda _copies: fwrite.delete_sql(self.catalog, key), identifier)
        return True

    def _edit(self, item, partial: bool) -> fwrite.Edit:
        try:
            return fwrite.parse_feature(item, self.catalog, self.geometry_type, partial=partial)
        except InvalidParameter as exc:
            raise ProviderInvalidQueryError(user_msg=f"{exc.message_vi} / {exc.message_en}") from None

    def _write(self, build, identifier=None):
        """Run one write (`build(search copies)` makes its SQL) in its own transaction, named for
        the audit trail; the row's id."""
        actor = fwrite.ACTOR.get()
        if not actor:
            raise ProviderInvalidQueryError(user_msg="Ghi dữ liệu cần token API / writing needs an API token")
        try:
            with self._connection() as conn, conn.transaction():
                set_actor(conn, actor)
                copies = [r[0] for r in conn.execute(fwrite.SEARCH_COPIES_SQL, (self.catalog.table,))]
                row = conn.execute(*build(copies)).fetchone()
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            # NOT NULL, CHECK, foreign key, unique, a value of the wrong type: the client's to fix.
            detail = exc.diag.message_primary
            raise ProviderInvalidQueryError(user_msg=f"Dữ liệu bị từ chối / rejected: {detail}") from None
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailableError() from exc
        if row is None:
            raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.")
        return row[0]
