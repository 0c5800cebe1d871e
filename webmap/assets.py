"""Third-party JS/CSS/fonts served from node_modules (installed from npm at set-up): no CDN."""

from __future__ import annotations

import json

from flask import Blueprint, abort, send_from_directory

from gis_core.settings import PROJECT_ROOT, Settings


def blueprint(settings: Settings) -> Blueprint:
    bp = Blueprint("assets", __name__)
    # Only the packages we depend on are reachable, not all of node_modules.
    allowed = set(json.loads((PROJECT_ROOT / "package.json").read_text())["dependencies"])

    @bp.route("/vendor/<path:filename>")
    def vendor(filename: str):
        package = filename.split("/", 2)
        name = "/".join(package[:2]) if filename.startswith("@") else package[0]
        if name not in allowed:
            abort(404)
        response = send_from_directory(settings.assets_dir, filename, max_age=86400)
        return response

    return bp
