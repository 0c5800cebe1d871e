"""The one Flask app: pages at /, OGC APIs (pygeoapi) at /ogc, local assets at /vendor."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider

from gis_core.db import Database
from gis_core.errors import IocgisError
from gis_core.registry import Registry
from gis_core.settings import Settings

from . import auth
from .security import install as install_security


class VietnameseJSON(DefaultJSONProvider):
    ensure_ascii = False  # Vietnamese stays readable in JSON


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json = VietnameseJSON(app)
    app.config["IOCGIS_SETTINGS"] = settings

    registry = Registry.load(settings.layers_dir)
    database = Database.from_settings(settings)
    database.open()
    app.extensions["iocgis"] = {"settings": settings, "registry": registry, "db": database}
    install_security(app)  # security headers on every response, no traceback to users (webmap/security.py)
    auth.configure(app, settings)  # sessions, /login, /logout, CSRF (webmap/auth.py; rules in gis_core/auth)

    from . import (
        admin_audit,
        admin_etl,
        api,
        assets,
        devices,
        incidents_board,
        mapapi,
        ogc,
        pages,
        permits,
        reports,
        wall,
    )

    app.register_blueprint(assets.blueprint(settings))
    app.register_blueprint(api.blueprint)
    app.register_blueprint(ogc.blueprint(settings), url_prefix="/ogc")
    app.register_blueprint(pages.blueprint)          # / (leaders' interactive map)
    app.register_blueprint(mapapi.blueprint)         # its JSON: indicators, clusters, drill-down
    app.register_blueprint(wall.blueprint)           # /wall
    app.register_blueprint(permits.blueprint)        # planners: /permits
    app.register_blueprint(reports.blueprint)        # citizens: reports and public tracking
    app.register_blueprint(devices.blueprint)        # cameras: heartbeats and AI events
    app.register_blueprint(incidents_board.blueprint)  # operators: /incidents
    app.register_blueprint(admin_etl.blueprint)        # data stewards: /admin/etl
    app.register_blueprint(admin_audit.blueprint)      # administrators: /admin/audit

    @app.errorhandler(IocgisError)
    def _iocgis_error(exc: IocgisError):
        return jsonify(exc.to_dict()), exc.status

    return app
