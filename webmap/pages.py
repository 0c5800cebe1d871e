"""The pages people use."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from .map import render_page

blueprint = Blueprint("pages", __name__)


@blueprint.route("/")
def index():
    state = current_app.extensions["iocgis"]
    # The page depends only on the registry and the settings, both fixed for the app's life;
    # two first requests racing both render the same HTML, which is harmless.
    html = state.get("map_html")
    if html is None:
        html = state["map_html"] = render_page(state["registry"], state["settings"])
    return Response(html, mimetype="text/html")
