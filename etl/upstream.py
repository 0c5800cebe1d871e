"""Upstream systems: another server's OGC API Features collection (paged by its `next` links), a
JSON REST endpoint paged by a page number, and a drop directory where departments leave files."""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import shapely

from .errors import EtlError
from .readers import Extract, from_features
from .sources import Source

TIMEOUT_S = 60
MAX_PAGES = 100_000          # a server whose `next` never ends must not hold a run forever
USER_AGENT = "iocgis-etl/0.1"


def get_json(url: str) -> dict | list:
    request = urllib.request.Request(url, headers={"Accept": "application/geo+json, application/json",
                                                   "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise EtlError(f"Không lấy được dữ liệu từ {url}: {exc}", f"Cannot fetch {url}: {exc}") from None


def ogcapi_pages(base: str, collection: str, limit: int = 1000) -> Iterator[dict]:
    """Each page of /collections/{collection}/items, following rel=next until there is none."""
    url = (f"{base.rstrip('/')}/collections/{urllib.parse.quote(collection)}/items?"
           + urllib.parse.urlencode({"f": "json", "limit": limit}))
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        if url in seen:
            raise EtlError(f"Liên kết 'next' lặp lại: {url}", f"The 'next' links loop: {url}")
        seen.add(url)
        page = get_json(url)
        if not isinstance(page, dict) or page.get("type") != "FeatureCollection":
            raise EtlError(f"{url} không trả về FeatureCollection.", f"{url} did not return a FeatureCollection.")
        yield page
        nxt = next((link["href"] for link in page.get("links", [])
                    if link.get("rel") == "next" and link.get("href")), None)
        if not nxt or not page.get("features"):
            return
        url = urllib.parse.urljoin(url, nxt)


def read_ogcapi(source: Source, limit: int | None = None) -> Extract:
    assert source.url is not None and source.collection is not None   # required by parse_source
    features: list[dict] = []
    digest = hashlib.sha256()
    for page in ogcapi_pages(source.url, source.collection, limit or int(source.rest.get("page_size", 1000))):
        features += page["features"]
        digest.update(json.dumps(page["features"], sort_keys=True).encode())
    # OGC API Features serves CRS84 (lon, lat) unless asked for another CRS.
    return from_features(features, digest.hexdigest(), f"{source.url} {source.collection}")


def _dig(page, path: str | None):
    for part in (path.split(".") if path else []):
        page = page.get(part) if isinstance(page, dict) else None
    return page


def read_rest(source: Source) -> Extract:
    """A JSON list of records per page: ?{page_param}=N&{size_param}=M until a short or empty page.
    Geometry from lon/lat fields, a WKT field or a GeoJSON geometry field (source.geometry)."""
    assert source.url is not None   # required by parse_source
    rest = source.rest
    page_param, size_param = rest.get("page_param", "page"), rest.get("size_param", "page_size")
    size, page_no = int(rest.get("page_size", 500)), int(rest.get("first_page", 1))
    records: list[dict] = []
    digest = hashlib.sha256()
    sep = "&" if "?" in source.url else "?"
    for _ in range(MAX_PAGES):
        url = source.url + sep + urllib.parse.urlencode({page_param: page_no, size_param: size})
        items = _dig(get_json(url), rest.get("items"))
        if not isinstance(items, list):
            raise EtlError(f"{url}: không thấy danh sách bản ghi tại '{rest.get('items')}'.",
                           f"{url}: no list of records at '{rest.get('items')}'.")
        records += items
        digest.update(json.dumps(items, sort_keys=True).encode())
        if len(items) < size:
            break
        page_no += 1
    geometry = source.geometry or {"lon": "lon", "lat": "lat"}
    features = []
    for r in records:
        props = dict(r)
        if "geojson" in geometry:
            geom = props.pop(geometry["geojson"], None)
        elif "wkt" in geometry:
            wkt = props.pop(geometry["wkt"], None)
            geom = json.loads(shapely.to_geojson(shapely.from_wkt(wkt))) if wkt else None
        else:
            lon, lat = props.pop(geometry["lon"], None), props.pop(geometry["lat"], None)
            try:
                geom = {"type": "Point", "coordinates": [float(lon), float(lat)]}
            except (TypeError, ValueError):
                geom = None
        features.append({"type": "Feature", "properties": props, "geometry": geom})
    return from_features(features, digest.hexdigest(), source.url, crs=source.crs or "OGC:CRS84")


# -- drop directory --------------------------------------------------------------------------------


def dropped_files(source: Source) -> list[Path]:
    """Files waiting in the drop directory, oldest first (processed/ and failed/ are not waiting)."""
    assert source.path is not None   # required by parse_source
    directory = Path(source.path)
    if not directory.is_dir():
        raise EtlError(f"Không có thư mục {directory}.", f"No directory {directory}.")
    files = [p for p in directory.glob(source.pattern) if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def file_away(path: Path, outcome: str) -> Path:
    """Move a processed file to processed/ or failed/ beside it, never overwriting an earlier one."""
    target_dir = path.parent / outcome
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(str(path), target)
    return target
