"""SQL for OGC API Features pages, built from named templates and small pure clause builders.

Every builder returns `(sql.Composable, params)` with named parameters, so a query is assembled
without touching a database and tested the same way. Names come from the introspected catalog
(`Catalog`) and reach SQL only through `sql.Identifier`; values are always parameters. PostGIS
builds the page's GeoJSON itself: Python never turns geometries into objects and back.
"""

from __future__ import annotations

import functools
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
    not_null: bool = False

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
    history: bool = False                 # history.<table> keeps its past versions (migration 0008)
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


@dataclass(frozen=True)
class SortKey:
    column: Column
    descending: bool = False


def sort_keys(catalog: Catalog, sortby: Sequence[dict]) -> tuple[SortKey, ...]:
    """The requested sort keys, then the id, so that the order is total: pages never overlap or skip
    a row, and a page's last row is a position that the next page can start after (keyset)."""
    keys = [SortKey(catalog.column(item["property"], "sortby"), item.get("order") == "-")
            for item in sortby or ()]
    # The id names one feature, so it is never null, even when it comes through a view.
    keys.append(SortKey(Column(catalog.id_column.name, catalog.id_column.pg_type, not_null=True)))
    return tuple(keys)


def order_by(keys: Sequence[SortKey], backward: bool = False) -> sql.Composable:
    """ORDER BY for `keys`; `backward` is the exact reverse order (a prev page read from its end)."""
    parts = []
    for key in keys:
        descending = key.descending != backward
        nulls = "" if key.column.not_null else (" NULLS FIRST" if backward else " NULLS LAST")
        direction = " DESC" if descending else (" ASC" if nulls else "")
        parts.append(sql.SQL("{}{}{}").format(sql.Identifier(key.column.name), sql.SQL(direction), sql.SQL(nulls)))
    return sql.SQL(", ").join(parts)


def order_clause(catalog: Catalog, sortby: Sequence[dict]) -> sql.Composable:
    return order_by(sort_keys(catalog, sortby))


def _value(key: SortKey, i: int) -> sql.Composable:
    return sql.SQL("CAST(%({})s AS {})").format(sql.SQL(f"key_{i}"), sql.SQL(key.column.pg_type))


def keyset_clause(keys: Sequence[SortKey], values: Sequence[str | None], backward: bool = False) -> Clause:
    """Rows strictly after (or, `backward`, before) the row whose sort keys are `values`, in the order
    of `order_by(keys)`: nulls last going forward. Values travel as text, cast to each column's type.

    When no key can be null and all run the same way this is one row comparison, `(a, id) > (x, y)`,
    which an index on the keys reads as a range; otherwise the general form, key by key."""
    if len(values) != len(keys):
        raise InvalidParameter("cursor không khớp với cách sắp xếp.", "cursor does not match the sort order.")
    params = {f"key_{i}": v for i, v in enumerate(values)}
    columns = [sql.Identifier(k.column.name) for k in keys]
    simple = (all(k.column.not_null and v is not None for k, v in zip(keys, values, strict=True))
              and len({k.descending for k in keys}) == 1)
    if simple:
        greater = keys[0].descending == backward
        return (sql.SQL("({}) {} ({})").format(
            sql.SQL(", ").join(columns), sql.SQL(">" if greater else "<"),
            sql.SQL(", ").join(_value(k, i) for i, k in enumerate(keys))), params)
    alternatives = []
    for i, key in enumerate(keys):
        equal = [sql.SQL("{} IS NULL").format(columns[j]) if values[j] is None
                 else sql.SQL("{} = {}").format(columns[j], _value(keys[j], j)) for j in range(i)]
        beyond = _beyond(columns[i], key, values[i], _value(key, i), backward)
        if beyond is not None:
            alternatives.append(sql.SQL(" AND ").join([*equal, beyond]))
    if not alternatives:
        return sql.SQL("FALSE"), params
    either = sql.SQL("(({}))").format(sql.SQL(") OR (").join(alternatives))
    first = keys[0]
    if first.column.not_null and values[0] is not None:
        # Redundant, but a range an index on the first key can start from (the ORs alone are not).
        bound = sql.SQL("{} {} {}").format(columns[0], sql.SQL(">=" if first.descending == backward else "<="),
                                          _value(first, 0))
        return sql.SQL("{} AND {}").format(bound, either), params
    return either, params


def _beyond(column: sql.Composable, key: SortKey, value: str | None, typed: sql.Composable,
            backward: bool) -> sql.Composable | None:
    """Rows past `value` on this one key (None: none can be). Nulls sort after every value."""
    if value is None:
        return None if not backward else sql.SQL("{} IS NOT NULL").format(column)
    greater = key.descending == backward
    past = sql.SQL("{} {} {}").format(column, sql.SQL(">" if greater else "<"), typed)
    if backward or key.column.not_null:
        return past
    return sql.SQL("({} OR {} IS NULL)").format(past, column)


@functools.lru_cache(maxsize=256)
def geometry_expression(catalog: Catalog, target_srid: int | None, flip_axes: bool) -> sql.Composable:
    """The feature's GeoJSON geometry as text (the page is assembled as text, see PAGE)."""
    geom: sql.Composable = sql.Identifier(catalog.geometry)
    digits = DEGREE_DIGITS
    if target_srid and target_srid != catalog.srid:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(target_srid))
        projected = target_srid not in (4326, 4756, 4258, 4269)
        digits = METRE_DIGITS if projected else DEGREE_DIGITS
    if flip_axes:  # EPSG:4326 and friends are latitude-first when asked for by their EPSG URI
        geom = sql.SQL("ST_FlipCoordinates({})").format(geom)
    return sql.SQL("ST_AsGeoJSON({}, {})").format(geom, sql.Literal(digits))


@functools.lru_cache(maxsize=256)
def properties_expression(columns: tuple[Column, ...]) -> sql.Composable:
    """The feature's properties as JSON text, in the columns' order. row_to_json of a row of the
    wanted columns is about a third cheaper than json_build_object and has no argument limit."""
    if not columns:
        return sql.SQL("'{}'")
    row = sql.SQL(", ").join(sql.Identifier("t", c.name) for c in columns)
    return sql.SQL("row_to_json((SELECT p FROM (SELECT {}) p))::text").format(row)


# -- templates -------------------------------------------------------------------------------------

# The page's features in the order asked for (as JSON text, see paging.RawFeatures) and how many,
# the sort keys of its first and last rows (as text, the cursor's form), whether more rows follow
# (one row more is read, not shown) and, when asked, the layer's data version read in the same
# snapshot. A page read backward (a prev page) is selected in reverse order and presented the right
# way round. Each feature is concatenated as text: json_build_object would parse the geometry's
# GeoJSON back (a ::json cast) only to print it again. The aggregates' FILTER comes before their
# arguments, so the feature text is made for the shown rows only and the keys for two rows.
PAGE = """
SELECT coalesce('[' || string_agg(
         '{{"type":"Feature","id":' || to_json(t.{id})::text || ',"geometry":' || coalesce({geometry}, 'null')
         || ',"properties":' || {properties} || '}}', ',' ORDER BY t.__row {presentation}
       ) FILTER (WHERE t.__row <= %(limit)s) || ']', '[]'),
       least(count(*), %(limit)s)::int,
       (array_agg(json_build_array({keys})) FILTER (WHERE t.__row = {first}))[1],
       (array_agg(json_build_array({keys})) FILTER (WHERE t.__row = {last}))[1],
       count(*) > %(limit)s,
       {version}
FROM (
  SELECT {columns}, row_number() OVER () AS __row, count(*) OVER () AS __rows
  FROM (SELECT * FROM {source} WHERE /*where*/ ORDER BY {order} LIMIT %(limit)s + 1 OFFSET %(offset)s) s
) t"""

ONE = """
SELECT json_build_object('type', 'Feature', 'id', t.{id}, 'geometry', {geometry}::json,
                         'properties', {properties}::json),
       (SELECT max({id}) FROM {source} WHERE {id} < %(id)s AND {when}),
       (SELECT min({id}) FROM {source} WHERE {id} > %(id)s AND {when})
FROM {source} t WHERE t.{id} = %(id)s AND {when}"""

COUNT = "SELECT count(*) FROM {source} WHERE {where}"

VERSION = "(SELECT version FROM layer_versions WHERE table_name = %(version_table)s)"

# Every `stride`-th id of the table in id order, with the version they were read at: where offset
# N starts, to within `stride` rows, without counting N rows (see ogc_provider.Positions).
POSITIONS = """
SELECT {version}, coalesce(array_agg({id} ORDER BY {id}), '{{}}')
FROM (SELECT {id}, row_number() OVER (ORDER BY {id}) - 1 AS pos FROM {table}) s
WHERE mod(pos, %(stride)s) = 0"""

# Offset N from a checkpoint id at a known position: skip the rest through the id index alone (no
# table rows fetched), then read the page from there. The same rows as OFFSET N.
FROM_POSITION = """{id} >= (SELECT {id} FROM {table} WHERE {id} >= CAST(%(pos_from)s AS {id_type})
        ORDER BY {id} OFFSET %(pos_skip)s LIMIT 1)"""

AS_OF = "version_from <= %(as_of)s AND (version_to IS NULL OR version_to > %(as_of)s)"


@dataclass(frozen=True)
class PageQuery:
    where: Clause
    keys: tuple[SortKey, ...]
    columns: tuple[Column, ...]
    target_srid: int | None = None    # the output CRS when it is not the storage CRS
    flip_axes: bool = False           # latitude first (EPSG:4326 by its URI)
    skip_geometry: bool = False
    backward: bool = False            # read before a cursor: selected in reverse, presented in order
    as_of: bool = False               # from history.<table>; the caller's where holds as_of_clause()
    version_table: str | None = None  # also return this table's data version, read in the same snapshot


def source(catalog: Catalog, as_of: bool = False) -> sql.Composable:
    """The table, or its history (migration 0008) for the layer as it was on a date."""
    return sql.Identifier("history", catalog.table) if as_of else sql.Identifier(catalog.table)


def as_of_clause(at: datetime) -> Clause:
    """The versions of history.<table> valid at `at`: one per feature that existed then."""
    return sql.SQL(AS_OF), {"as_of": at}


def check_offset(offset: int) -> int:
    if not 0 <= offset < 2**62:
        raise InvalidParameter("offset không hợp lệ.", "offset is out of range.")
    return offset


def page_sql(catalog: Catalog, q: PageQuery, limit: int, offset: int) -> tuple[str, dict]:
    check_offset(offset)
    template = _page_template(catalog, q.columns, q.target_srid, q.flip_axes, q.skip_geometry, q.keys, q.backward,
                              q.as_of, q.version_table is not None)
    params = dict(q.where[1])
    if q.version_table:
        params["version_table"] = q.version_table
    # Only the WHERE changes from request to request: composing the rest anew each time cost a third
    # of the Python time of a page. Limit and offset go in as literals (checked integers): a page
    # query with no parameters left is planned once per connection once psycopg has prepared it,
    # where a parameterised LIMIT was planned again on every execution (about 0.1 ms of 0.6 ms).
    text = template.replace("%(limit)s", str(int(limit))).replace("%(offset)s", str(int(offset)))
    return text.replace("/*where*/", q.where[0].as_string(None), 1), params


@functools.lru_cache(maxsize=512)
def _page_template(catalog: Catalog, columns: tuple[Column, ...], target_srid: int | None, flip_axes: bool,
                   skip_geometry: bool, keys: tuple[SortKey, ...], backward: bool, as_of: bool,
                   versioned: bool) -> str:
    names = [k.column.name for k in keys]
    wanted = [catalog.id_column.name, catalog.geometry, *(c.name for c in columns), *names]
    shown = sql.SQL("least(t.__rows, %(limit)s)")
    return sql.SQL(PAGE).format(
        id=sql.Identifier(catalog.id_column.name),
        geometry=(sql.SQL("NULL::text") if skip_geometry else geometry_expression(catalog, target_srid, flip_axes)),
        properties=properties_expression(columns),
        presentation=sql.SQL("DESC" if backward else "ASC"),
        first=shown if backward else sql.SQL("1"),
        last=sql.SQL("1") if backward else shown,
        version=sql.SQL(VERSION) if versioned else sql.SQL("NULL::bigint"),
        columns=sql.SQL(", ").join(sql.Identifier("s", name) for name in dict.fromkeys(wanted)),
        keys=sql.SQL(", ").join(sql.SQL("t.{}::text").format(sql.Identifier(name)) for name in names),
        source=source(catalog, as_of),
        order=order_by(keys, backward),
    ).as_string(None)


def positions_sql(catalog: Catalog, version_table: str, stride: int) -> Clause:
    return sql.SQL(POSITIONS).format(version=sql.SQL(VERSION), id=sql.Identifier(catalog.id_column.name),
                                     table=sql.Identifier(catalog.table)), \
        {"version_table": version_table, "stride": stride}


def from_position_clause(catalog: Catalog, checkpoint, skip: int) -> Clause:
    return sql.SQL(FROM_POSITION).format(
        id=sql.Identifier(catalog.id_column.name), table=sql.Identifier(catalog.table),
        id_type=sql.SQL(catalog.id_column.pg_type)), {"pos_from": checkpoint, "pos_skip": skip}


def count_sql(catalog: Catalog, where: Clause, as_of: bool = False) -> Clause:
    return sql.SQL(COUNT).format(source=source(catalog, as_of), where=where[0]), where[1]


def one_sql(catalog: Catalog, geometry: sql.Composable, properties: sql.Composable, identifier,
            as_of: datetime | None = None) -> Clause:
    """One feature with the ids before and after it; `as_of`: as it was then, from its history."""
    when, params = as_of_clause(as_of) if as_of else (sql.SQL("TRUE"), {})
    return sql.SQL(ONE).format(
        id=sql.Identifier(catalog.id_column.name), geometry=geometry, properties=properties,
        source=source(catalog, as_of is not None), when=when), {**params, "id": identifier}


def and_all(*clauses: Clause) -> Clause:
    parts = [c for c, _ in clauses]
    params: dict = {}
    for _, p in clauses:
        params.update(p)
    return sql.SQL("({})").format(sql.SQL(") AND (").join(parts)), params
