"""`iocgis incidents ...`: overdue incidents, moving one through the workflow, the camera sweep and
the alert rules (for operators at a terminal and for a scheduler)."""

from __future__ import annotations

import json

import click

from ..settings import Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _connect():
    from ..db import connect, database_url

    try:
        return connect(database_url(_settings()))
    except Exception as exc:
        _fail(exc)


def _fail(exc: Exception):
    from ..errors import IocgisError

    if isinstance(exc, IocgisError):
        raise click.ClickException(f"{exc.message_vi}\n{exc.message_en}") from None
    raise exc


@click.group()
def incidents() -> None:
    """Sự cố, phản ánh, camera và cảnh báo / incidents, reports, cameras and alerts."""


@incidents.command("overdue")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="In dạng JSON / print JSON.")
def overdue_cmd(limit: int, as_json: bool) -> None:
    """Phản ánh quá hạn, quá hạn lâu nhất trước / overdue incidents, most overdue first."""
    from .workflow import overdue

    with _connect() as conn:
        rows = overdue(conn, limit)
    if as_json:
        click.echo(json.dumps([{k: r[k] for k in ("ticket_code", "status", "category", "commune_code",
                                                  "agency_code", "due_at")} for r in rows],
                              default=str, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['ticket_code']}  {r['status']:<11} {r['category']:<14} due {r['due_at']:%Y-%m-%d %H:%M}"
                   f"  {r['commune_name'] or r['commune_code']}  -> {r['agency_code']}")
    click.echo(f"{len(rows)} overdue shown")


@incidents.command("move")
@click.argument("ticket")
@click.argument("to")
@click.option("--actor", required=True, help="Người thực hiện / who makes the change.")
@click.option("--comment", default=None)
@click.option("--answer", default=None, help="Trả lời công khai / public answer (needed to resolve).")
@click.option("--reason", default=None, help="Lý do từ chối / rejection reason.")
@click.option("--agency", default=None, help="Giao cho cơ quan / assign to agency code.")
def move_cmd(ticket: str, to: str, actor: str, comment: str | None, answer: str | None, reason: str | None,
             agency: str | None) -> None:
    """Chuyển trạng thái một phiếu / move one ticket to another status."""
    from .workflow import transition

    with _connect() as conn:
        try:
            result = transition(conn, ticket, to, actor, comment=comment, answer=answer, reason=reason,
                                agency=agency)
        except Exception as exc:
            _fail(exc)
    click.echo(f"{ticket}: {result['from']} -> {result['status']} ({result['agency_code']})")


@incidents.command("cameras-sweep")
def cameras_sweep_cmd() -> None:
    """Đánh dấu camera mất tín hiệu là offline / mark silent cameras offline."""
    from .cameras import sweep_offline

    with _connect() as conn:
        codes = sweep_offline(conn)
    click.echo(f"{len(codes)} camera(s) turned offline" + (": " + ", ".join(codes[:20]) if codes else ""))


@incidents.group("alerts")
def alerts_group() -> None:
    """Quy tắc và cảnh báo / alert rules and alerts."""


@alerts_group.command("evaluate")
@click.option("--rule", default=None, help="Chỉ một quy tắc / only this rule code.")
def alerts_evaluate_cmd(rule: str | None) -> None:
    """Đánh giá các quy tắc cảnh báo / evaluate the alert rules."""
    from .alerts import evaluate
    from .cameras import sweep_offline

    with _connect() as conn:
        try:
            sweep_offline(conn)
            results = evaluate(conn, rule)
        except Exception as exc:
            _fail(exc)
    for r in results:
        click.echo(f"{r['rule']:<24} {r['state']:<12} alert={r['alert_id'] or '-'} communes={len(r['communes'])}"
                   + (f"  ({r['why']})" if r.get("why") else ""))


@alerts_group.command("list")
def alerts_list_cmd() -> None:
    """Cảnh báo đang hiển thị / alerts shown until acknowledged."""
    from .alerts import active

    with _connect() as conn:
        rows = active(conn)
    for a in rows:
        click.echo(f"#{a['id']} [{a['severity']}] {a['reason_vi']}\n    {a['reason_en']}")
    click.echo(f"{len(rows)} active alert(s)")


@alerts_group.command("ack")
@click.argument("alert_id", type=int)
@click.option("--actor", required=True)
def alerts_ack_cmd(alert_id: int, actor: str) -> None:
    """Xác nhận đã xem cảnh báo / acknowledge an alert."""
    from .alerts import acknowledge

    with _connect() as conn:
        try:
            acknowledge(conn, alert_id, actor)
        except Exception as exc:
            _fail(exc)
    click.echo(f"alert {alert_id} acknowledged")
