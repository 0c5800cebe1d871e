"""`iocgis users add|list|passwd|disable` and `iocgis tokens create|list|revoke`.

They work on whichever database the settings name (the managed cluster or DATABASE_URL, also a
remote one); each change is audited as 'cli:<login name>'."""

from __future__ import annotations

import getpass

import click

from .rules import ROLES


def _connection():
    from ..audit import command_connection

    return command_connection(actor=f"cli:{getpass.getuser()}")


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


role_option = click.option("--role", type=click.Choice(ROLES), required=True, help="Vai trò / role.")


@click.group()
def users() -> None:
    """Người dùng đăng nhập trang web / people who log in to the pages."""


@users.command("add")
@click.argument("name")
@role_option
@click.option("--full-name", help="Họ tên / full name.")
@click.password_option(help="Mật khẩu (hỏi khi không cho) / password (prompted when not given).")
def users_add(name: str, role: str, full_name: str | None, password: str) -> None:
    """Thêm người dùng / add a user."""
    from .accounts import add_user

    with _connection() as conn:
        add_user(conn, name, role, password, full_name)
    click.echo(f"Đã thêm / added {name} ({role})")


@users.command("list")
def users_list() -> None:
    """Liệt kê người dùng / list users."""
    from .accounts import list_users

    with _connection() as conn:
        rows = list_users(conn)
    for u in rows:
        state = "disabled" if u["disabled"] else "active"
        click.echo(f"{u['name']:<24} {u['role']:<9} {state:<8} last login {_when(u['last_login_at'])}"
                   f"  {u['full_name'] or ''}")


@users.command("passwd")
@click.argument("name")
@click.password_option(help="Mật khẩu mới / new password.")
def users_passwd(name: str, password: str) -> None:
    """Đổi mật khẩu (đăng xuất mọi phiên) / change a password (ends every session)."""
    from .accounts import set_password

    with _connection() as conn:
        set_password(conn, name, password)
    click.echo(f"Đã đổi mật khẩu / password changed: {name}")


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Mở lại tài khoản / enable it again.")
def users_disable(name: str, enable: bool) -> None:
    """Khoá tài khoản (đăng xuất mọi phiên) / disable a user (ends every session)."""
    from .accounts import set_disabled

    with _connection() as conn:
        set_disabled(conn, name, not enable)
    click.echo(f"{'Đã mở / enabled' if enable else 'Đã khoá / disabled'}: {name}")


@click.group()
def tokens() -> None:
    """Token API cho máy khách (QGIS, script) / API tokens for machine clients."""


@tokens.command("create")
@click.argument("name")
@role_option
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True,
              help="Hiệu lực (ngày) / valid for this many days.")
def tokens_create(name: str, role: str, days: int) -> None:
    """Tạo token; chỉ in ra một lần / create a token; it is printed once only."""
    from .accounts import create_token

    with _connection() as conn:
        secret = create_token(conn, name, role, days, created_by=f"cli:{getpass.getuser()}")
    click.echo(secret)
    click.echo("Lưu token này ngay: không xem lại được / keep this token now: it cannot be shown again.", err=True)


@tokens.command("list")
def tokens_list() -> None:
    """Liệt kê token (không có bí mật) / list tokens (never their secrets)."""
    from .accounts import list_tokens

    with _connection() as conn:
        rows = list_tokens(conn)
    for t in rows:
        state = "revoked" if t["revoked_at"] else "live"
        click.echo(f"{t['name']:<24} {t['role']:<9} {state:<8} expires {_when(t['expires_at'])}"
                   f"  last used {_when(t['last_used_at'])}")


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Thu hồi token / revoke a token."""
    from .accounts import revoke_token

    with _connection() as conn:
        revoke_token(conn, name)
    click.echo(f"Đã thu hồi / revoked: {name}")
