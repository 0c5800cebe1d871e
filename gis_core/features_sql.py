"""SQL for OGC API Features pages, built from named templates and small pure clause builders.

Every builder returns `(sql.Composable, params)` with named parameters, so a query is assembled
without touching a database and tested the same way. Names come from the introspected catalog
(`Catalog`) and reach SQL only through `sql.Identifier`; values are always parameters. PostGIS
builds the page's GeoJSON itself: Python never turns geometries into objects and back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from psycopg import sql

from .errors import InvalidParameter

Clause = tuple[sql.Composable, dict]

# GeoJSON coordinates: 7 decimals of a degree are about 1 cm; metres keep 3 decimals.
DEGREE_DIGITS = 7
METRE_DIGITS = 3


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str          # format_type() of the column, e.g. 'bigint', 'text[]', 'timestamp with time zone'

    @property
    def json_type(self) -> tuple[str, str | None]:
        t = self.pg_type
        if t.endswith("[]"):
            return "array", None
        if t in ("smallint", "integer", "bigint"):
            return "integer", None
        if t.startswith(("numeric", "real", "double")):
            return "number", None
        if t == "boolean":
            return "boolean", None
        if t == "date":
            return "string", "date"
        if t.startswith("timestamp"):
            return "string", "date-time"
        return "string", None


@dataclass(frozen=True)
class Catalog:
    """What the database says about one published table, cut down to the registry's public fields."""

    table: str
    id_column: Column
    geometry: str
    srid: int
    columns: tuple[Column, ...]           # public properties, id excluded
    time_field: str | None = None
    estimated_rows: int = 0
    by_name: dict[str, Column] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        self.by_name.update({c.name: c for c in self.columns})
        self.by_name[self.id_column.name] = self.id_column

    def column(self, name: str, what: str) -> Column:
        try:
            return self.by_name[name]
        except KeyError:
            raise InvalidParameter(f"{what}: không có trường '{name}'.", f"{what}: no field '{name}'.") from None


# -- clause builders -------------------------------------------------------------------------------


def bbox_clause(catalog: Catalog, bbox: Sequence[float]) -> Clause:
    """bbox already in the storage CRS (pygeoapi transforms bbox-crs); `&&` lets the GiST index work."""
    if not bbox:
        return sql.SQL("TRUE"), {}
    if len(bbox) == 6:  # 3D bbox: the height is ignored, the plan is not
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    if len(bbox) != 4:
        raise InvalidParameter("bbox cần 4 số.", "bbox needs 4 numbers.")
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise InvalidParameter("bbox: cần bốn số hữu hạn.", "bbox: needs four finite numbers.")
    if minx > maxx or miny > maxy:
        raise InvalidParameter("bbox: giá trị nhỏ phải đứng trước giá trị lớn.", "bbox: min must not exceed max.")
    envelope = sql.SQL("ST_MakeEnvelope(%(bbox_minx)s, %(bbox_miny)s, %(bbox_maxx)s, %(bbox_maxy)s, {srid})").format(
        srid=sql.Literal(catalog.srid))
    return (sql.SQL("{geom} && {env} AND ST_Intersects({geom}, {env})").format(
        geom=sql.Identifier(catalog.geometry), env=envelope),
        {"bbox_minx": minx, "bbox_miny": miny, "bbox_maxx": maxx, "bbox_maxy": maxy})


def _instant(value: str) -> datetime | date | None:
    if value in ("", "..", None):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"datetime không hợp lệ: {value!r}.", f"invalid datetime: {value!r}.") from None


def datetime_clause(catalog: Catalog, datetime_: str | None) -> Clause:
    if not datetime_:
        return sql.SQL("TRUE"), {}
    if not catalog.time_field:
        raise InvalidParameter("Lớp này không có trường thời gian.", "This collection has no time field.")
    col = sql.Identifier(catalog.time_field)
    if "/" in datetime_:
        start, _, end = datetime_.partition("/")
        lo, hi = _instant(start), _instant(end)
        if lo is None and hi is None:
            raise InvalidParameter("datetime: khoảng phải có ít nhất một đầu.",
                                   "datetime: an interval needs at least one end.")
        parts, params = [], {}
        if lo is not None:
            parts.append(sql.SQL("{} >= %(dt_start)s").format(col))
            params["dt_start"] = lo
        if hi is not None:
            parts.append(sql.SQL("{} <= %(dt_end)s").format(col))
            params["dt_end"] = hi
        if lo is not None and hi is not None and lo > hi:
            raise InvalidParameter("datetime: đầu khoảng sau cuối khoảng.", "datetime: start is after end.")
        return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")), params
    return sql.SQL("{} = %(dt_at)s").format(col), {"dt_at": _instant(datetime_)}


def property_clause(catalog: Catalog, properties: Sequence[tuple[str, str]]) -> Clause:
    """`?name=value` filters: compared in the column's own type so an index on it can be used."""
    parts, params = [], {}
    for i, (name, value) in enumerate(properties):
        column = catalog.column(name, "Bộ lọc / filter")
        key = f"prop_{i}"
        if column.pg_type.endswith("[]"):
            parts.append(sql.SQL("%({})s = ANY({})").format(sql.SQL(key), sql.Identifier(name)))
        else:
            parts.append(sql.SQL("{} = CAST(%({})s AS {})").format(
                sql.Identifier(name), sql.SQL(key), sql.SQL(column.pg_type)))
        params[key] = value
    return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")), params


def order_clause(catalog: Catalog, sortby: Sequence[dict]) -> sql.Composable:
    """Sort keys, then the id, so that pages never overlap or skip a row."""
    keys = []
    for item in sortby or ():
        column = catalog.column(item["property"], "sortby")
        keys.append(sql.SQL("{} {} NULLS LAST").format(
            sql.Identifier(column.name), sql.SQL("DESC" if item.get("order") == "-" else "ASC")))
    keys.append(sql.Identifier(catalog.id_column.name))
    return sql.SQL(", ").join(keys)


def geometry_expression(catalog: Catalog, target_srid: int | None, flip_axes: bool) -> sql.Composable:
    geom: sql.Composable = sql.Identifier(catalog.geometry)
    digits = DEGREE_DIGITS
    if target_srid and target_srid != catalog.srid:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(target_srid))
        projected = target_srid not in (4326, 4756, 4258, 4269)
        digits = METRE_DIGITS if projected else DEGREE_DIGITS
    if flip_axes:  # EPSG:4326 and friends are latitude-first when asked for by their EPSG URI
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    return sql.SQL("ST_AsGeoJSON({}, {})::json").format(geom, sql.Literal(digits))


def properties_expression(columns: Sequence[Column]) -> sql.Composable:
    if not columns:
        return sql.SQL("'{}'::json")
    pairs = [sql.SQL("{}, {}").format(sql.Literal(c.name), sql.Identifier("t", c.name)) for c in columns]
    # json_build_object takes at most 100 arguments: build in chunks and merge as jsonb.
    chunks = [pairs[i:i + 50] for i in range(0, len(pairs), 50)]
    objects = [sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(chunk)) for chunk in chunks]
    return sql.SQL(" || ").join(objects)


# -- templates -------------------------------------------------------------------------------------

PAGE = """
SELECT coalesce(json_agg(json_build_object(
         'type', 'Feature', 'id', t.{id}, 'geometry', {geometry}, 'properties', {properties}
       ) ORDER BY t.__row), '[]'::json)
FROM (
  SELECT {columns}, row_number() OVER () AS __row
  FROM (SELECT * FROM {table} WHERE {where} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s) s
) t"""

ONE = """
SELECT json_build_object('type', 'Feature', 'id', t.{id}, 'geometry', {geometry}, 'properties', {properties}),
       (SELECT max({id}) FROM {table} WHERE {id} < %(id)s),
       (SELECT min({id}) FROM {table} WHERE {id} > %(id)s)
FROM {table} t WHERE t.{id} = %(id)s"""

COUNT = "SELECT count(*) FROM {table} WHERE {where}"


@dataclass(frozen=True)
class PageQuery:
    where: Clause
    order: sql.Composable
    geometry: sql.Composable
    properties: sql.Composable
    columns: tuple[Column, ...]


def page_sql(catalog: Catalog, q: PageQuery, limit: int, offset: int) -> Clause:
    if not 0 <= offset < 2**62:
        raise InvalidParameter("offset không hợp lệ.", "offset is out of range.")
    wanted = [catalog.id_column.name, catalog.geometry, *(c.name for c in q.columns)]
    statement = sql.SQL(PAGE).format(
        id=sql.Identifier(catalog.id_column.name),
        geometry=q.geometry,
        properties=q.properties,
        columns=sql.SQL(", ").join(sql.Identifier("s", name) for name in dict.fromkeys(wanted)),
        table=sql.Identifier(catalog.table),
        where=q.where[0],
        order=q.order,
    )
    return statement, {**q.where[1], "limit": limit, "offset": offset}


def count_sql(catalog: Catalog, where: Clause) -> Clause:
    return sql.SQL(COUNT).format(table=sql.Identifier(catalog.table), where=where[0]), where[1]


def one_sql(catalog: Catalog, geometry: sql.Composable, properties: sql.Composable, identifier) -> Clause:
    return sql.SQL(ONE).format(
        id=sql.Identifier(catalog.id_column.name), geometry=geometry, properties=properties,
        table=sql.Identifier(catalog.table)), {"id": identifier}


def and_all(*clauses: Clause) -> Clause:
    parts = [c for c, _ in clauses]
    params: dict = {}
    for _, p in clauses:
        params.update(p)
    return sql.SQL("({})").format(sql.SQL(") AND (").join(parts)), params
