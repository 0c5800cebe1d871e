"""Our pygeoapi feature provider: PostGIS builds each page's GeoJSON, connections come from a
psycopg pool, and only the registry's public fields can be read, filtered or sorted on.

pygeoapi makes a provider object per request, so what is costly — the pool, the catalog of the
table and its position index — is kept per (database, table) for the life of the process.

Paging: a page's `next` link carries a keyset cursor (the sort keys of its last row, the id last),
so following it reads an index range; `offset` still gives the same rows, and in the plain id order
starts from the position index rather than counting. `asOf` reads the layer from its history.
The request's own parameters reach the provider through gis_core/paging.py.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from datetime import datetime
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
from . import paging
from .audit import set_actor
from .db import FailFastPool
from .errors import InvalidParameter

# numberMatched is exact when counting is cheap: below this many rows (estimated), or always when
# a layer declares `count: exact`; above it the page says nothing rather than count a million rows.
CHEAP_COUNT_ROWS = 200_000

# The position index: every POSITION_STRIDE-th id of a table in id order, so that a deep `offset`
# (ArcGIS Pro pages by offset) starts from a known id and skips fewer than POSITION_STRIDE index
# entries instead of counting every row before it. Kept per (database, table) and data version.
POSITION_STRIDE = 1000

_lock = threading.Lock()
_pools: dict[str, FailFastPool] = {}
_catalogs: dict[tuple, fsql.Catalog] = {}
_positions: dict[tuple[str, str], Positions] = {}
_building: dict[tuple[str, str], threading.Lock] = {}


@dataclass(frozen=True)
class Positions:
    version: int | None       # layer_versions.version the ids were read at
    ids: tuple                # the id at position 0, POSITION_STRIDE, 2 * POSITION_STRIDE, ...


@dataclass(frozen=True)
class Page:
    features: str             # a JSON array, as PostgreSQL wrote it
    count: int
    first: list | None        # sort keys (text, id last) of the first and last feature, for cursors
    last: list | None
    at_start: bool = False    # known to be the first page: no `prev`


class DatabaseUnavailableError(ProviderConnectionError):
    """The database cannot be reached: a 503 (pygeoapi answers a plain ProviderConnectionError with
    a 500), so clients and load balancers retry instead of reporting a server bug."""
    http_status_code = HTTPStatus.SERVICE_UNAVAILABLE
    ogc_exception_code = "ServiceUnavailable"
    default_msg = "Cơ sở dữ liệu tạm thời không phản hồi / the database is not answering right now; please retry"


CATALOG_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(postgis_typmod_srid(a.atttypmod), 0) AS srid, a.atttypid = 'geometry'::regtype AS is_geom,
       a.attnotnull
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum"""

# The planner's estimate of the rows, which (unlike pg_class.reltuples) also covers views and
# tables never analysed.
ESTIMATE_SQL = "EXPLAIN (FORMAT JSON) SELECT 1 FROM {}"

# The columns of the table's history (migration 0008), if it has one.
HISTORY_SQL = """
SELECT array_agg(attname::text) FROM pg_attribute
WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped"""


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
            if not rows:
                raise ProviderConnectionError(f"table {table} not found")
            plan = conn.execute(sql.SQL(ESTIMATE_SQL).format(sql.Identifier(table))).fetchone()[0]
            history = conn.execute(HISTORY_SQL, (sql.Identifier("history", table).as_string(conn),)).fetchone()[0]
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailableError() from exc
    types = {name: (pg_type, srid, is_geom, not_null) for name, pg_type, srid, is_geom, not_null in rows}
    if geom not in types or not types[geom][2]:
        raise ProviderConnectionError(f"{table}.{geom} is not a geometry column")
    public = [p for p in (properties or [n for n in types if not types[n][2]]) if p != id_field]
    missing = [p for p in public if p not in types]
    if missing:
        raise ProviderConnectionError(f"{table}: no columns {missing}")
    catalog = fsql.Catalog(
        table=table,
        id_column=fsql.Column(id_field, types[id_field][0], not_null=True),
        geometry=geom,
        srid=types[geom][1] or 4326,
        columns=tuple(fsql.Column(p, types[p][0], types[p][3]) for p in public),
        time_field=time_field,
        estimated_rows=int(plan[0]["Plan"]["Plan Rows"]),
        # asOf is offered only when the history holds every published column.
        history=history is not None and {id_field, geom, *public} <= set(history),
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
        # The table whose writes bump this layer's data version (layer_versions): a view's base table.
        self.version_table = provider_def.get("version_table")
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
            raise ProviderInvalidQueryError(user_msg="crs: hệ toạ độ không có mã EPSG / the crs has no EPSG code")
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

    def _matched(self, conn, where: fsql.Clause, as_of: bool) -> int | None:
        """An exact count when it is cheap or the layer asks for one; otherwise none at all."""
        if self.count_mode == "none":
            return None
        if self.count_mode == "exact" or self.catalog.estimated_rows <= CHEAP_COUNT_ROWS:
            return self._exact(conn, where, as_of)
        return None

    def query(self, offset=0, limit=10, resulttype="results", bbox=[], datetime_=None, properties=[],  # noqa: B006
              sortby=[], select_properties=[], skip_geometry=False, q=None, filterq=None,  # noqa: B006
              crs_transform_spec=None, **kwargs):
        request = paging.ITEMS_REQUEST.get()
        try:
            limit, offset = int(limit), fsql.check_offset(int(offset))
            cursor_text = request.arg("cursor") if request else None
            as_of_text = request.arg("asOf") if request else None
            target_srid, flip = self._output(crs_transform_spec)
            columns = self._columns(select_properties)
            keys = fsql.sort_keys(self.catalog, sortby)
            sort = ",".join(("-" if k.descending else "") + k.column.name for k in keys[:-1])
            cursor = paging.Cursor.decode(cursor_text) if cursor_text is not None else None
            if cursor:
                cursor.check_sort(sort)
                if offset:
                    raise InvalidParameter("Không dùng offset cùng với cursor.", "offset cannot be used with cursor.")
            where = self._where(bbox, datetime_, properties, filterq)
            unfiltered = not (bbox or datetime_ or properties or filterq or as_of_text is not None)
            if as_of_text is not None:
                where = fsql.and_all(where, fsql.as_of_clause(self._as_of(as_of_text)))
            page = fsql.PageQuery(where=where, keys=keys, columns=columns, target_srid=target_srid,
                                  flip_axes=flip, skip_geometry=bool(skip_geometry), as_of=as_of_text is not None)
            with self._connection() as conn:
                # A cursor page leaves numberMatched out (the standard allows it): pygeoapi would
                # otherwise take the cursor page for offset 0 and add a `next` link of its own.
                matched = None if cursor else self._matched(conn, where, page.as_of)
                response: dict = {"type": "FeatureCollection", "features": [], "numberReturned": 0}
                if matched is not None:
                    response["numberMatched"] = matched
                if resulttype == "hits":
                    response["numberMatched"] = matched if matched is not None else self._exact(conn, where, page.as_of)
                    return response
                if cursor:
                    found = self._after(conn, page, cursor, limit)
                elif offset and unfiltered and not sortby and self.version_table:
                    found = self._at_position(conn, page, limit, offset)
                else:
                    found = self._page(conn, page, limit, offset)
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
            # Values the database cannot take (a malformed filter geometry, a date out of range, a
            # cursor key that is not of its column's type) are the client's mistake; anything else
            # is ours and stays a 500.
            if isinstance(exc, psycopg.errors.InternalError_) and "geometry" not in str(exc):
                raise
            detail = exc.diag.message_primary
            raise ProviderInvalidQueryError(user_msg=f"Giá trị không hợp lệ / invalid value: {detail}") from None
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailableError() from exc
        raw = paging.RAW_FEATURES.get()
        # A GeoJSON page takes the features' text as it is; other formats (HTML, CSV) need objects.
        response["features"] = (raw.hold(found.features, found.count) if raw is not None and found.count
                                else json.loads(found.features))
        response["numberReturned"] = found.count
        if request:
            response["links"] = self._links(request, sort, limit, offset, cursor, found)
        return response

    def _as_of(self, text: str) -> datetime:
        if not self.catalog.history:
            raise InvalidParameter("Lớp này không lưu lịch sử nên không có asOf.",
                                   "This collection keeps no history: asOf is not available.")
        return paging.parse_as_of(text)

    def _page(self, conn, page: fsql.PageQuery, limit: int, offset: int) -> Page:
        statement, params = fsql.page_sql(self.catalog, page, limit, offset)
        features, count, first, last, more, _ = conn.execute(statement, params).fetchone()
        # Read backward, "no more" means no row before this page: it is the first.
        return Page(features, count, first, last, at_start=not more if page.backward else offset == 0)

    def _after(self, conn, page: fsql.PageQuery, cursor: paging.Cursor, limit: int) -> Page:
        """The page after the cursor's row, or before it (a prev link): a range of the sort keys."""
        keyset = fsql.keyset_clause(page.keys, cursor.values, cursor.backward)
        found = self._page(conn, replace(page, where=fsql.and_all(page.where, keyset), backward=cursor.backward),
                           limit, 0)
        if cursor.backward and found.count < limit:
            # Fewer rows than a page before the cursor: that is the start, so show the first page.
            return self._page(conn, page, limit, 0)
        return found if cursor.backward else replace(found, at_start=False)

    def _at_position(self, conn, page: fsql.PageQuery, limit: int, offset: int) -> Page:
        """OFFSET in the id order of the whole table, started from the nearest checkpoint of the
        table's position index instead of counting `offset` rows. The page reads the data version
        in its own snapshot: if the index is older, it is rebuilt and the page read again, and if
        the data is changing faster than that, a plain OFFSET answers."""
        stale = None
        for _ in range(2):
            positions = self._fresh_positions(conn, stale)
            if not positions.ids or positions.version is None:  # an empty table, or one without a version
                break
            n = min(offset // POSITION_STRIDE, len(positions.ids) - 1)
            start = fsql.from_position_clause(self.catalog, positions.ids[n], offset - n * POSITION_STRIDE)
            statement, params = fsql.page_sql(self.catalog, replace(
                page, where=fsql.and_all(page.where, start), version_table=self.version_table), limit, 0)
            features, count, first, last, _, version = conn.execute(statement, params).fetchone()
            if version == positions.version:
                return Page(features, count, first, last)
            stale = positions
        return self._page(conn, page, limit, offset)

    def _fresh_positions(self, conn, stale: Positions | None) -> Positions:
        """The cached position index, or (when there is none, or it is the `stale` one a page just
        found out of date) a new one. One thread builds it while the others wait for it."""
        key = (self.url, self.table)
        cached = _positions.get(key)
        if cached is not None and cached is not stale:
            return cached
        with _lock:
            building = _building.setdefault(key, threading.Lock())
        with building:
            cached = _positions.get(key)
            if cached is not None and cached is not stale:
                return cached
            # only layers with a data version page by position (see query)
            assert self.version_table is not None
            statement, params = fsql.positions_sql(self.catalog, self.version_table, POSITION_STRIDE)
            version, ids = conn.execute(statement, params).fetchone()
            positions = Positions(version, tuple(ids))
            _positions[key] = positions
            return positions

    def _links(self, request: paging.ItemsRequest, sort: str, limit: int, offset: int,
               cursor: paging.Cursor | None, page: Page) -> list[dict]:
        """`next` as a cursor after the page's last row whenever the page is full; `prev` as a cursor
        before its first row on cursor pages, as an offset on offset pages. When there is no `next`,
        pygeoapi adds the offset `prev` itself (and no `next`: the page was not full)."""
        links = []
        if page.count == limit and page.last is not None:
            links.append(request.link("next", "Trang sau / Next page",
                                      cursor=paging.Cursor(sort, tuple(page.last)).encode()))
            if not cursor and offset > 0:
                links.append(request.link("prev", "Trang trước / Previous page", offset=max(0, offset - limit)))
        if cursor and page.first is not None and not page.at_start:
            links.append(request.link("prev", "Trang trước / Previous page",
                                      cursor=paging.Cursor(sort, tuple(page.first), backward=True).encode()))
        return links

    def _exact(self, conn, where: fsql.Clause, as_of: bool = False) -> int:
        query, params = fsql.count_sql(self.catalog, where, as_of)
        return conn.execute(query, params).fetchone()[0]

    def get(self, identifier, crs_transform_spec=None, **kwargs):
        key = self._typed_id(identifier)
        target_srid, flip = self._output(crs_transform_spec)
        request = paging.ITEMS_REQUEST.get()
        as_of_text = request.arg("asOf") if request else None
        try:
            as_of = self._as_of(as_of_text) if as_of_text is not None else None
        except InvalidParameter as exc:
            raise ProviderInvalidQueryError(user_msg=f"{exc.message_vi} / {exc.message_en}") from None
        statement, params = fsql.one_sql(
            self.catalog, fsql.geometry_expression(self.catalog, target_srid, flip),
            fsql.properties_expression(self.catalog.columns), key, as_of)
        try:
            with self._connection() as conn:
                row = conn.execute(statement, params).fetchone()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailableError() from exc
        if row is None:
            raise self._not_found(identifier)
        feature, previous, following = row
        feature["prev"] = previous if previous is not None else key
        feature["next"] = following if following is not None else key
        return feature

    def _not_found(self, identifier) -> ProviderItemNotFoundError:
        # pygeoapi shows the user_msg (else its English default), so it is bilingual; the id the
        # client sent is logged, not echoed.
        return ProviderItemNotFoundError(
            f"No such item: {self.id_field}={identifier!r}",
            user_msg=f"Không có đối tượng với {self.id_field} này / no feature with this {self.id_field}")

    def _typed_id(self, identifier):
        """URLs carry ids as text; compare them in the column's own type."""
        pg_type = self.catalog.id_column.pg_type
        if pg_type in ("smallint", "integer", "bigint"):
            try:
                key = int(identifier)
            except (TypeError, ValueError):
                raise self._not_found(identifier) from None
            if not -(2**63) <= key < 2**63:
                raise self._not_found(identifier)
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
            raise self._not_found(identifier)
        return row[0]
