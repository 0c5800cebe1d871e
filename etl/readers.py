"""Files in, one shape out: the rows as a DataFrame of source columns, their geometries (shapely,
None where missing or unreadable), which rows had a ring closed on the way in, and the file's CRS
(None when the file does not say it).

GeoJSON, GeoPackage and zipped Shapefiles are read by GDAL (pyogrio); CSV by Python, with the
geometry in lon/lat columns or a WKT column. Text is decoded from the encoding the source declares
(`encoding:` in its YAML, `--encoding` on the command line), else for a shapefile from its .cpg:
UTF-8, a Windows code page such as 1258, or one of the legacy Vietnamese font encodings TCVN3
(ABC) and VNI, decoded by etl.vnfonts. In GeoJSON and GeoPackage, which are Unicode, a declared
font encoding means text typed in that font and stored as the look-alike Latin-1 characters
("Lµo Cai"): those are decoded back ("Lào Cai")."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely
from pyogrio.raw import read as ogr_read
from pyogrio.raw import read_arrow

from . import vnfonts
from .errors import EtlError

GDAL_SUFFIXES = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".zip": "Shapefile",
                 ".shp": "Shapefile"}
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "kinh_do", "kinhdo")
LAT_NAMES = ("lat", "latitude", "y", "vi_do", "vido")
WKT_NAMES = ("wkt", "geom", "geometry", "the_geom", "wkt_geom")

UTF8 = {"UTF-8", "UTF8", "65001", "UTF_8"}
WINDOWS_PAGE = re.compile(r"(?:ANSI\s*|CP\s*|WINDOWS-?)?(\d{3,5})")
LATIN1_RUN = re.compile("[\x00-\xff]+")
CP1258 = {"1258", "CP1258", "WINDOWS-1258", "WINDOWS1258"}


@dataclass
class Extract:
    records: pd.DataFrame          # source columns, index 0..n-1; the file's row number is index + 1
    geoms: np.ndarray              # shapely geometries or None
    ring_closed: np.ndarray        # bool: the geometry was read only after closing an open ring
    crs: str | None                # as the file says it (an authority code or WKT), None if it does not
    checksum: str                  # sha256 of what was read
    origin: str                    # what was read, for the run record

    def __len__(self) -> int:
        return len(self.records)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def from_wkb(wkb: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Geometries from WKB, and which ones could only be read by closing an open ring."""
    wkb = np.asarray(wkb, dtype=object)
    strict = shapely.from_wkb(wkb, on_invalid="ignore")
    broken = np.array([w is not None for w in wkb], dtype=bool) & shapely.is_missing(strict)
    if broken.any():
        strict[broken] = shapely.from_wkb(wkb[broken], on_invalid="fix")
    return strict, broken & ~shapely.is_missing(strict)


def read_file(path: Path, *, layer_name: str | None = None, encoding: str | None = None,
              csv_geometry: dict | None = None) -> Extract:
    path = Path(path)
    if not path.is_file():
        raise EtlError(f"Không tìm thấy tệp {path}.", f"File not found: {path}.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path, encoding=encoding, geometry=csv_geometry)
    if suffix not in GDAL_SUFFIXES:
        raise EtlError(f"Không đọc được định dạng {suffix} (dùng GeoJSON, GeoPackage, Shapefile nén zip, CSV).",
                       f"Unsupported format {suffix} (use GeoJSON, GeoPackage, zipped Shapefile or CSV).")
    source = str(path)
    if suffix == ".zip":
        source, encoding = _shapefile_in_zip(path, encoding)
    elif suffix == ".shp":
        encoding = encoding or _cpg_encoding(path.with_suffix(".cpg").read_text(errors="replace")
                                             if path.with_suffix(".cpg").exists() else None)
    return read_gdal(source, layer_name=layer_name, encoding=encoding, checksum=sha256_file(path),
                     origin=str(path))


def read_gdal(source: str, *, layer_name: str | None, encoding: str | None, checksum: str, origin: str) -> Extract:
    layers = pyogrio.list_layers(source)
    if layer_name is None:
        if len(layers) != 1:
            raise EtlError(f"Tệp có {len(layers)} lớp: cần chỉ rõ lớp (layer_name).",
                           f"The file has {len(layers)} layers: name one (layer_name).")
        layer_name = str(layers[0][0])
    codec = _codec(encoding)
    # A shapefile's DBF is bytes: read byte for byte as Latin-1 and decoded here by Python's codec
    # (pyogrio's own decoding of legacy pages drops the last character of every string). Other
    # formats are Unicode: GDAL decodes them, a font encoding is undone afterwards.
    dbf = GDAL_SUFFIXES.get(Path(source).suffix.lower()) == "Shapefile"
    read_encoding = "latin1" if codec and dbf else (None if codec else encoding)
    with warnings.catch_warnings():
        # GDAL warns about each open ring it meets; they are closed and recorded as repaired instead.
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            meta, wkb, values = _read_columns(source, layer_name, read_encoding)
        except pyogrio.errors.DataSourceError as exc:
            raise EtlError(f"Không đọc được tệp: {exc}", f"Cannot read the file: {exc}") from None
    names = list(meta["fields"])
    if codec and (dbf or codec in vnfonts.CODECS):
        names = [_recode(n, codec) for n in names]
        values = [np.array([_recode(v, codec) if isinstance(v, str) else v for v in col], dtype=object)
                  if col.dtype == object else col for col in values]
    # Numeric columns keep their numpy types: the validator converts them a whole column at a time.
    records = pd.DataFrame({name: pd.Series(col if col.dtype.kind in "iufb" else col.astype(object))
                            for name, col in zip(names, values, strict=True)})
    n = len(records) if len(meta["fields"]) else (len(wkb) if wkb is not None else 0)
    if wkb is None:
        geoms, closed = np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    else:
        geoms, closed = from_wkb(wkb)
    if not len(meta["fields"]):
        records = pd.DataFrame(index=range(n))
    return Extract(records, geoms, closed, meta.get("crs"), checksum, origin)


def _read_columns(source: str, layer_name: str, encoding: str | None) -> tuple[dict, np.ndarray | None, list]:
    """The layer's fields as numpy columns and its geometries as WKB (None: the layer has none).
    Through GDAL's columnar (Arrow) interface, ten times faster than feature by feature, and
    turned into the same columns as pyogrio's feature reader gives (integers with nulls as floats
    with NaN), but for booleans with nulls: True/False/None rather than 1.0/0.0/NaN, which no
    boolean column would take. A layer with date-times is read feature by feature: there
    the two readers differ in how they treat time zones."""
    meta, table = read_arrow(source, layer=layer_name, encoding=encoding)
    fields = list(meta["fields"])
    if any(pa.types.is_timestamp(table.column(name).type) for name in fields):
        meta, _fids, wkb, values = ogr_read(source, layer=layer_name, encoding=encoding)
        return meta, wkb, values
    values = [table.column(name).to_numpy(zero_copy_only=False) for name in fields]
    wkb = table.column(len(fields)).to_numpy(zero_copy_only=False) if table.num_columns > len(fields) else None
    return meta, wkb, values


def _codec(encoding: str | None) -> str | None:
    """Python's codec for a non-UTF-8 code page, None for UTF-8 or when GDAL is left to decide."""
    if encoding is None or encoding.upper() in UTF8:
        return None
    try:
        return codecs.lookup("cp1258" if encoding.upper() in CP1258 else encoding).name
    except LookupError:
        raise EtlError(f"Bảng mã không hỗ trợ: {encoding}.", f"Unsupported encoding: {encoding}.") from None


def _recode(text: str, codec: str) -> str:
    # Only runs of Latin-1 characters were bytes of the code page; anything beyond is Unicode
    # already (a file partly converted, a name typed again by hand) and stays as it is.
    return LATIN1_RUN.sub(lambda m: m[0].encode("latin1").decode(codec, errors="replace"), text)


def _cpg_encoding(cpg: str | None) -> str | None:
    if cpg is None:
        return None
    name = cpg.strip().upper()
    if name in UTF8:
        return "UTF-8"
    if name in CP1258:
        return "CP1258"
    if m := WINDOWS_PAGE.fullmatch(name):      # "1252", "ANSI 1252", "CP1251", "WINDOWS-1250"
        return f"cp{m[1]}"
    return vnfonts.codec_name(name) or cpg.strip()


def _shapefile_in_zip(path: Path, encoding: str | None) -> tuple[str, str | None]:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            shps = [n for n in names if n.lower().endswith(".shp")]
            if len(shps) != 1:
                raise EtlError(f"Tệp zip phải chứa đúng một .shp (có {len(shps)}).",
                               f"The zip must hold exactly one .shp (it has {len(shps)}).")
            stem = shps[0][:-4]
            cpg = next((n for n in names if n.lower() == f"{stem.lower()}.cpg"), None)
            cpg_text = z.read(cpg).decode("ascii", errors="replace") if cpg else None
    except zipfile.BadZipFile:
        raise EtlError("Tệp zip bị hỏng.", "The zip file is corrupt.") from None
    if encoding is None:
        encoding = _cpg_encoding(cpg_text)
    return f"/vsizip/{path}/{shps[0]}", encoding


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def read_csv(path: Path, *, encoding: str | None = None, geometry: dict | None = None) -> Extract:
    raw = path.read_bytes()
    try:
        text = raw.decode(_codec(encoding) or "utf-8-sig")
    except UnicodeDecodeError:
        raise EtlError("Tệp CSV không phải UTF-8: khai báo bảng mã (encoding).",
                       "The CSV is not UTF-8: declare its encoding.") from None
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        return Extract(pd.DataFrame(), np.array([], dtype=object), np.array([], dtype=bool), None,
                       hashlib.sha256(raw).hexdigest(), str(path))
    header, body = rows[0], [r for r in rows[1:] if any(cell.strip() for cell in r)]
    records = pd.DataFrame([[cell if cell != "" else None for cell in r] + [None] * (len(header) - len(r))
                            for r in body], columns=header, dtype=object)
    geometry = geometry or {}
    wkt_col = geometry.get("wkt") or (None if geometry.get("lon") else _pick(header, WKT_NAMES))
    lon_col = geometry.get("lon") or _pick(header, LON_NAMES)
    lat_col = geometry.get("lat") or _pick(header, LAT_NAMES)
    closed = np.zeros(len(records), dtype=bool)
    if wkt_col:
        if wkt_col not in header:
            raise _missing(wkt_col, header)
        wkt = records[wkt_col].to_numpy(dtype=object)
        geoms = shapely.from_wkt(wkt, on_invalid="ignore")
        broken = np.array([w is not None for w in wkt], dtype=bool) & shapely.is_missing(geoms)
        if broken.any():
            geoms[broken] = shapely.from_wkt(wkt[broken], on_invalid="fix")
            closed = broken & ~shapely.is_missing(geoms)
        records = records.drop(columns=[wkt_col])
    elif lon_col and lat_col:
        for col in (lon_col, lat_col):
            if col not in header:
                raise _missing(col, header)
        lon = pd.to_numeric(records[lon_col].str.replace(",", ".", regex=False), errors="coerce").to_numpy()
        lat = pd.to_numeric(records[lat_col].str.replace(",", ".", regex=False), errors="coerce").to_numpy()
        geoms = shapely.points(lon, lat)
        geoms[np.isnan(lon) | np.isnan(lat)] = None
        records = records.drop(columns=[lon_col, lat_col])
    else:
        raise EtlError("CSV không có cột tọa độ (lon/lat) hay WKT: khai báo trong geometry.",
                       "The CSV has no coordinate (lon/lat) or WKT column: declare them under geometry.")
    return Extract(records.reset_index(drop=True), np.asarray(geoms, dtype=object), closed, None,
                   hashlib.sha256(raw).hexdigest(), str(path))


def _missing(column: str, header: list[str]) -> EtlError:
    return EtlError(f"Không có cột '{column}' trong tệp (có: {', '.join(header)}).",
                    f"Column '{column}' is not in the file (it has: {', '.join(header)}).")


def from_features(features: list[dict], checksum: str, origin: str, crs: str = "OGC:CRS84") -> Extract:
    """GeoJSON features fetched from a service (coordinates in lon/lat unless said otherwise)."""
    records = pd.DataFrame([f.get("properties") or {} for f in features], dtype=object)
    if "id" not in records.columns and any("id" in f for f in features):
        records["id"] = [f.get("id") for f in features]
    geoms = np.array([shapely.from_geojson(_json(f["geometry"]), on_invalid="ignore") if f.get("geometry") else None
                      for f in features], dtype=object)
    return Extract(records.reset_index(drop=True), geoms, np.zeros(len(features), dtype=bool), crs, checksum, origin)


def _json(value) -> str:
    import json

    return json.dumps(value)
