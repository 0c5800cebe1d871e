"""SQL for OGC API Features Part 4 transactions (create, replace, update, delete), kept apart from
the read path (features_sql.py).

A request body is checked here before any SQL is built: a GeoJSON Feature, a valid geometry of the
layer's type in CRS84 longitude/latitude, and only properties the caller may write (the fields of
the provider's catalog, which holds exactly what the caller's role may see; never the id). Names
come from the catalog and reach SQL through `sql.Identifier`; values are parameters cast to the
column's own type in PostgreSQL, so a value of the wrong type is the database's clear refusal (a 400).

Who writes is `ACTOR`, set by the web face for the request (webmap/ogc.py) from the API token: the
transaction names it for the audit triggers, and a write without it is refused.
"""

from __future__ import annotations

import json
import math
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import shapely
import shapely.geometry
from psycopg import sql

from .errors import InvalidParameter
from .features_sql import Catalog, Clause
from .text import nfc, unaccent

ACTOR: ContextVar[str | None] = ContextVar("iocgis_ogc_actor", default=None)

# The search copies a table keeps beside a text column ('name' -> 'name_unaccent', see gis_core/text.py).
SEARCH_COPIES_SQL = """
SELECT a.attname FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped AND right(a.attname, 9) = '_unaccent'"""

SCALARS = (str, int, float, bool, type(None))
MAX_VERTICES = 100_000


@dataclass(frozen=True)
class Edit:
    values: dict[str, Any]      # column -> value, each a writable column of the catalog
    geometry: str | None        # GeoJSON geometry text (CRS84), None to leave it as it is
    multi: bool                 # wrap a single geometry into the layer's Multi type


def _bad(vi: str, en: str) -> InvalidParameter:
    return InvalidParameter(vi, en)


def _geometry(raw: Any, geometry_type: str) -> tuple[str, bool]:
    if not isinstance(raw, dict):
        raise _bad("geometry phải là một đối tượng GeoJSON.", "geometry must be a GeoJSON object.")
    single = geometry_type.removeprefix("Multi")
    allowed = {geometry_type, single}
    if raw.get("type") not in allowed:
        raise _bad(f"Lớp này cần hình học kiểu {geometry_type}, không phải {str(raw.get('type'))[:40]!r}.",
                   f"This layer takes {geometry_type} geometries, not {str(raw.get('type'))[:40]!r}.")
    try:
        shape = shapely.geometry.shape(raw)
    except (ValueError, TypeError, AttributeError, IndexError, shapely.errors.GEOSException):
        raise _bad("Toạ độ của hình học không hợp lệ.", "The geometry's coordinates are malformed.") from None
    if shape.is_empty:
        raise _bad("Hình học rỗng.", "The geometry is empty.")
    if shapely.get_num_coordinates(shape) > MAX_VERTICES:
        raise _bad("Hình học có quá nhiều đỉnh.", f"The geometry has more than {MAX_VERTICES} vertices.")
    minx, miny, maxx, maxy = shape.bounds
    if not all(math.isfinite(v) for v in shape.bounds) or minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise _bad("Toạ độ phải là kinh độ, vĩ độ (CRS84).", "Coordinates must be longitude, latitude (CRS84).")
    if not shape.is_valid:
        reason = shapely.is_valid_reason(shape)
        raise _bad(f"Hình học không hợp lệ: {reason}.", f"The geometry is invalid: {reason}.")
    return json.dumps(raw), raw["type"] != geometry_type


def parse_feature(body: bytes | str | dict, catalog: Catalog, geometry_type: str, *, partial: bool) -> Edit:
    """A checked edit from a request body. `partial` (PATCH): only what the body names changes;
    otherwise (POST, PUT) the body is the whole feature: a geometry is required and every writable
    property it leaves out becomes NULL."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            raise _bad("Nội dung không phải JSON hợp lệ.", "The body is not valid JSON.") from None
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise _bad("Nội dung phải là một GeoJSON Feature.", "The body must be a GeoJSON Feature.")
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise _bad("properties phải là một đối tượng.", "properties must be an object.")
    writable = {c.name for c in catalog.columns}
    unknown = sorted(k for k in properties if k not in writable)
    if unknown:
        names = ", ".join(str(k)[:60] for k in unknown[:5])
        raise _bad(f"Không ghi được trường: {names}.", f"These fields cannot be written: {names}.")
    for name, value in properties.items():
        if not (isinstance(value, SCALARS) or (isinstance(value, list) and all(isinstance(v, SCALARS) for v in value))):
            raise _bad(f"Giá trị của '{name}' phải là số, chuỗi, đúng/sai hoặc null.",
                       f"'{name}' must be a number, a string, a boolean or null.")
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(f"Giá trị của '{name}' không hữu hạn.", f"'{name}' is not a finite number.")
    values = dict(properties) if partial else {c.name: properties.get(c.name) for c in catalog.columns}
    values = {k: nfc(v) if isinstance(v, str) else v for k, v in values.items()}  # text is stored NFC
    geometry, multi = None, False
    if body.get("geometry") is not None:
        geometry, multi = _geometry(body["geometry"], geometry_type)
    elif not partial:
        raise _bad("Thiếu geometry.", "The feature has no geometry.")
    if partial and not values and geometry is None:
        raise _bad("Không có gì để cập nhật.", "Nothing to update.")
    return Edit(values=values, geometry=geometry, multi=multi)


def with_search_copies(edit: Edit, copies: list[str]) -> Edit:
    """The edit with the unaccented search copy of each text it writes that has one (`copies`: the
    table's '<column>_unaccent' columns), so that search finds a feature written through the API."""
    extra = {}
    for copy in copies:
        source = copy.removesuffix("_unaccent")
        if source in edit.values:
            value = edit.values[source]
            extra[copy] = unaccent(value) if isinstance(value, str) else value
    return Edit(values={**edit.values, **extra}, geometry=edit.geometry, multi=edit.multi) if extra else edit


def _value(catalog: Catalog, name: str) -> sql.Composable:
    column = catalog.by_name.get(name)   # a search copy is not in the catalog: it is text
    return sql.SQL("CAST(%({})s AS {})").format(sql.SQL(f"v_{name}"), sql.SQL(column.pg_type if column else "text"))


def _geometry_value(catalog: Catalog, multi: bool) -> sql.Composable:
    geom: sql.Composable = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON(%(geometry)s), 4326)")
    if multi:
        geom = sql.SQL("ST_Multi({})").format(geom)
    if catalog.srid != 4326:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(catalog.srid))
    return geom


def _params(edit: Edit) -> dict:
    params = {f"v_{name}": value for name, value in edit.values.items()}
    if edit.geometry is not None:
        params["geometry"] = edit.geometry
    return params


def insert_sql(catalog: Catalog, edit: Edit) -> Clause:
    names = list(edit.values)
    columns = [sql.Identifier(n) for n in names] + [sql.Identifier(catalog.geometry)]
    values = [_value(catalog, n) for n in names] + [_geometry_value(catalog, edit.multi)]
    statement = sql.SQL("INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING {id}").format(
        table=sql.Identifier(catalog.table), columns=sql.SQL(", ").join(columns),
        values=sql.SQL(", ").join(values), id=sql.Identifier(catalog.id_column.name))
    return statement, _params(edit)


def update_sql(catalog: Catalog, edit: Edit, identifier) -> Clause:
    sets = [sql.SQL("{} = {}").format(sql.Identifier(n), _value(catalog, n)) for n in edit.values]
    if edit.geometry is not None:
        sets.append(sql.SQL("{} = {}").format(sql.Identifier(catalog.geometry), _geometry_value(catalog, edit.multi)))
    statement = sql.SQL("UPDATE {table} SET {sets} WHERE {id} = %(id)s RETURNING {id}").format(
        table=sql.Identifier(catalog.table), sets=sql.SQL(", ").join(sets), id=sql.Identifier(catalog.id_column.name))
    return statement, {**_params(edit), "id": identifier}


def delete_sql(catalog: Catalog, identifier) -> Clause:
    statement = sql.SQL("DELETE FROM {table} WHERE {id} = %(id)s RETURNING {id}").format(
        table=sql.Identifier(catalog.table), id=sql.Identifier(catalog.id_column.name))
    return statement, {"id": identifier}
