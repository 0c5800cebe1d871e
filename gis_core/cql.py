"""CQL2 filters (already parsed by pygeofilter, text or JSON) turned into parameterised SQL over a
layer's public fields only: a filter can never reach a restricted column, even to test its value."""

from __future__ import annotations

import re

from geoalchemy2 import Geometry
from psycopg import sql
from pygeofilter.ast import Attribute, Node
from pygeofilter.backends.sqlalchemy.evaluate import to_filter
from sqlalchemy import ARRAY, BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, Text, column, table
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect

from .errors import InvalidParameter
from .features_sql import Catalog, Clause

CRS84_EWKT = re.compile(r"^SRID=[^;]*CRS84;")

_TYPES = {
    "smallint": Integer, "integer": Integer, "bigint": BigInteger, "boolean": Boolean, "date": Date,
    "real": Float, "double precision": Float, "text": Text,
}


def _sa_type(pg_type: str):
    if pg_type.endswith("[]"):
        return ARRAY(Text)
    if pg_type.startswith("numeric"):
        return Numeric()
    if pg_type.startswith("timestamp"):
        return DateTime(timezone="with time zone" in pg_type)
    return _TYPES.get(pg_type, Text)()


def _attributes(node) -> list[str]:
    """The names of the fields a parsed filter refers to."""
    if isinstance(node, Attribute):
        return [node.name]
    if isinstance(node, (list, tuple)):
        return [name for sub in node for name in _attributes(sub)]
    if isinstance(node, Node):
        return _attributes(node.get_sub_nodes())
    return []


def to_where(ast, catalog: Catalog) -> Clause:
    cols = [column(c.name, _sa_type(c.pg_type)) for c in (catalog.id_column, *catalog.columns)]
    geom = column(catalog.geometry, Geometry(srid=catalog.srid))
    t = table(catalog.table, *cols, geom)
    mapping = {c.name: t.c[c.name] for c in cols}
    mapping[catalog.geometry] = t.c[catalog.geometry]
    mapping.setdefault("geometry", t.c[catalog.geometry])  # CQL2 names the geometry by its role too
    # Every field the filter names must be a public one: pygeofilter would otherwise turn an unknown
    # name into a constant instead of failing.
    unknown = sorted({name for name in _attributes(ast) if name not in mapping})
    if unknown:
        raise InvalidParameter(f"filter: không có trường {', '.join(unknown)}.",
                               f"filter: no field {', '.join(unknown)}.")
    try:
        expression = to_filter(ast, mapping)
    except (KeyError, AttributeError) as exc:
        raise InvalidParameter(f"filter: trường không hợp lệ {exc}.", f"filter: unknown or unusable field {exc}.") \
            from None
    except (NotImplementedError, ValueError, TypeError, ArithmeticError) as exc:
        raise InvalidParameter(f"filter không được hỗ trợ: {exc}.", f"unsupported filter: {exc}.") from None
    if isinstance(expression, bool):   # folded to a constant (1 = 1)
        return sql.SQL("TRUE" if expression else "FALSE"), {}
    compiled = expression.compile(dialect=pg_dialect.dialect(), compile_kwargs={"render_postcompile": True})
    # pygeoapi hands over filter geometries already in the storage CRS but labelled CRS84, and
    # pygeofilter writes that label as "SRID=CRS84;", which PostGIS cannot read.
    params = {f"cql_{k}": (CRS84_EWKT.sub(f"SRID={catalog.srid};", v) if isinstance(v, str) else v)
              for k, v in compiled.params.items()}
    text = str(compiled)
    # Rename SQLAlchemy's parameters into our own namespace so they cannot collide with ours.
    for name in sorted(compiled.params, key=len, reverse=True):
        text = text.replace(f"%({name})s", f"%(cql_{name})s")
    # The table was named in the expression; our page query selects from it unqualified.
    text = text.replace(f"{catalog.table}.", "")
    return sql.SQL(text), params
