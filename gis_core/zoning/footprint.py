"""A footprint from outside (the process, the /permits page): GeoJSON in any CRS that PROJ knows,
checked and brought to EPSG:4326, or refused with a reason a person can act on."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from ..errors import InvalidParameter
from ..ogc_config import PROVINCE_BBOX

CRS84 = {"CRS84", "OGC:CRS84", "EPSG:4326", "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
         "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326",
         "http://www.opengis.net/def/crs/EPSG/0/4326"}
MARGIN_DEG = 0.5          # a footprint may sit a little outside the province's box, not in another country
MAX_AREA_M2 = 200_000.0   # 20 ha: a building, not a district
_OGC_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)$")


def _bad(vi: str, en: str) -> InvalidParameter:
    return InvalidParameter(vi, en)


def _crs(name: str) -> CRS | None:
    """None for lon/lat WGS 84; a pyproj CRS otherwise."""
    if name in CRS84:
        return None
    match = _OGC_URI.match(name)
    try:
        return CRS.from_user_input(f"EPSG:{match[1]}" if match else name)
    except CRSError:
        raise _bad(f"Hệ toạ độ không xác định: {name!r}.", f"Unknown coordinate reference system: {name!r}.") from None


def parse_footprint(value: Any, crs: str | None = None) -> BaseGeometry:
    """A (Multi)Polygon in EPSG:4326 from a GeoJSON geometry or Feature (object or text).

    `crs` (or a legacy GeoJSON `crs` member) names the CRS of the coordinates; default CRS84."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _bad("Mặt bằng công trình không phải JSON hợp lệ.",
                       "The footprint is not valid JSON.") from None
    if not isinstance(value, dict):
        raise _bad("Mặt bằng công trình phải là một đối tượng GeoJSON.", "The footprint must be a GeoJSON object.")
    if value.get("type") == "Feature":
        legacy = value.get("crs")
        value = value.get("geometry")
        if isinstance(value, dict) and legacy and "crs" not in value:
            value = {**value, "crs": legacy}
        if not isinstance(value, dict):
            raise _bad("Feature không có hình học.", "The Feature has no geometry.")
    if value.get("type") not in ("Polygon", "MultiPolygon"):
        raise _bad(f"Mặt bằng công trình phải là Polygon hoặc MultiPolygon, không phải {value.get('type')!r}.",
                   f"The footprint must be a Polygon or MultiPolygon, not {value.get('type')!r}.")
    legacy = value.get("crs")
    legacy_crs = (legacy.get("properties") or {}).get("name") if isinstance(legacy, dict) else None
    coords = value.get("coordinates")
    if not coords:
        raise _bad("Mặt bằng công trình rỗng.", "The footprint is empty.")
    try:
        geom = shapely.from_geojson(json.dumps({"type": value["type"], "coordinates": coords}))
    except (shapely.errors.GEOSException, ValueError, TypeError):
        raise _bad("Toạ độ của mặt bằng công trình không đọc được.",
                   "The footprint's coordinates cannot be read.") from None
    if geom.is_empty:
        raise _bad("Mặt bằng công trình rỗng.", "The footprint is empty.")
    if shapely.get_coordinate_dimension(geom) != 2:
        geom = shapely.force_2d(geom)

    source = _crs(crs or legacy_crs or "CRS84")
    if source is not None:
        transformer = Transformer.from_crs(source, "EPSG:4326", always_xy=True)
        geom = shapely.transform(geom, lambda xy: _apply(transformer, xy))
    west, south, east, north = PROVINCE_BBOX
    minx, miny, maxx, maxy = geom.bounds
    if not (west - MARGIN_DEG <= minx and maxx <= east + MARGIN_DEG
            and south - MARGIN_DEG <= miny and maxy <= north + MARGIN_DEG):
        raise _bad(
            "Toạ độ nằm ngoài tỉnh Lào Cai: kiểm tra hệ toạ độ (mặc định kinh độ, vĩ độ WGS 84; "
            "toạ độ VN-2000 cần khai báo crs, ví dụ EPSG:9208).",
            "The coordinates fall outside Lào Cai: check the CRS (default WGS 84 longitude, latitude; "
            "VN-2000 coordinates need crs, e.g. EPSG:9208).")
    if not geom.is_valid:
        raise _bad(f"Mặt bằng công trình không hợp lệ ({explain_validity(geom)}), ví dụ cạnh tự cắt nhau.",
                   f"The footprint is not a valid polygon ({explain_validity(geom)}), e.g. edges crossing.")
    if geom.area == 0:
        raise _bad("Mặt bằng công trình không có diện tích.", "The footprint has no area.")
    area = abs(Geod(ellps="WGS84").geometry_area_perimeter(geom)[0])
    if area > MAX_AREA_M2:
        raise _bad(f"Mặt bằng công trình quá lớn ({area:,.0f} m², tối đa {MAX_AREA_M2:,.0f} m²).",
                   f"The footprint is too large ({area:,.0f} m², at most {MAX_AREA_M2:,.0f} m²).")
    return geom


def _apply(transformer: Transformer, xy: np.ndarray) -> np.ndarray:
    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])
