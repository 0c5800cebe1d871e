"""pygeoapi mounted at /ogc, built from our settings rather than from pygeoapi's import-time
globals (its own flask_app reads PYGEOAPI_CONFIG when imported)."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

import psycopg
import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.coverages as coverages_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
import pygeoapi.api.tiles as tiles_api
from flask import Blueprint, Response, make_response, request, send_from_directory
from psycopg_pool import PoolTimeout
from pygeoapi.api import API, APIRequest, apply_gzip
from pygeoapi.openapi import get_oas
from pygeoapi.provider.base import ProviderConnectionError
from pygeoapi.provider.tile import ProviderTileNotFoundError
from werkzeug.datastructures import Headers

from gis_core import hillshade, ogc_config, tiles
from gis_core.errors import DatabaseUnavailable
from gis_core.ogc_provider import connection
from gis_core.registry import Registry
from gis_core.settings import Settings

from . import ogc_html

# The OGC and GeoJSON schemas kept in the repo (see its README), served at /ogc/schemas/; every
# external $ref of the OpenAPI document is pointed there, so validators and schemathesis need no
# internet. pygeoapi's `ogc_schemas_location` would move only the Features Part 1/2 references.
SCHEMAS_DIR = Path(__file__).parent / "ogc_schemas"
LOCAL_SCHEMAS = {
    "https://schemas.opengis.net/": "",
    "https://raw.githubusercontent.com/opengeospatial/ogcapi-coverages/refs/heads/master/standard/openapi/":
        "ogcapi/coverages/part1/1.0/openapi/",
    "https://raw.githubusercontent.com/opengeospatial/ogcapi-records/master/core/openapi/":
        "ogcapi/records/part1/1.0/openapi/",
}


def local_refs(document, schemas_url: str):
    """`document` with each external $ref moved to `schemas_url` (a missing file fails a test, not a client)."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            if key == "$ref" and isinstance(value, str):
                for remote, local in LOCAL_SCHEMAS.items():
                    if value.startswith(remote):
                        value = schemas_url + local + value.removeprefix(remote)
                        break
                out[key] = value
            else:
                out[key] = local_refs(value, schemas_url)
        return out
    if isinstance(document, list):
        return [local_refs(v, schemas_url) for v in document]
    return document


_pygeoapi_transform_bbox = itemtypes_api.transform_bbox


def _transform_bbox(bbox: list, from_crs, to_crs, always_xy: bool = False) -> list:
    """pygeoapi reprojects every items request's bbox, even from CRS84 to the CRS84 our layers are
    stored in, and pyproj's to_epsg() lookup in that costs ~40 ms a request: a bbox already in the
    storage CRS is kept as it is."""
    if from_crs == to_crs:
        return bbox
    return _pygeoapi_transform_bbox(bbox, from_crs, to_crs, always_xy)


itemtypes_api.transform_bbox = _transform_bbox


def blueprint(settings: Settings) -> Blueprint:
    config = ogc_config.load(settings.pygeoapi_config, settings)
    config["server"]["locale_dir"] = str(ogc_html.compiled_catalogs(settings.var_dir / "locale"))
    api = API(config, local_refs(get_oas(config), config["server"]["url"].rstrip("/") + "/schemas/"))
    # pygeoapi's HTML pages link their own CSS and images under /ogc/static.
    bp = Blueprint("ogc", __name__, static_folder=Path(pygeoapi.__file__).parent / "static",
                   static_url_path="/static")

    def run(function: Callable, *args, check_format: bool = True, default_format: str | None = None) -> Response:
        api_request = APIRequest.from_flask(request, api.locales)
        if default_format and "f" not in request.args:
            # A tile URL is the tile: clients (MapLibre, QGIS) do not add ?f=mvt.
            api_request._format = default_format
        if check_format and not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            headers, status, content = function(api, api_request, *args)
            content = apply_gzip(headers, content)
        response = make_response(content, status)
        if headers:
            response.headers = Headers(headers)  # case-insensitive, unlike pygeoapi's dict
        return response

    origin = settings.base_url

    @bp.after_request
    def _closed_network(response: Response) -> Response:
        if response.mimetype == "text/html" and not response.direct_passthrough:
            html = ogc_html.localise(response.get_data(as_text=True), origin)
            response.set_data(ogc_html.language_menu(html, list(request.args.items(multi=True))))
        return response

    bp.add_url_rule("/", "landing", lambda: run(core_api.landing_page))
    bp.add_url_rule("/schemas/<path:path>", "schemas", lambda path: send_from_directory(
        SCHEMAS_DIR, path, mimetype="application/yaml" if path.endswith(".yaml") else "application/json",
        max_age=3600))
    bp.add_url_rule("/openapi", "openapi", lambda: run(core_api.openapi_))
    bp.add_url_rule("/conformance", "conformance", lambda: run(core_api.conformance))
    bp.add_url_rule("/TileMatrixSets", "tilematrixsets", lambda: run(tiles_api.tilematrixsets))
    bp.add_url_rule("/TileMatrixSets/<tms>", "tilematrixset",
                    lambda tms: run(tiles_api.tilematrixset, tms))
    bp.add_url_rule("/collections", "collections",
                    lambda: run(core_api.describe_collections, None))
    bp.add_url_rule("/collections/<collection_id>", "collection",
                    lambda collection_id: run(core_api.describe_collections, collection_id))
    bp.add_url_rule("/collections/<collection_id>/schema", "schema",
                    lambda collection_id: run(core_api.get_collection_schema, collection_id))
    bp.add_url_rule("/collections/<collection_id>/queryables", "queryables",
                    lambda collection_id: run(itemtypes_api.get_collection_queryables, collection_id))
    bp.add_url_rule("/collections/<collection_id>/items", "items",
                    lambda collection_id: _geojson(run(itemtypes_api.get_collection_items, collection_id,
                                                       check_format=False)))
    bp.add_url_rule("/collections/<collection_id>/items/<item_id>", "item",
                    lambda collection_id, item_id: _geojson(run(itemtypes_api.get_collection_item,
                                                                collection_id, item_id)))
    bp.add_url_rule("/collections/<collection_id>/tiles", "tilesets",
                    lambda collection_id: run(tiles_api.get_collection_tiles, collection_id))
    bp.add_url_rule("/collections/<collection_id>/tiles/<tms>", "tileset",
                    lambda collection_id, tms: run(tiles_api.get_collection_tiles_metadata, collection_id, tms))
    bp.add_url_rule("/collections/<collection_id>/tiles/<tms>/metadata", "tileset_metadata",
                    lambda collection_id, tms: run(tiles_api.get_collection_tiles_metadata, collection_id, tms))
    # OGC API - Coverages (gis_core/ogc_coverage.py): ?f=GTiff for the raster itself, bbox/subset to cut
    # it; its range type is /collections/<id>/schema above (pygeoapi 0.24 has no /rangetype).
    @bp.route("/collections/<collection_id>/coverage")
    def coverage(collection_id: str) -> Response:
        response = run(_coverage, collection_id, check_format=False)
        if response.status_code == 200 and response.mimetype == "image/tiff":
            # GDAL's /vsicurl/ reads a GeoTIFF by byte ranges and refuses a server without them.
            body = response.get_data()
            response.headers["ETag"] = tiles.etag(body)
            response.make_conditional(request, accept_ranges=True, complete_length=len(body))
        return response
    # OGC API - Processes (zoning-check, gis_core/zoning/process.py; zonal-stats,
    # gis_core/processes/zonal_stats.py): synchronous execution only.
    bp.add_url_rule("/processes", "processes", lambda: run(processes_api.describe_processes, None))
    bp.add_url_rule("/processes/<process_id>", "process",
                    lambda process_id: run(processes_api.describe_processes, process_id))
    bp.add_url_rule("/processes/<process_id>/execution", "execution",
                    lambda process_id: run(_execute, process_id, check_format=False),
                    methods=["POST"])

    @bp.route("/collections/<collection_id>/tiles/<tms>/<int:z>/<int:y>/<int:x>")
    def tile(collection_id: str, tms: str, z: int, y: int, x: int) -> Response:
        response = run(tiles_api.get_collection_tiles_data, collection_id, tms, z, y, x, check_format=False,
                       default_format="mvt")
        return _cacheable(response)

    base_layers = [layer for layer in Registry.load(settings.layers_dir).published() if layer.tiles.basemap]
    data_url = ogc_config.placeholders(settings)["IOCGIS_OGC_DATABASE_URL"]

    @bp.route("/tiles/WebMercatorQuad/<int:z>/<int:y>/<int:x>")
    def basemap_tile(z: int, y: int, x: int) -> Response:
        """The offline base map: every `basemap` layer of the registry in one vector tile."""
        defs = {name: config["resources"][name]["providers"][1] for name in (lay.id for lay in base_layers)}
        try:
            content = tiles.render(data_url, [tiles.tile_layer(data_url, d, name) for name, d in defs.items()],
                                   z, x, y)
        except ProviderTileNotFoundError as exc:
            return make_response({"code": "NotFound", "description": str(exc)}, 404)
        except ProviderConnectionError:
            return make_response({"code": "ServiceUnavailable", "description": "database unavailable"}, 503)
        response = make_response(content, 200 if content else 204)
        response.headers["Content-Type"] = "application/vnd.mapbox-vector-tile"
        return _cacheable(response)

    @bp.route("/relief/<int:z>/<int:x>/<int:y>.png")
    def relief_tile(z: int, x: int, y: int) -> Response:
        """The base map of pygeoapi's pages (server.map.url): the DEM's relief as XYZ PNG tiles."""
        try:
            with connection(data_url) as conn:
                path, _footprint = hillshade.dem_source(conn)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable("Không kết nối được cơ sở dữ liệu.", "The database cannot be reached.") from exc
        # A tile outside the grid or no DEM: NotFound, a bilingual 404 by the app's error handler.
        png = hillshade.relief_tile(path, z, x, y)
        return _cacheable(make_response(png, 200, {"Content-Type": "image/png"}))

    return bp


def _geojson(response: Response) -> Response:
    """Features and feature collections are GeoJSON (OGC API - Features /req/geojson/content);
    pygeoapi 0.24 labels them application/json."""
    if response.status_code == 200 and response.mimetype == "application/json":
        response.headers["Content-Type"] = "application/geo+json"
    return response


def _coverage(api: API, api_request: APIRequest, collection_id: str):
    """pygeoapi's coverage handler answers a malformed bbox with a 500: it is the client's, a 400."""
    if api_request.params.get("bbox") is not None:
        try:
            core_api.validate_bbox(api_request.params["bbox"])
        except ValueError as exc:
            return api.get_exception(HTTPStatus.BAD_REQUEST, api_request.get_response_headers(**api.api_headers),
                                     api_request.format, "InvalidParameterValue", str(exc))
    return coverages_api.get_collection_coverage(api, api_request, collection_id)


def execute_request_problem(data: bytes | None) -> str | None:
    """What is wrong with an execute request's body that pygeoapi would answer with a 500 (a body
    that is not UTF-8 JSON, not an object, a `subscriber` that is not one); None when it may go on.
    Execution is synchronous only, so a subscriber (callback URLs the server would call) is refused
    rather than followed. An empty body is left to pygeoapi, which answers it with a 400."""
    if not data:
        return None
    try:
        body = json.loads(data)
    except ValueError:  # malformed JSON, or bytes that are not UTF-8
        return "invalid request data: not valid JSON"
    if not isinstance(body, dict):
        return "the execute request must be a JSON object"
    if not isinstance(body.get("inputs", {}), dict) or not isinstance(body.get("outputs") or {}, dict):
        return "inputs and outputs must be JSON objects"
    if body.get("response", "raw") not in ("raw", "document"):
        return "response must be 'raw' or 'document'"
    if "subscriber" in body:
        return "subscriber is not supported: processes run synchronously"
    return None


def _execute(api: API, api_request: APIRequest, process_id: str):
    problem = execute_request_problem(api_request.data)
    if problem:
        return api.get_exception(HTTPStatus.BAD_REQUEST, api_request.get_response_headers(**api.api_headers),
                                 api_request.format, "InvalidParameterValue", problem)
    return processes_api.execute_process(api, api_request, process_id)


def _cacheable(response: Response) -> Response:
    """Tiles change only with their data: an ETag from the bytes, a short max-age, 304 on a match."""
    if response.status_code != 200:
        return response
    tag = tiles.etag(response.get_data())
    response.headers["ETag"] = tag
    response.headers["Cache-Control"] = "public, max-age=60"
    if tag in request.headers.get("If-None-Match", ""):
        not_modified = make_response(b"", 304)
        not_modified.headers["ETag"] = tag
        not_modified.headers["Cache-Control"] = response.headers["Cache-Control"]
        return not_modified
    return response
