"""OGC API - Coverages: pygeoapi's rasterio provider with the client's mistakes answered as 400.

The stock provider reads `bbox-crs` with `CRS.from_epsg`, so the URIs that clients send (and that
the standard requires) fail inside it; a bbox or subset off the raster and a bbox given together
with a subset come back as a 500. Here `bbox-crs` is any URI or CURIE PROJ knows (CRS84 by
default, axis order as its authority says, as for the features), the bbox is moved into the
raster's CRS before the stock code cuts it, and every such case is an `InvalidParameterValue`.
"""

from __future__ import annotations

import pyproj
from pygeoapi.provider.base import ProviderInvalidQueryError, ProviderQueryError
from pygeoapi.provider.rasterio_ import RasterioProvider

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class InvalidCoverageQuery(ProviderInvalidQueryError):
    ogc_exception_code = "InvalidParameterValue"


class CoverageProvider(RasterioProvider):
    def __init__(self, provider_def: dict):
        self.options_band = provider_def.get("band") or {}
        super().__init__(provider_def)

    def query(self, properties=[], subsets={}, bbox=None, bbox_crs=None,  # noqa: B006
              datetime_=None, format_="json", **kwargs):
        if bbox:
            bbox = self._native_bbox(bbox, bbox_crs)
        elif bbox_crs is not None:
            raise InvalidCoverageQuery(user_msg="bbox-crs cần đi kèm bbox / bbox-crs given without bbox")
        for axis, bounds in (subsets or {}).items():
            if len(bounds) != 2 or any(not isinstance(v, int | float) for v in bounds):
                raise InvalidCoverageQuery(user_msg=f"subset {axis}: cần hai số / needs two numbers")
        try:
            return super().query(properties=properties, subsets=subsets or {}, bbox=bbox,
                                 bbox_crs=self._data.crs.to_epsg() or 4326, datetime_=datetime_,
                                 format_=format_, **kwargs)
        except ProviderQueryError as exc:
            # The stock code's only query errors are the client's: a subset off the raster, bbox
            # together with a subset on the same axes, a band that does not exist.
            raise InvalidCoverageQuery(
                user_msg="subset nằm ngoài lớp raster, trùng trục với bbox hoặc dải (band) không có / subset off the "
                         "coverage, bbox together with a subset, or no such band") from exc

    def get_fields(self) -> dict:
        """The band's title and unit from the registry (carried in the provider definition as `band`):
        the demo GeoTIFFs have no band descriptions, and the schema should still say what a value is."""
        fields = super().get_fields()
        band = self.options_band
        if band and "1" in fields:
            fields["1"]["title"] = band.get("title") or fields["1"]["title"]
            if band.get("unit"):
                fields["1"]["x-ogc-unit"] = band["unit"]
        return fields

    def _native_bbox(self, bbox: list, bbox_crs) -> list[float]:
        """The bbox (in bbox-crs, CRS84 by default) as [minx, miny, maxx, maxy] in the raster's CRS,
        refused when it does not overlap the raster."""
        if len(bbox) == 6:
            bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
        if len(bbox) != 4:
            raise InvalidCoverageQuery(user_msg="bbox cần 4 số / bbox needs 4 numbers")
        try:
            source = pyproj.CRS.from_user_input(str(bbox_crs) if bbox_crs else CRS84)
        except pyproj.exceptions.CRSError:
            raise InvalidCoverageQuery(user_msg=f"bbox-crs không rõ / unknown bbox-crs: {bbox_crs}") from None
        target = pyproj.CRS.from_user_input(self._data.crs.to_wkt())
        if target.is_geographic:
            target = pyproj.CRS.from_user_input(CRS84) if target.equals(pyproj.CRS.from_epsg(4326)) else target
        # Input in the authority's axis order (EPSG:4326 is lat, lon); output always x, y.
        transform = pyproj.Transformer.from_crs(source, target, always_xy=False)
        xy_out = target.axis_info[0].direction.lower() in ("east", "west")
        a0, a1, b0, b1 = bbox[0], bbox[1], bbox[2], bbox[3]
        corners = [transform.transform(u, v) for u in (a0, b0) for v in (a1, b1)]
        if not xy_out:
            corners = [(y, x) for x, y in corners]
        xs = [c[0] for c in corners]
        ys = [c[1] for c in corners]
        if any(v != v or v in (float("inf"), float("-inf")) for v in xs + ys):
            raise InvalidCoverageQuery(user_msg="bbox nằm ngoài miền của bbox-crs / bbox outside its CRS's area")
        minx, miny, maxx, maxy = min(xs), min(ys), max(xs), max(ys)
        left, bottom, right, top = self._data.bounds
        if minx >= right or maxx <= left or miny >= top or maxy <= bottom:
            raise InvalidCoverageQuery(user_msg="bbox không giao với lớp raster / bbox does not overlap the coverage")
        return [minx, miny, maxx, maxy]
