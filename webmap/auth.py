"""Access on the web: who makes each request, /login and /logout, the CSRF token of our forms, and
the guard each protected blueprint installs with one call (`guard(bp, area)`).

Who: `Authorization: Bearer <token>` (machine clients; no cookie, so no CSRF check), else the web
session (a signed, HttpOnly, SameSite=Lax cookie naming a server-side session in `web_sessions`,
replaced at each login), else the anonymous public. A bearer token that is unknown, expired or
revoked is a 401, never a silent downgrade to anonymous.

CSRF: a synchronizer token kept in the signed session, checked on every unsafe request made with
the session (form field `csrf_token` or header `X-CSRF-Token`), and on the login form itself.
The rules (which role may use which area) are data in gis_core/auth/rules.py.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from gis_core.auth import accounts, rules
from gis_core.auth.accounts import PUBLIC, Principal
from gis_core.auth.secret import secret_key
from gis_core.errors import Forbidden, IocgisError, TooManyRequests, Unauthorized
from gis_core.settings import Settings

from .map import ASSETS

blueprint = Blueprint("auth", __name__)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGE_ASSETS = {"css": [ASSETS["bootstrap_css"]]}


def configure(app: Flask, settings: Settings) -> None:
    app.secret_key = secret_key(settings)
    app.config.update(
        SESSION_COOKIE_NAME="iocgis_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Served over https (IOCGIS_PUBLIC_URL https://...): the cookie never travels in clear.
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=accounts.SESSION_HOURS * 3600,
    )
    app.register_blueprint(blueprint)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_principal"] = _shown_principal
    app.jinja_env.globals["may_use"] = lambda area: rules.may_use(_shown_principal().role, area)


def _database():
    return current_app.extensions["iocgis"]["db"]


def wants_json() -> bool:
    return (request.path.startswith(("/api/", "/permits/api/")) or request.is_json
            or request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json")


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def principal() -> Principal:
    """Who makes this request (looked up once per request)."""
    if "principal" not in g:
        g.principal = _identify()
    return g.principal


def _shown_principal() -> Principal:
    """For templates: who is logged in, if anyone (a public page never fails on a bad token)."""
    try:
        return principal()
    except Unauthorized:
        return PUBLIC


def _identify() -> Principal:
    token = bearer_token()
    if token is not None:
        with _database().connection() as conn:
            found = accounts.token_principal(conn, token)
        if found is None:
            raise Unauthorized("Token không hợp lệ, đã hết hạn hoặc đã bị thu hồi.",
                               "The token is unknown, expired or revoked.")
        return found
    session_id = session.get("sid")
    if isinstance(session_id, str):
        with _database().connection() as conn:
            found = accounts.session_principal(conn, session_id)
        if found is not None:
            return found
    return PUBLIC


# -- CSRF ----------------------------------------------------------------------------------------


def csrf_token() -> str:
    if not isinstance(session.get("csrf"), str):
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    refused = Forbidden("Yêu cầu bị từ chối: thiếu hoặc sai mã chống giả mạo (CSRF). Tải lại trang rồi thử lại.",
                        "Request refused: the anti-forgery (CSRF) token is missing or wrong. Reload the page, retry.")
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise refused
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.host or parts.scheme != request.scheme:
            raise refused
    expected = session.get("csrf")
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not (isinstance(expected, str) and hmac.compare_digest(expected, sent)):
        raise refused


# -- the guard -----------------------------------------------------------------------------------


def denied(exc: IocgisError) -> ResponseReturnValue:
    """A 401/403 as JSON for APIs, as a page (or the login form, for a 401) for people."""
    if wants_json():
        response = jsonify(exc.to_dict())
        response.status_code = exc.status
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="iocgis"'
        return response
    if exc.status == 401:
        return redirect(url_for("auth.login_page", next=request.full_path.rstrip("?")), 303)
    html = render_template("auth/denied.html", error=exc, assets=PAGE_ASSETS)
    return Response(html, exc.status, mimetype="text/html")


def require(area: str) -> Principal:
    """The request's principal when its role may use `area` (reading, or writing for unsafe
    methods); Unauthorized or Forbidden otherwise. Unsafe requests made with the session cookie
    must carry the CSRF token."""
    who = principal()
    write = request.method not in SAFE_METHODS
    if who.anonymous:
        raise Unauthorized("Cần đăng nhập.", "You need to log in.")
    if not rules.may_use(who.role, area, write=write):
        label_vi, label_en = rules.ROLE_LABELS[who.role]
        raise Forbidden(f"Vai trò {label_vi} không được {'thay đổi' if write else 'xem'} mục này.",
                        f"The {label_en} role may not {'change' if write else 'see'} this.")
    if write and who.kind == "user":
        check_csrf()
    return who


def guard(bp: Blueprint, area: str) -> None:
    """Every route of `bp` requires a role allowed in `area` (gis_core/auth/rules.py PAGES)."""

    @bp.before_request
    def _guard():
        try:
            require(area)
        except (Unauthorized, Forbidden) as exc:
            return denied(exc)
        return None

    @bp.after_request
    def _private(response: Response) -> Response:
        # Pages for staff: never kept by a shared cache (framing is ruled app-wide, webmap/security.py).
        response.headers["Cache-Control"] = "no-store"
        return response


# -- /login, /logout -----------------------------------------------------------------------------


def _next_url() -> str:
    """Where to go after logging in: a path on this site only (never //host or a full URL)."""
    target = request.values.get("next") or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_form(error: IocgisError | None = None, status: int = 200) -> Response:
    html = render_template("auth/login.html", error=error, next_url=_next_url(), assets=PAGE_ASSETS,
                           csrf_field=CSRF_FIELD, csrf=csrf_token())
    response = Response(html, status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/login")
def login_page():
    return _login_form()


@blueprint.post("/login")
def login():
    try:
        check_csrf()
    except Forbidden as exc:
        return _login_form(exc, 403)
    address = request.remote_addr or "unknown"
    try:
        with _database().connection(actor="web:login") as conn:
            result = accounts.login(conn, request.form.get("name", ""), request.form.get("password", ""), address)
    except TooManyRequests as exc:
        response = _login_form(exc, 429)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    if result is None:
        return _login_form(Unauthorized("Sai tên đăng nhập hoặc mật khẩu.", "Wrong user name or password."), 401)
    who, session_id = result
    # A new session and a new CSRF token: nothing from before the login carries over.
    session.clear()
    session.permanent = True
    session["sid"] = session_id
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(_next_url(), 303)


@blueprint.post("/logout")
def logout():
    try:
        check_csrf()
    except Forbidden as exc:
        return denied(exc)
    session_id = session.get("sid")
    if isinstance(session_id, str):
        with _database().connection() as conn:
            accounts.logout(conn, session_id)
    session.clear()
    return redirect(url_for("auth.login_page"), 303)
