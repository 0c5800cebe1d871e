"""The operators' side: the /incidents board, one incident's page, state changes, report photos,
and alerts (acknowledge, evaluate).

Everything for operators is in this one blueprint, guarded as one area (webmap/auth.py `guard`):
operators and administrators, logged in (forms carry the session's CSRF token) or with an API token.
Who made a change is the authenticated user or token, never a field of the form or the JSON.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from gis_core.incidents import alerts, workflow
from gis_core.incidents.errors import ValidationFailed

from .auth import guard, principal
from .incidents_common import PAGE_ASSETS, database, install_error_handlers, install_template_filters, json_response

blueprint = Blueprint("incidents_board", __name__)
guard(blueprint, "incidents")
install_error_handlers(blueprint)
install_template_filters(blueprint)


def _filter() -> workflow.BoardFilter:
    args = request.args
    errors = {}
    before = limit = None
    try:
        before = int(args["before"]) if args.get("before") else None
    except ValueError:
        errors["before"] = ("Phải là số nguyên.", "Must be a whole number.")
    try:
        limit = int(args.get("limit", 100))
    except ValueError:
        errors["limit"] = ("Phải là số nguyên.", "Must be a whole number.")
    if before is not None and not 0 < before < 2**63:
        errors["before"] = ("Ngoài phạm vi.", "Out of range.")
    if limit is not None and not -2**31 < limit < 2**31:
        errors["limit"] = ("Ngoài phạm vi.", "Out of range.")
    if errors:
        raise ValidationFailed(errors)
    return workflow.BoardFilter(
        status=args.get("status") or None, category=args.get("category") or None,
        commune_code=args.get("commune") or None, overdue=args.get("overdue") in ("1", "true", "on"),
        before_id=before, limit=limit or 100)


@blueprint.get("/api/incidents")
def board_json():
    f = _filter()
    with database().connection() as conn:
        rows = workflow.board(conn, f)
    return json_response({"incidents": rows, "next_before": rows[-1]["id"] if len(rows) == f.limit else None})


@blueprint.get("/incidents")
def board_page():
    f = _filter()
    with database().connection() as conn:
        rows = workflow.board(conn, f)
        context = dict(rows=rows, f=f, counts=workflow.counts(conn), categories=workflow.categories(conn),
                       communes=workflow.communes(conn), statuses=workflow.STATUS_LABELS,
                       alerts=alerts.active(conn))
    args = {k: v for k, v in request.args.items() if k != "before"}
    next_url = url_for("incidents_board.board_page", **args, before=rows[-1]["id"]) if len(rows) == f.limit else None
    html = render_template("incidents/board.html", assets=PAGE_ASSETS, next_url=next_url, **context)
    return Response(html, mimetype="text/html")


@blueprint.get("/incidents/<code>")
def detail_page(code: str):
    with database().connection() as conn:
        incident = workflow.detail(conn, code)
        agencies = workflow.agencies(conn)
    html = render_template("incidents/detail.html", i=incident, agencies=agencies, statuses=workflow.STATUS_LABELS,
                           assets=PAGE_ASSETS)
    return Response(html, mimetype="text/html")


@blueprint.get("/api/incidents/<code>")
def detail_json(code: str):
    with database().connection() as conn:
        return json_response(workflow.detail(conn, code))


@blueprint.get("/incidents/<code>/photo")
def photo(code: str):
    with database().connection() as conn:
        media_type, data = workflow.photo(conn, code)
    response = Response(data, mimetype=media_type)
    # The bytes were sniffed on the way in; never let a browser guess otherwise.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = f'inline; filename="{code}"'
    return response


@blueprint.post("/incidents/<code>/transition")
def move(code: str):
    """Change the status: JSON {to, comment, answer, reason, agency} or the detail page's form.
    409 when the workflow does not allow the step."""
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        raise ValidationFailed({"body": ("Nội dung không hợp lệ.", "Invalid body.")})
    to = data.get("to")
    if not isinstance(to, str) or not to:
        raise ValidationFailed({"to": ("Chưa chọn trạng thái mới.", "The new status is missing.")})
    who = principal()
    with database().connection(actor=who.actor) as conn:
        result = workflow.transition(conn, code, to, who.actor, comment=data.get("comment"),
                                     answer=data.get("answer"), reason=data.get("reason"),
                                     agency=data.get("agency") or None)
    if request.is_json:
        return json_response(result)
    return redirect(url_for("incidents_board.detail_page", code=code), 303)


@blueprint.post("/api/alerts/<int:alert_id>/acknowledge")
def acknowledge(alert_id: int):
    who = principal()
    with database().connection(actor=who.actor) as conn:
        result = alerts.acknowledge(conn, alert_id, who.actor)
    if request.is_json:
        return json_response(result)
    return redirect(url_for("incidents_board.board_page"), 303)


@blueprint.post("/api/alerts/evaluate")
def evaluate():
    rule = request.args.get("rule") or None
    with database().connection(actor=principal().actor) as conn:
        return json_response(alerts.evaluate(conn, rule))
