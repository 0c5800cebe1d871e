"""What a target table accepts, read from the database's own catalog: columns and their types,
which are required, the code lists and other CHECK rules, the natural key. Nothing here is typed
by hand, so a migration that changes a table changes what the ETL validates."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from gis_core.rows import one

from .errors import EtlError

# Written by the ETL itself, never taken from the input.
SURROGATE = "id"
COMMUNE = "commune_code"
UNACCENT_SUFFIX = "_unaccent"

COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
       t.typname
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

CONSTRAINTS = """
SELECT c.conname, c.contype, pg_get_constraintdef(c.oid),
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_constraint c WHERE c.conrelid = %s::regclass ORDER BY c.conname
"""

# `(level = ANY (ARRAY['preschool'::text, 'primary'::text]))`, as pg_get_constraintdef prints an IN list.
CODE_LIST = re.compile(r"^CHECK \(\((\w+) = ANY \(ARRAY\[(.*)\]\)\)\)$")
LITERAL = re.compile(r"'((?:[^']|'')*)'::\w+")
NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")


@dataclass(frozen=True)
class Column:
    name: str
    type: str            # as format_type prints it: "text", "numeric(6,2)", "geometry(Point,4326)", "text[]"
    not_null: bool
    has_default: bool
    typname: str

    @property
    def kind(self) -> str:
        """The family the validator converts to."""
        if self.type.endswith("[]"):
            return "text[]"
        if self.typname in ("int2", "int4", "int8"):
            return "integer"
        if self.typname in ("float4", "float8"):
            return "float"
        if self.typname == "numeric":
            return "numeric"
        if self.typname == "date":
            return "date"
        if self.typname in ("timestamptz", "timestamp"):
            return "timestamp"
        if self.typname == "bool":
            return "boolean"
        if self.typname == "geometry":
            return "geometry"
        return "text"

    @property
    def numeric_limit(self) -> float | None:
        """numeric(6,2) holds values below 10^4 in magnitude."""
        m = NUMERIC.match(self.type)
        return 10.0 ** (int(m[1]) - int(m[2])) if m else None


@dataclass(frozen=True)
class Check:
    name: str
    expression: str      # from pg_get_constraintdef, without the CHECK keyword
    columns: tuple[str, ...]


@dataclass
class TableSpec:
    table: str
    columns: dict[str, Column]
    geometry_column: str
    geometry_type: str   # Point, MultiPolygon, ...
    srid: int
    unique_keys: list[tuple[str, ...]]
    code_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def provenance(self) -> str:
        """The column saying where a row came from. incidents uses `source` for the channel a
        report arrived by (a code list) and keeps provenance in `data_source`."""
        return "data_source" if "data_source" in self.columns else "source"

    def derived(self) -> set[str]:
        """Columns the ETL fills itself."""
        out = {SURROGATE, self.provenance}
        out |= {c for c in self.columns if c.endswith(UNACCENT_SUFFIX) and c[: -len(UNACCENT_SUFFIX)] in self.columns}
        return out

    def input_columns(self) -> list[str]:
        """Columns a file may provide (the geometry apart)."""
        derived = self.derived()
        return [c for c in self.columns if c not in derived and c != self.geometry_column]

    def required(self, assign_commune: bool) -> list[str]:
        out = [c.name for c in self.columns.values() if c.not_null and not c.has_default
               and c.name in self.input_columns()]
        if assign_commune and COMMUNE in out:
            out.remove(COMMUNE)
        return out

    def natural_key(self, declared: tuple[str, ...] | None) -> tuple[str, ...]:
        """The declared key, which must be a UNIQUE constraint (ON CONFLICT needs one), or the
        table's only one."""
        if declared:
            if tuple(declared) not in self.unique_keys:
                raise EtlError(
                    f"Khóa tự nhiên {list(declared)} không phải ràng buộc UNIQUE của bảng {self.table}"
                    f" (có: {[list(k) for k in self.unique_keys]}).",
                    f"Natural key {list(declared)} is not a UNIQUE constraint of table {self.table}"
                    f" (it has: {[list(k) for k in self.unique_keys]}).")
            return tuple(declared)
        if len(self.unique_keys) != 1:
            raise EtlError(f"Bảng {self.table} cần khai báo khóa tự nhiên (key).",
                           f"Table {self.table} needs a declared natural key (key).")
        return self.unique_keys[0]


def introspect(conn: psycopg.Connection, table: str) -> TableSpec:
    regclass = sql.Identifier(table).as_string(conn)
    if one(conn.execute("SELECT to_regclass(%s)", (regclass,)))[0] is None:
        raise EtlError(f"Không có bảng {table} trong CSDL (chưa migrate?).",
                       f"Table {table} does not exist in the database (not migrated?).")
    columns = {name: Column(name, typ, notnull, hasdef, typname)
               for name, typ, notnull, hasdef, typname in conn.execute(COLUMNS, (regclass,))}
    geoms = [c for c in columns.values() if c.typname == "geometry"]
    if len(geoms) != 1:
        raise EtlError(f"Bảng {table} không có đúng một cột hình học.", f"Table {table} has not exactly one geometry.")
    m = re.match(r"^geometry\((\w+),(\d+)\)$", geoms[0].type)
    if not m:
        raise EtlError(f"Cột hình học của {table} chưa khai báo kiểu và SRID.",
                       f"The geometry column of {table} declares no type and SRID.")
    spec = TableSpec(table, columns, geoms[0].name, m[1], int(m[2]), [])
    for name, contype, definition, cols in conn.execute(CONSTRAINTS, (regclass,)):
        if contype == "u":
            spec.unique_keys.append(tuple(cols))
        elif contype == "c":
            code = CODE_LIST.match(definition)
            if code:
                spec.code_lists[code[1]] = tuple(v.replace("''", "'") for v in LITERAL.findall(code[2]))
            else:
                expression = definition.removeprefix("CHECK ").removesuffix(" NOT VALID")
                spec.checks.append(Check(name, expression, tuple(cols)))
    return spec
