"""pygeoapi mounted at /ogc, built from our settings rather than from pygeoapi's import-time
globals (its own flask_app reads PYGEOAPI_CONFIG when imported).

Access: each request is served by the pygeoapi API of its caller's role (anonymous, or the role of
its `Authorization: Bearer` token or web session): that API's config holds only the layers and
fields the role may see, and marks editable the layers it may write (gis_core/ogc_config.py
for_role). Transactions (POST, PUT, PATCH, DELETE on items) need an API token of a role that may
write the layer: 401 without one, 403 with the wrong role."""

from __future__ import annotations

import functools
import json
import threading
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
import pygeoapi.crs
import pygeoapi.provider.base
from flask import Blueprint, Response, g, make_response, request, send_from_directory
from psycopg_pool import PoolTimeout
from pygeoapi.api import API, F_JSON, APIRequest, apply_gzip
from pygeoapi.openapi import get_oas
from pygeoapi.plugin import load_plugin
from pygeoapi.provider import get_provider_by_type
from pygeoapi.provider.base import ProviderConnectionError, ProviderGenericError
from pygeoapi.provider.tile import ProviderTileNotFoundError
from werkzeug.datastructures import Headers

from gis_core import features_write, hillshade, ogc_config, paging, tiles
from gis_core.auth import rules
from gis_core.auth.rules import ANONYMOUS
from gis_core.errors import DatabaseUnavailable, Forbidden, Unauthorized
from gis_core.ogc_provider import DatabaseUnavailableError, connection
from gis_core.registry import Registry
from gis_core.settings import Settings

from . import ogc_html
from .auth import principal

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

# pygeoapi builds the same pyproj CRS from its URI three times a request (a provider's storage CRS,
# the request's and the storage CRS again for the output), about 8 % of a page's Python time. A CRS
# object does not change and pyproj gives each thread its own PROJ handle, so one per URI serves all.
_get_crs = functools.lru_cache(maxsize=128)(pygeoapi.crs.get_crs)
pygeoapi.crs.get_crs = pygeoapi.provider.base.get_crs = _get_crs

NO_TILE = ("Không có ô bản đồ này: ngoài phạm vi thu phóng của lớp hoặc chỉ số ô sai / "
           "no such tile: outside the layer's zoom range, or a wrong tile index")


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


def with_vendor_parameters(document: dict) -> dict:
    """The OpenAPI document with our parameters (gis_core/paging.py) declared once and referenced by
    every items operation (`cursor`, `asOf`) and every single-item one (`asOf`)."""
    document.setdefault("components", {}).setdefault("parameters", {}).update(paging.OPENAPI_PARAMETERS)
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/collections/") or "get" not in operations:
            continue
        names = (paging.OPENAPI_PARAMETERS if path.endswith("/items")
                 else ["asOf"] if path.endswith("/items/{featureId}") else [])
        operations["get"].setdefault("parameters", []).extend(
            {"$ref": f"#/components/parameters/{name}"} for name in names)
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
    registry = Registry.load(settings.layers_dir)
    schemas_url = config["server"]["url"].rstrip("/") + "/schemas/"
    apis = {ANONYMOUS: API(config, with_vendor_parameters(local_refs(get_oas(config), schemas_url)))}
    apis_lock, openapi_lock = threading.Lock(), threading.Lock()

    def api_for(role: str) -> API:
        """The API as `role` sees it, made on first use; its OpenAPI document when first asked for."""
        with apis_lock:
            if role not in apis:
                apis[role] = API(ogc_config.for_role(config, registry, settings, role), {})
            return apis[role]

    def openapi_document(api: API, api_request: APIRequest):
        """The OpenAPI document of the caller's role: its layers and fields, and the transactions
        of the layers it may write (pygeoapi documents POST/PUT/DELETE for editable collections)."""
        with openapi_lock:
            if not api.openapi:
                api.openapi = with_vendor_parameters(local_refs(get_oas(api.config), schemas_url))
        return core_api.openapi_(api, api_request)

    def refused(exc: Unauthorized | Forbidden) -> Response:
        response = make_response(exc.to_dict(), exc.status)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="iocgis"'
        return response
    # pygeoapi's HTML pages link their own CSS and images under /ogc/static.
    bp = Blueprint("ogc", __name__, static_folder=Path(pygeoapi.__file__).parent / "static",
                   static_url_path="/static")

    def run(function: Callable, *args, check_format: bool = True, default_format: str | None = None) -> Response:
        try:
            api = api_for(principal().role)
        except Unauthorized as exc:  # a bearer token that is unknown, expired or revoked
            return refused(exc)
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
    ogc_base = config["server"]["url"].rstrip("/")

    @bp.after_request
    def _closed_network(response: Response) -> Response:
        if response.mimetype == "text/html" and not response.direct_passthrough:
            html = ogc_html.localise(response.get_data(as_text=True), origin)
            html = ogc_html.carry_language(html, request.args.get("lang"), ogc_base)
            response.set_data(ogc_html.language_menu(html, list(request.args.items(multi=True))))
        return response

    @bp.after_request
    def _per_caller(response: Response) -> Response:
        # What a response holds depends on who asked: no shared cache may hand it to someone else.
        response.vary.update(("Authorization", "Cookie"))
        who = g.get("principal")
        if who is not None and not who.anonymous:
            response.headers["Cache-Control"] = "private, no-store"
        return response

    def write(collection_id: str, action: str, item_id: str | None = None) -> Response:
        """A transaction, once its caller is known to be an API token of a role that may write the layer."""
        try:
            who = principal()
            if who.kind != "token":
                raise Unauthorized("Ghi dữ liệu qua OGC API cần token API (Authorization: Bearer).",
                                   "Writing through the OGC API needs an API token (Authorization: Bearer).")
            layer = next((lay for lay in registry if lay.id == collection_id), None)
            # (a layer this role may not even read is left to pygeoapi's 404, naming nothing)
            if layer is not None and rules.may_read_layer(who.role, layer) \
                    and not rules.may_write_layer(who.role, layer):
                label = rules.ROLE_LABELS[who.role]
                raise Forbidden(f"Vai trò {label[0]} không được ghi lớp {layer.title.vi}.",
                                f"The {label[1]} role may not write {layer.title.en}.")
        except (Unauthorized, Forbidden) as exc:
            return refused(exc)
        actor = features_write.ACTOR.set(who.actor)
        try:
            if action == "patch":
                return run(_patch, collection_id, item_id, check_format=False)
            return run(itemtypes_api.manage_collection_item, action, collection_id, item_id, check_format=False)
        finally:
            features_write.ACTOR.reset(actor)

    # OGC API - Features Part 4: create (POST), replace (PUT), update (PATCH), delete (DELETE).
    bp.add_url_rule("/collections/<collection_id>/items", "create_item", methods=["POST"],
                    view_func=lambda collection_id: write(collection_id, "create"))
    bp.add_url_rule("/collections/<collection_id>/items/<item_id>", "replace_item", methods=["PUT"],
                    view_func=lambda collection_id, item_id: write(collection_id, "update", item_id))
    bp.add_url_rule("/collections/<collection_id>/items/<item_id>", "update_item", methods=["PATCH"],
                    view_func=lambda collection_id, item_id: write(collection_id, "patch", item_id))
    bp.add_url_rule("/collections/<collection_id>/items/<item_id>", "delete_item", methods=["DELETE"],
                    view_func=lambda collection_id, item_id: write(collection_id, "delete", item_id))

    bp.add_url_rule("/", "landing", lambda: run(core_api.landing_page))
    bp.add_url_rule("/schemas/<path:path>", "schemas", lambda path: send_from_directory(
        SCHEMAS_DIR, path, mimetype="application/yaml" if path.endswith(".yaml") else "application/json",
        max_age=3600))
    bp.add_url_rule("/openapi", "openapi", lambda: run(openapi_document))
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
    def published(collection_id: str):
        """Our provider reads `cursor` and `asOf` and writes its next/prev links from the request as
        sent, which pygeoapi does not hand it (gis_core/paging.py)."""
        return paging.items_request(f"{apis[ANONYMOUS].get_collections_url()}/{collection_id}/items",
                                    list(request.args.items(multi=True)))

    @bp.route("/collections/<collection_id>/items")
    def items(collection_id: str) -> Response:
        with published(collection_id):
            return _geojson(run(_items, collection_id, check_format=False))

    @bp.route("/collections/<collection_id>/items/<item_id>")
    def item(collection_id: str, item_id: str) -> Response:
        with published(collection_id):
            return _geojson(run(itemtypes_api.get_collection_item, collection_id, item_id))
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
        if response.status_code == HTTPStatus.NOT_FOUND and b"Tile not found" in response.get_data():
            # pygeoapi answers every missing tile with a bare English "Tile not found".
            return make_response({"code": "NotFound", "description": NO_TILE}, 404)
        return _cacheable(response)

    base_layers = [layer for layer in registry.published() if layer.tiles.basemap]
    data_url = ogc_config.placeholders(settings)["IOCGIS_OGC_DATABASE_URL"]

    @bp.route("/tiles/WebMercatorQuad/<int:z>/<int:y>/<int:x>")
    def basemap_tile(z: int, y: int, x: int) -> Response:
        """The offline base map: every `basemap` layer of the registry in one vector tile."""
        defs = {name: config["resources"][name]["providers"][1] for name in (lay.id for lay in base_layers)}
        try:
            content = tiles.render(data_url, [tiles.tile_layer(data_url, d, name) for name, d in defs.items()],
                                   z, x, y)
        except ProviderTileNotFoundError:
            return make_response({"code": "NotFound", "description": NO_TILE}, 404)
        except ProviderConnectionError:
            return make_response({"code": "ServiceUnavailable", "description": DatabaseUnavailableError.default_msg},
                                 503, {"Retry-After": "5"})
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


def _items(api: API, api_request: APIRequest, collection_id: str):
    """pygeoapi's items handler; a compact GeoJSON page gets its features as PostgreSQL wrote them
    (gis_core/paging.py RawFeatures), the other formats as pygeoapi makes them."""
    if api_request.format not in (F_JSON, None) or api.pretty_print:  # None: JSON, the default
        return itemtypes_api.get_collection_items(api, api_request, collection_id)
    with paging.raw_features() as raw:
        headers, status, content = itemtypes_api.get_collection_items(api, api_request, collection_id)
    return headers, status, raw.splice(content) if status == HTTPStatus.OK else content


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


def _patch(api: API, api_request: APIRequest, collection_id: str, item_id: str):
    """PATCH, Part 4's partial update: pygeoapi 0.24 maps only PUT (a replacement) to its provider's
    `update`; this is the same path with `partial=True`."""
    headers = api_request.get_response_headers(**api.api_headers)
    resource = api.config["resources"].get(collection_id)
    if not resource or resource.get("type") != "collection":
        return api.get_exception(HTTPStatus.NOT_FOUND, headers, api_request.format, "NotFound", "Collection not found")
    try:
        provider = load_plugin("provider", get_provider_by_type(resource["providers"], "feature"))
        if not provider.editable:
            return api.get_exception(HTTPStatus.BAD_REQUEST, headers, api_request.format, "InvalidParameterValue",
                                     "Collection is not editable")
        provider.update(item_id, api_request.data, partial=True)
    except ProviderGenericError as err:
        return api.get_exception(err.http_status_code, headers, api_request.format, err.ogc_exception_code,
                                 err.message)
    return headers, HTTPStatus.NO_CONTENT, ""


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
