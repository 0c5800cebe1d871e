"""pygeoapi mounted at /ogc, built from our settings rather than from pygeoapi's import-time
globals (its own flask_app reads PYGEOAPI_CONFIG when imported)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.tiles as tiles_api
from flask import Blueprint, Response, make_response, request
from pygeoapi.api import API, APIRequest, apply_gzip
from pygeoapi.openapi import get_oas

from gis_core import ogc_config
from gis_core.settings import Settings


def blueprint(settings: Settings) -> Blueprint:
    config = ogc_config.load(settings.pygeoapi_config, settings)
    api = API(config, get_oas(config))
    # pygeoapi's HTML pages link their own CSS and images under /ogc/static.
    bp = Blueprint("ogc", __name__, static_folder=Path(pygeoapi.__file__).parent / "static",
                   static_url_path="/static")

    def run(function: Callable, *args, check_format: bool = True) -> Response:
        api_request = APIRequest.from_flask(request, api.locales)
        if check_format and not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            headers, status, content = function(api, api_request, *args)
            content = apply_gzip(headers, content)
        response = make_response(content, status)
        if headers:
            response.headers = headers
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
    return bp
