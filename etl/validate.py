"""Row checks that need no database: required values, types, code lists, geometry type and repair,
duplicate natural keys. Each check works on a whole column and returns, per row, the value to load
or a reason (Vietnamese, English) to reject it. The province, the commune and the table's other
CHECK rules are judged afterwards by PostGIS on the staging table (pipeline.py)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from gis_core.text import nfc, unaccent

from .errors import EtlError
from .schema import COMMUNE, UNACCENT_SUFFIX, Column, TableSpec

VN_TZ = dt.timezone(dt.timedelta(hours=7))
DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
TRUE = {"true", "t", "1", "yes", "y", "có", "co", "x"}
FALSE = {"false", "f", "0", "no", "n", "không", "khong", ""}
MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}
TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}
GEOM_FIELD = "geom"


@dataclass(frozen=True)
class Problem:
    row: int        # 0-based position in the input
    field: str | None
    vi: str
    en: str


@dataclass
class Checked:
    """The rows ready to stage: values per target column, geometry as WGS 84 shapely objects."""

    values: dict[str, list]
    geoms: np.ndarray
    ok: np.ndarray                                   # bool per row
    rejects: list[Problem] = field(default_factory=list)
    repairs: list[Problem] = field(default_factory=list)

    def reject(self, row: int, field_: str | None, vi: str, en: str) -> None:
        if self.ok[row]:
            self.ok[row] = False
        self.rejects.append(Problem(row, field_, vi, en))


def missing(v) -> bool:
    if v is None or v is pd.NaT or v is pd.NA:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, str) and v == "NaT":   # how pyogrio reads an empty date or datetime field
        return True
    return isinstance(v, np.datetime64) and np.isnat(v)


# -- text ----------------------------------------------------------------------------------------

SEP = "\x00"                           # cannot occur in text PostgreSQL stores
_MARKS = re.compile("[\u0300-\u036f]")  # the combining diacritical marks Vietnamese uses (and more)
_OTHER = re.compile("[^\x00-\x7f\u0300-\u036f]")
# What str.split() would change in ASCII text: runs of spaces, spaces at either end, other spaces.
_UNTIDY = ("  ", SEP + " ", " " + SEP, "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def unaccent_column(values: list) -> list:
    """unaccent over a whole column in a few C calls on all the texts joined (NFD, marks removed,
    lower case, spaces) rather than one Python call per name. Text with anything but ASCII and
    marks (another script, a space other than ASCII's) or with spaces to tidy goes one text at a
    time, and a text that still does not come out ASCII through unaccent alone: the result is
    always unaccent's."""
    present = [v for v in values if v is not None]
    joined = SEP.join(present)
    if not present or joined.count(SEP) != len(present) - 1:    # a text holding the separator itself
        return [None if v is None else unaccent(v) for v in values]
    decomposed = unicodedata.normalize("NFD", joined.replace("đ", "d").replace("Đ", "D"))
    if _OTHER.search(decomposed):
        plain = _MARKS.sub("", decomposed).lower().split(SEP)
        done = [" ".join(p.split()) if p.isascii() else unaccent(v) for p, v in zip(plain, present, strict=True)]
    else:
        ascii_text = decomposed.encode("ascii", "ignore").decode("ascii").lower()
        done = ascii_text.split(SEP)
        if ascii_text.startswith(" ") or ascii_text.endswith(" ") or any(u in ascii_text for u in _UNTIDY):
            done = [" ".join(p.split()) for p in done]
    if len(present) == len(values):
        return done
    rest = iter(done)
    return [None if v is None else next(rest) for v in values]


# -- CRS -------------------------------------------------------------------------------------------


def resolve_crs(declared: str | None, in_file: str | None) -> CRS:
    """The CRS the coordinates are in: the declared one when given (the file may be wrong or silent),
    else the file's. Neither: the run stops."""
    text = declared or in_file
    if not text:
        raise EtlError(
            "Tệp không ghi hệ tọa độ (CRS) và nguồn cũng không khai báo: hãy khai báo, vd --crs EPSG:9208"
            " (VN-2000 TM-3 104°45') hoặc EPSG:4326 (WGS 84). Chưa ghi gì vào CSDL.",
            "The file has no coordinate reference system and none is declared: declare one, e.g. --crs"
            " EPSG:9208 (VN-2000 TM-3 104°45') or EPSG:4326 (WGS 84). Nothing was written.")
    try:
        return CRS.from_user_input(text)
    except Exception:
        raise EtlError(f"Hệ tọa độ không hợp lệ: {text}.", f"Unknown coordinate reference system: {text}.") from None


def to_wgs84(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Reproject to EPSG:4326 (lon, lat). PROJ picks the best published transformation: for VN-2000
    that is EPSG:6960's seven parameters, the same as the towgs84 in our spatial_ref_sys."""
    present = ~shapely.is_missing(geoms)
    if present.any():
        bounds = shapely.total_bounds(geoms[present])
        if crs.is_geographic and (abs(bounds[0]) > 180 or abs(bounds[2]) > 180 or abs(bounds[1]) > 90
                                  or abs(bounds[3]) > 90):
            raise EtlError(
                f"Tọa độ ({bounds[0]:.0f}, {bounds[1]:.0f}) không phải độ kinh/vĩ nhưng hệ tọa độ là {crs.name}:"
                " hãy khai báo đúng hệ tọa độ (vd --crs EPSG:9208).",
                f"Coordinates ({bounds[0]:.0f}, {bounds[1]:.0f}) are not degrees but the CRS is {crs.name}:"
                " declare the right CRS (e.g. --crs EPSG:9208).")
    if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return geoms
    transformer = Transformer.from_crs(crs, 4326, always_xy=True)
    return shapely.transform(geoms, lambda x, y: transformer.transform(x, y), interleaved=False)


# -- values ----------------------------------------------------------------------------------------


def _text(v):
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # a code typed as a number in a spreadsheet: 12.0 -> "12"
    s = nfc(str(v)).strip()
    return s or None


def _integer(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | np.integer):
        return int(v)
    f = float(str(v).strip().replace(",", "")) if isinstance(v, str) else float(v)
    if not f.is_integer():
        raise ValueError
    return int(f)


def _number(v):
    f = float(v.strip().replace(",", ".")) if isinstance(v, str) else float(v)
    if not math.isfinite(f):
        raise ValueError
    return f


def _date(v):
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, np.datetime64 | pd.Timestamp):
        return pd.Timestamp(v).date()
    s = str(v).strip()
    if m := DMY.match(s):
        return dt.date(int(m[3]), int(m[2]), int(m[1]))
    return dt.date.fromisoformat(s[:10])


def _timestamp(v):
    if isinstance(v, np.datetime64 | pd.Timestamp):
        v = pd.Timestamp(v).to_pydatetime()
    if not isinstance(v, dt.datetime):
        s = str(v).strip()
        if m := DMY.match(s):
            v = dt.datetime(int(m[3]), int(m[2]), int(m[1]), int(m[4] or 0), int(m[5] or 0), int(m[6] or 0))
        else:
            v = dt.datetime.fromisoformat(s)
    # Times without a zone are local times in Việt Nam.
    return v if v.tzinfo else v.replace(tzinfo=VN_TZ)


def _boolean(v):
    if isinstance(v, bool | np.bool_):
        return bool(v)
    s = str(v).strip().lower()
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise ValueError


def _array(v):
    if isinstance(v, list | tuple | np.ndarray):
        items = list(v)
    else:
        s = str(v).strip()
        if s.startswith("["):
            items = json.loads(s)
        elif s.startswith("{") and s.endswith("}"):
            items = [p.strip().strip('"') for p in s[1:-1].split(",")] if s[1:-1] else []
        else:
            items = [p.strip() for p in re.split(r"[;,]", s)] if s else []
    return [nfc(str(i)) for i in items]


CONVERT: dict[str, tuple[Callable, str, str]] = {
    "text": (_text, "văn bản", "text"),
    "integer": (_integer, "số nguyên", "an integer"),
    "numeric": (_number, "số", "a number"),
    "float": (_number, "số", "a number"),
    "date": (_date, "ngày (YYYY-MM-DD hoặc DD/MM/YYYY)", "a date (YYYY-MM-DD or DD/MM/YYYY)"),
    "timestamp": (_timestamp, "thời điểm (ISO 8601)", "a timestamp (ISO 8601)"),
    "boolean": (_boolean, "đúng/sai", "true/false"),
    "text[]": (_array, "danh sách", "a list"),
}


def _fast(kind: str, arr: np.ndarray) -> tuple[list, np.ndarray] | None:
    """Whole-column conversion for the common cases (text that is text, numbers that are numbers):
    the values, and the positions it could not decide, which go through the per-value path.
    None: no fast path for this column."""
    if kind == "text" and arr.dtype == object and pd.api.types.infer_dtype(arr, skipna=True) in ("string", "empty"):
        # Each distinct value once (code lists, addresses and sources repeat a handful of values).
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        done = np.array([unicodedata.normalize("NFC", v).strip() or None for v in uniques.tolist()] + [None],
                        dtype=object)
        return done[codes].tolist(), np.empty(0, dtype=np.int64)
    if kind in ("integer", "numeric", "float"):
        if arr.dtype.kind in "iu":
            return arr.tolist(), np.empty(0, dtype=np.int64)
        if arr.dtype.kind == "f":
            num, undecided = arr.astype(float), np.zeros(len(arr), dtype=bool)
        elif arr.dtype == object:
            num = pd.to_numeric(pd.Series(arr), errors="coerce").to_numpy(dtype=float)
            undecided = np.isnan(num) & ~pd.isna(arr)
        else:
            return None
        null = np.isnan(num)
        if kind == "integer":
            undecided |= ~null & (num != np.floor(num))
            values = np.where(null | undecided, 0, num).astype(np.int64).tolist()
        else:
            undecided |= np.isinf(num)
            values = num.tolist()
        out = [None if n else v for v, n in zip(values, (null | undecided).tolist(), strict=True)]
        return out, np.flatnonzero(undecided)
    return None


def convert_column(checked: Checked, column: Column, raw, required: bool, codes: tuple[str, ...] | None) -> list:
    fn, vi_type, en_type = CONVERT[column.kind]
    name = column.name
    arr = raw if isinstance(raw, np.ndarray) else pd.Series(raw, dtype=object).to_numpy()
    fast = _fast(column.kind, arr)
    out, slow = fast if fast is not None else ([None] * len(arr), range(len(arr)))
    for i in slow:
        v = arr[i]
        if missing(v) or (isinstance(v, str) and not v.strip()):
            continue
        try:
            out[i] = fn(v)
        except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
            checked.reject(int(i), name, f"'{name}' phải là {vi_type}, nhận được {str(v)[:60]!r}.",
                           f"'{name}' must be {en_type}, got {str(v)[:60]!r}.")
    # Checks on whole columns; a row already rejected for this column is not rejected twice.
    null = np.fromiter((v is None for v in out), dtype=bool, count=len(out))
    if required:
        for i in np.flatnonzero(null & checked.ok):
            checked.reject(int(i), name, f"Thiếu giá trị bắt buộc của '{name}'.",
                           f"Required value '{name}' is missing.")
    limit = column.numeric_limit
    if limit is not None:
        values = np.array([0.0 if v is None else v for v in out], dtype=float)
        for i in np.flatnonzero(np.abs(values) >= limit):
            checked.reject(int(i), name, f"'{name}' = {out[i]} vượt quá giới hạn {limit:g}.",
                           f"'{name}' = {out[i]} exceeds the column's limit {limit:g}.")
            out[i] = None
    if codes is not None:
        values = np.array(out, dtype=object)
        for i in np.flatnonzero(~null & ~np.isin(values, np.array(codes, dtype=object))):
            checked.reject(int(i), name, f"'{name}' = {out[i]!r} không thuộc danh mục: {', '.join(codes)}.",
                           f"'{name}' = {out[i]!r} is not in the code list: {', '.join(codes)}.")
            out[i] = None
    return out


def map_codes(raw: list, mapping: dict) -> list:
    """Input codes -> the table's codes (e.g. 'MN' -> 'preschool'); values not listed pass unchanged."""
    table = {str(k): v for k, v in mapping.items()}
    return [table.get(str(v).strip(), v) if not missing(v) else v for v in raw]


# -- geometry --------------------------------------------------------------------------------------


def check_geometries(checked: Checked, geoms: np.ndarray, ring_closed: np.ndarray, target_type: str) -> np.ndarray:
    """Right type (a single part promoted to its Multi form and back), valid (make_valid, keeping
    only parts of the target's dimension), not empty; repairs recorded, the irreparable rejected."""
    out = np.full(len(geoms), None, dtype=object)
    geoms = shapely.force_2d(geoms)
    single = target_type.removeprefix("Multi")
    multi = target_type.startswith("Multi")
    dim = {"Point": 0, "LineString": 1, "Polygon": 2}[single]
    type_ids = shapely.get_type_id(geoms)
    valid = shapely.is_valid(geoms)
    # The common case, decided for the whole column at once: present, valid, of the exact type.
    fine = (type_ids == TYPE_IDS[target_type]) & valid & ~shapely.is_empty(geoms) & ~ring_closed
    out[fine] = geoms[fine]
    for i in np.flatnonzero(~fine).tolist():
        g = geoms[i]
        if g is None:
            checked.reject(i, GEOM_FIELD, "Thiếu hình học hoặc hình học không đọc được.",
                           "Geometry is missing or unreadable.")
            continue
        if shapely.is_empty(g):
            checked.reject(i, GEOM_FIELD, "Hình học rỗng.", "Geometry is empty.")
            continue
        tid = int(type_ids[i])
        if tid not in (TYPE_IDS[single], TYPE_IDS[MULTI[single]]) and tid != 7:
            checked.reject(i, GEOM_FIELD, f"Sai kiểu hình học: {g.geom_type}, lớp cần {target_type}.",
                           f"Wrong geometry type: {g.geom_type}, the layer needs {target_type}.")
            continue
        if ring_closed[i]:
            checked.repairs.append(Problem(i, GEOM_FIELD, "Vòng không khép kín: đã khép lại.",
                                           "Unclosed ring: closed."))
        if not valid[i]:
            reason = shapely.is_valid_reason(g)
            fixed = shapely.make_valid(g)
            parts = [p for p in shapely.get_parts(fixed) if shapely.get_dimensions(p) == dim and not p.is_empty]
            # make_valid may return a collection; the parts of the layer's dimension are what was meant.
            parts = [q for p in parts for q in shapely.get_parts(p)]
            if not parts:
                checked.reject(i, GEOM_FIELD, f"Hình học không hợp lệ, không sửa được ({reason}).",
                               f"Invalid geometry that cannot be repaired ({reason}).")
                continue
            g = shapely.multipolygons(parts) if single == "Polygon" else (
                shapely.multilinestrings(parts) if single == "LineString" else shapely.multipoints(parts))
            checked.repairs.append(Problem(i, GEOM_FIELD, f"Hình học không hợp lệ ({reason}): đã sửa bằng make_valid.",
                                           f"Invalid geometry ({reason}): repaired with make_valid."))
        elif tid == 7:
            checked.reject(i, GEOM_FIELD, f"Sai kiểu hình học: {g.geom_type}, lớp cần {target_type}.",
                           f"Wrong geometry type: {g.geom_type}, the layer needs {target_type}.")
            continue
        parts = shapely.get_parts(g)
        if multi:
            g = g if g.geom_type == target_type else (
                shapely.multipolygons(parts) if single == "Polygon" else (
                    shapely.multilinestrings(parts) if single == "LineString" else shapely.multipoints(parts)))
        elif g.geom_type != single:
            if len(parts) != 1:
                checked.reject(i, GEOM_FIELD, f"Có {len(parts)} phần nhưng lớp cần một {single}.",
                               f"{len(parts)} parts but the layer needs a single {single}.")
                continue
            g = parts[0]
        out[i] = g
    return out


# -- the whole row set -----------------------------------------------------------------------------


def check_rows(spec: TableSpec, records: pd.DataFrame, mapping: dict[str, str], defaults: dict,
               code_maps: dict, geoms: np.ndarray, ring_closed: np.ndarray, key: tuple[str, ...],
               assign_commune: bool, provenance: str, offset: int = 0, seen: dict | None = None) -> Checked:
    """The rows of `records` (one chunk of the input, starting at row `offset`: the problems name
    rows of the whole input). `seen` holds the natural keys of earlier chunks' rows, each with the
    row that brought it, and takes this chunk's: a duplicate of any earlier row is rejected, so a
    run checked chunk by chunk rejects exactly the rows a run checked at once would."""
    n = len(records)
    checked = Checked({}, np.empty(0, dtype=object), np.ones(n, dtype=bool))
    required = set(spec.required(assign_commune))
    for name in spec.input_columns():
        column = spec.columns[name]
        if name in mapping:
            raw = records[mapping[name]].to_numpy()
        elif name in defaults:
            raw = [defaults[name]] * n
        else:
            if name == COMMUNE and assign_commune:
                checked.values[name] = [None] * n
            continue
        declared = code_maps.get(name)
        if isinstance(declared, dict):
            raw = map_codes(raw, declared)
        codes = spec.code_lists.get(name)
        if codes is None and declared is not None:
            codes = tuple(declared.values()) if isinstance(declared, dict) else tuple(declared)
        checked.values[name] = convert_column(checked, column, raw, name in required, codes)
    for name in spec.columns:
        if name.endswith(UNACCENT_SUFFIX) and name in spec.derived():
            base = checked.values.get(name[: -len(UNACCENT_SUFFIX)], [None] * n)
            checked.values[name] = unaccent_column(base)
    checked.values[spec.provenance] = [provenance] * n
    checked.geoms = check_geometries(checked, geoms, ring_closed, spec.geometry_type)
    _reject_duplicates(checked, key, offset, seen)
    if offset:
        checked.rejects = [Problem(p.row + offset, p.field, p.vi, p.en) for p in checked.rejects]
        checked.repairs = [Problem(p.row + offset, p.field, p.vi, p.en) for p in checked.repairs]
    return checked


def _reject_duplicates(checked: Checked, key: tuple[str, ...], offset: int, seen: dict | None) -> None:
    """Duplicates of the natural key among rows otherwise fine: the first one wins. `seen` holds the
    keys of earlier chunks, each with its row, and takes this chunk's."""
    n = len(checked.ok)
    first = {} if seen is None else seen
    ok = np.flatnonzero(checked.ok).tolist()
    columns = [checked.values.get(k, [None] * n) for k in key]
    if len(ok) < n:
        columns = [[col[i] for i in ok] for col in columns]
    for i, row in zip(ok, zip(*columns, strict=True), strict=True):
        earlier = first.setdefault(row, i + offset)
        if earlier != i + offset:
            checked.reject(i, ",".join(key),
                           f"Trùng khóa {dict(zip(key, row, strict=True))} với dòng {earlier + 1}.",
                           f"Duplicate key {dict(zip(key, row, strict=True))}: same as row {earlier + 1}.")
