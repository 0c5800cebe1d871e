"""pygeoapi mounted at /ogc, built from our settings rather than from pygeoapi's import-time
globals (its own flask_app reads PYGEOAPI_CONFIG when imported)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
import pygeoapi.api.tiles as tiles_api
from flask import Blueprint, Response, make_response, request
from pygeoapi.api import API, APIRequest, apply_gzip
from pygeoapi.openapi import get_oas
from pygeoapi.provider.base import ProviderConnectionError
from pygeoapi.provider.tile import ProviderTileNotFoundError
from werkzeug.datastructures import Headers

from gis_core import ogc_config, tiles
from gis_core.registry import Registry
from gis_core.settings import Settings

from . import ogc_html


def blueprint(settings: Settings) -> Blueprint:
    config = ogc_config.load(settings.pygeoapi_config, settings)
    api = API(config, get_oas(config))
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
            response.set_data(ogc_html.localise(response.get_data(as_text=True), origin))
        return response

    bp.add_url_rule("/", "landing", lambda: run(core_api.landing_page))
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
                    lambda collection_id: run(itemtypes_api.get_collection_items, collection_id,
                                              check_format=False))
    bp.add_url_rule("/collections/<collection_id>/items/<item_id>", "item",
                    lambda collection_id, item_id: run(itemtypes_api.get_collection_item,
                                                       collection_id, item_id))
    bp.add_url_rule("/collections/<collection_id>/tiles", "tilesets",
                    lambda collection_id: run(tiles_api.get_collection_tiles, collection_id))
    bp.add_url_rule("/collections/<collection_id>/tiles/<tms>", "tileset",
                    lambda collection_id, tms: run(tiles_api.get_collection_tiles_metadata, collection_id, tms))
    bp.add_url_rule("/collections/<collection_id>/tiles/<tms>/metadata", "tileset_metadata",
                    lambda collection_id, tms: run(tiles_api.get_collection_tiles_metadata, collection_id, tms))
    # OGC API - Processes (the zoning check, gis_core/zoning/process.py): synchronous execution only.
    bp.add_url_rule("/processes", "processes", lambda: run(processes_api.describe_processes, None))
    bp.add_url_rule("/processes/<process_id>", "process",
                    lambda process_id: run(processes_api.describe_processes, process_id))
    bp.add_url_rule("/processes/<process_id>/execution", "execution",
                    lambda process_id: run(processes_api.execute_process, process_id, check_format=False),
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

    return bp


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
