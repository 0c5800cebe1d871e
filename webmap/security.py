"""What every response carries and what no response may carry.

Security headers on every response (pages, JSON, OGC API, tiles, assets), and one last handler for
anything that escapes the others: a bilingual 500 (or 503 when the database is away) without the
exception, the SQL or a stack trace, which go to the log only.

The Content-Security-Policy of pages allows inline scripts ('unsafe-inline'). That is a deliberate
compromise, not an oversight: Folium writes each map as inline <script> blocks, pygeoapi's HTML
templates use inline scripts and handlers, and the wall hands its settings over in one inline
script. Nonces would have to be added to those tags after rendering, and a filter that stamps a
nonce on every <script> in a page would stamp one on an injected script too, so it would protect
nothing. What the policy does enforce: scripts, styles, fonts and data only from this origin (no
CDN, no third-party script even if a page were tricked into linking one), no plugins (object-src),
no <base> hijack, forms post only here, nothing may frame us but ourselves, and fetch/XHR only to
this origin. XSS itself is kept out by escaping (Jinja autoescape, Folium's escaping of popups,
our JSON encoder), which the hostile-input tests exercise.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import InternalServerError

from gis_core.errors import DatabaseUnavailable, InvalidParameter, IocgisError

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

PERMISSIONS_POLICY = "geolocation=(self), fullscreen=(self), camera=(), microphone=(), payment=(), usb=()"


def page_csp(basemap_url: str | None) -> str:
    """The policy of HTML pages; an online base map (IOCGIS_BASEMAP_URL) adds its tile host to img-src."""
    images = ["'self'", "data:", "blob:"]
    if basemap_url:
        parts = urlsplit(basemap_url)
        if parts.scheme in ("http", "https") and parts.hostname:
            # {s}.tile.example.org: any subdomain of the template's host.
            host = parts.netloc.replace("{s}", "*")
            images.append(f"{parts.scheme}://{host}")
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        f"img-src {' '.join(images)}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ])


def _is_database_failure(exc: BaseException | None) -> bool:
    """A connection failure that reached us without going through gis_core.db (which maps it)."""
    import psycopg
    from psycopg_pool import PoolTimeout

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (psycopg.OperationalError, PoolTimeout)):
            return True
        module = type(exc).__module__
        if module.startswith("sqlalchemy") and type(exc).__name__ == "OperationalError":
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _wants_html() -> bool:
    if request.path.startswith(("/api/", "/vendor/", "/static/")):
        return False
    if request.args.get("f") in ("json", "jsonld", "geojson", "csv", "mvt"):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def error_response(error: IocgisError) -> Response:
    """The error as JSON (APIs) or as a small self-contained page (browsers), bilingual, no internals."""
    if _wants_html():
        body = (f"<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{error.status}</title>"
                f"</head><body><h1>{error.status}</h1><p>{html.escape(error.message_vi)}</p>"
                f"<p lang=\"en\">{html.escape(error.message_en)}</p><p><a href=\"/\">Trang chủ / Home</a></p>"
                f"</body></html>")
        response = Response(body, error.status, mimetype="text/html")
    else:
        response = jsonify(error.to_dict())
        response.status_code = error.status
    if error.status == 503:
        response.headers["Retry-After"] = "5"
    return response


class UnexpectedError(IocgisError):
    status = 500
    code = "ServerError"


def install(app: Flask) -> None:
    """Headers on every response and the last-resort error handler; one call in create_app."""
    settings = app.config.get("IOCGIS_SETTINGS")
    pages = page_csp(getattr(settings, "basemap_url", None))

    @app.before_request
    def _no_nul():
        """A NUL character is never part of a valid parameter, and PostgreSQL text cannot hold one:
        refuse it here, once for every endpoint (pages, JSON, OGC), rather than as a 500 deep down."""
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
            return error_response(InvalidParameter("Tham số chứa ký tự NUL không hợp lệ.",
                                                   "A parameter contains an invalid NUL character."))
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", pages if response.mimetype == "text/html" else API_CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")   # ticket codes in /track URLs stay here
        headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response

    @app.errorhandler(InternalServerError)
    def _unexpected(exc: InternalServerError):
        original = getattr(exc, "original_exception", None)
        if _is_database_failure(original):
            return error_response(DatabaseUnavailable(
                "Cơ sở dữ liệu tạm thời không phản hồi, vui lòng thử lại.",
                "The database is not answering right now; please retry."))
        # Flask has logged the exception and its traceback already (app.logger); the user gets neither.
        return error_response(UnexpectedError(
            "Đã xảy ra lỗi ngoài dự kiến. Sự cố đã được ghi lại; vui lòng thử lại sau.",
            "Something went wrong on our side. It has been logged; please try again later."))
