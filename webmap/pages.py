"""The pages people use."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("pages", __name__)


@blueprint.route("/")
def index():
    return "IOC-GIS"
