"""`iocgis`: one click group with a subcommand group per area."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from .settings import Settings


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _fail(exc: Exception) -> None:
    from .errors import IocgisError

    if isinstance(exc, IocgisError):
        raise click.ClickException(f"{exc.message_vi}\n{exc.message_en}") from None
    raise exc


@click.group()
@click.version_option(package_name="iocgis")
def main() -> None:
    """IOC-GIS: nền tảng GIS cho Trung tâm Điều hành thông minh / GIS for the province's IOC."""


# -- db ------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Cơ sở dữ liệu PostGIS / the PostGIS database."""


def _cluster(settings: Settings):
    from .cluster import managed_cluster

    if not settings.managed:
        raise click.ClickException(
            "DATABASE_URL đã đặt: IOC-GIS không quản lý cụm CSDL này.\n"
            "DATABASE_URL is set: IOC-GIS does not manage that database's server."
        )
    return managed_cluster(settings.var_dir, settings.pg_port)


@db.command("up")
def db_up() -> None:
    """Khởi tạo và chạy cụm PostGIS trong var/ / initialise and start the managed cluster."""
    settings = _settings()
    if not settings.managed:
        click.echo("DATABASE_URL set: nothing to start.")
        return
    cluster = _cluster(settings)
    try:
        created = cluster.up()
    except Exception as exc:
        _fail(exc)
    click.echo(f"PostGIS {'initialised and ' if created else ''}running on "
               f"{cluster.host}:{cluster.port} (data: {cluster.data_dir})")


@db.command("down")
def db_down() -> None:
    """Dừng cụm PostGIS / stop the managed cluster."""
    cluster = _cluster(_settings())
    cluster.stop()
    click.echo("PostGIS stopped.")


@db.command("status")
def db_status() -> None:
    """Trạng thái CSDL và migration / database and migration status."""
    from .db import connect, database_url
    from .migrate import applied, discover

    settings = _settings()
    if settings.managed:
        cluster = _cluster(settings)
        state = "running" if cluster.running() else ("stopped" if cluster.initialised else "absent")
        click.echo(f"cluster: {state} ({cluster.data_dir}, port {cluster.port})")
        if state != "running":
            sys.exit(1)
    try:
        with connect(database_url(settings)) as conn:
            have = applied(conn)
    except Exception as exc:
        _fail(exc)
    pending = [m for m in discover(settings.migrations_dir) if m.version not in have]
    click.echo(f"migrations: {len(have)} applied, {len(pending)} pending")
    for m in pending:
        click.echo(f"  pending {m.path.name}")


@db.command("migrate")
def db_migrate() -> None:
    """Áp dụng các migration còn thiếu / apply pending migrations."""
    from .db import connect, database_url
    from .migrate import migrate

    settings = _settings()
    try:
        with connect(database_url(settings)) as conn:
            done = migrate(conn, settings.migrations_dir, settings.layers_dir)
    except Exception as exc:
        _fail(exc)
    click.echo(f"applied {len(done)} migration(s)" + "".join(f"\n  {m.path.name}" for m in done))


@db.command("reset")
@click.option("--yes", is_flag=True, help="Không hỏi lại / do not ask.")
def db_reset(yes: bool) -> None:
    """Xoá toàn bộ dữ liệu và migrate lại / drop everything and migrate again."""
    from psycopg import sql

    from .db import connect, database_url
    from .migrate import migrate
    from .rows import one

    settings = _settings()
    if not yes:
        click.confirm("Xoá toàn bộ dữ liệu? / Delete all data?", abort=True)
    try:
        with connect(database_url(settings), autocommit=True) as conn:
            owner = one(conn.execute("SELECT current_user"))[0]
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute(sql.SQL("CREATE SCHEMA public AUTHORIZATION {}").format(sql.Identifier(owner)))
            conn.execute("DROP TABLE IF EXISTS schema_migrations")
        with connect(database_url(settings)) as conn:
            done = migrate(conn, settings.migrations_dir, settings.layers_dir)
    except Exception as exc:
        _fail(exc)
    click.echo(f"reset; applied {len(done)} migration(s)")


@db.group("grants")
def db_grants() -> None:
    """Quyền của các vai trò CSDL trên các lớp / database roles' rights on the layers."""


def _grants_table(conn, grants, check: bool) -> int:
    """Print one line per table and role; with `check`, mark and count those the database differs on."""
    from .auth.grants import actual

    drift = 0
    for g in grants:
        select = "*" if g.all_columns else (", ".join(g.columns) or "-")
        line = f"{g.schema + '.' + g.table:<24} {g.role:<16} SELECT {select}"
        if g.writes:
            line += f"; {', '.join(g.writes)}"
        if check and actual(conn, g) != (g.columns, g.writes):
            drift += 1
            line = "≠ " + line
        click.echo(line)
    return drift


@db_grants.command("show")
def db_grants_show() -> None:
    """Quyền theo danh mục lớp, đánh dấu ≠ chỗ CSDL khác / the registry's grants, ≠ where the database differs."""
    from .auth.grants import plan
    from .db import connect, database_url
    from .registry import Registry

    settings = _settings()
    try:
        registry = Registry.load(settings.layers_dir)
        with connect(database_url(settings)) as conn:
            drift = _grants_table(conn, plan(conn, registry), check=True)
    except Exception as exc:
        _fail(exc)
    if drift:
        click.echo(f"{drift} khác danh mục lớp: chạy `iocgis db grants apply`.\n"
                   f"{drift} differ from the registry: run `iocgis db grants apply`.")
        sys.exit(1)


@db_grants.command("apply")
def db_grants_apply() -> None:
    """Cấp lại quyền theo danh mục lớp / grant the rights again from the registry."""
    from .auth.grants import apply
    from .db import connect, database_url
    from .registry import Registry

    settings = _settings()
    try:
        registry = Registry.load(settings.layers_dir)
        with connect(database_url(settings)) as conn:
            grants = apply(conn, registry)
            _grants_table(conn, grants, check=False)
    except Exception as exc:
        _fail(exc)
    click.echo(f"Đã cấp quyền / granted: {len(grants)} (table, role) pairs")


@db.command("psql", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def db_psql(args: tuple[str, ...]) -> None:
    """psql nối vào CSDL; các tham số được chuyển cho psql / psql on the database, args passed on."""
    from .db import database_url

    try:
        url = database_url(_settings())
    except Exception as exc:
        _fail(exc)
    os.execvp("psql", ["psql", url, *args])


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(file: Path) -> None:
    """Sao lưu toàn bộ CSDL vào FILE (pg_dump -Fc) / back the whole database up to FILE."""
    from .backup import backup
    from .db import database_url

    try:
        size = backup(database_url(_settings()), file)
    except Exception as exc:
        _fail(exc)
    click.echo(f"Đã sao lưu / backed up: {file} ({size / 1e6:.1f} MB)")


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def db_restore(file: Path) -> None:
    """Khôi phục FILE vào một CSDL trống (pg_restore) / restore FILE into an empty database."""
    from .backup import restore
    from .db import database_url

    started = time.monotonic()
    try:
        restore(database_url(_settings()), file)
    except Exception as exc:
        _fail(exc)
    click.echo(f"Đã khôi phục / restored {file} in {time.monotonic() - started:.1f}s")


# -- layers --------------------------------------------------------------------------------------


@main.group()
def layers() -> None:
    """Danh mục lớp dữ liệu / the layer registry."""


@layers.command("list")
def layers_list() -> None:
    """Liệt kê các lớp / list the layers."""
    from .registry import Registry

    for layer in Registry.load(_settings().layers_dir):
        restricted = ", ".join(f.name for f in layer.restricted_fields) or "-"
        click.echo(f"{layer.id:<18} {layer.geometry_type:<13} {layer.title.vi} / {layer.title.en}"
                   f"  [restricted: {restricted}]")


@layers.command("config")
@click.option("--check", is_flag=True, help="Chỉ kiểm tra tệp đã đồng bộ / only check it is in sync.")
def layers_config(check: bool) -> None:
    """Sinh pygeoapi-config.yml từ layers/ / write pygeoapi-config.yml from the registry."""
    from .ogc_config import render
    from .registry import Registry

    settings = _settings()
    text = render(Registry.load(settings.layers_dir))
    path = settings.pygeoapi_config
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            raise click.ClickException(f"{path.name} is out of date: run `iocgis layers config`.")
        click.echo(f"{path.name} is in sync with layers/.")
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


# -- demo ----------------------------------------------------------------------------------------


@main.group()
def demo() -> None:
    """Tỉnh mẫu Lào Cai / the demo province."""


@demo.command("load")
@click.option("--scale", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Nhân số bản ghi sinh ra / multiply the generated records (100 = 1M incidents).")
@click.option("--force", is_flag=True, help="Nạp lại kể cả khi đã có / reload even if present.")
def demo_load(scale: int, force: bool) -> None:
    """Nạp ranh giới thật và các lớp sinh mẫu / load the real boundaries and generated layers."""
    from .db import connect, database_url
    from .demo import load_demo

    settings = _settings()
    started = time.monotonic()
    try:
        with connect(database_url(settings)) as conn:
            counts = load_demo(conn, settings, scale=scale, force=force)
    except Exception as exc:
        _fail(exc)
    if not counts:
        click.echo("demo province already loaded (use --force to reload)")
        return
    for table, n in counts.items():
        click.echo(f"  {table:<18} {n:>10,}")
    click.echo(f"demo loaded in {time.monotonic() - started:.1f}s")


# -- serve ---------------------------------------------------------------------------------------


@main.command()
@click.option("--workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Số tiến trình phục vụ (granian); 0 = một tiến trình nhiều luồng / worker processes "
                   "(granian); 0 = one threaded process")
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Số luồng mỗi tiến trình / threads per worker process")
def serve(workers: int, threads: int) -> None:
    """Chạy máy chủ web tại IOCGIS_HOST:IOCGIS_PORT / serve the web app in the foreground."""
    settings = _settings()
    click.echo(f"IOC-GIS: {settings.base_url}/  (OGC API: {settings.base_url}/ogc)  Ctrl-C to stop")
    if workers:
        _serve_workers(settings, workers, threads)
        return
    from werkzeug.serving import run_simple

    from webmap import create_app

    try:
        app = create_app(settings)
    except Exception as exc:
        _fail(exc)
    run_simple(settings.host, settings.port, app, threaded=True, use_reloader=False)


WORKER_STOP_S = 10   # in-flight requests get this long to finish when the server is stopped


def _serve_workers(settings: Settings, workers: int, threads: int) -> None:
    """Production serving, as docker-compose does: granian (HTTP in Rust) runs `workers` processes,
    each building its own app (its own pools) from the environment and running it on `threads`
    threads. Under 8 clients it serves a page of 100 features about 15 % faster than gunicorn's
    threaded workers did (bench/ogc_load.py Q1), the HTTP handling being no longer Python's."""
    from granian import Granian
    from granian.constants import Interfaces

    # workers_kill_timeout: a SIGTERM that reaches a worker still building its app is lost, and
    # granian then waits for that worker forever (seen: `docker stop` right after a start). A worker
    # not gone WORKER_STOP_S after the stop began is killed, as gunicorn's graceful timeout did.
    Granian("webmap:create_app", factory=True, interface=Interfaces.WSGI, address=settings.host,
            port=settings.port, workers=workers, blocking_threads=threads, websockets=False,
            respawn_failed_workers=True, workers_kill_timeout=WORKER_STOP_S, log_access=False).serve()


# Each area brings its own command group; their modules import nothing heavy until a command runs.
from etl.cli import etl  # noqa: E402

from .audit import audit  # noqa: E402
from .auth.cli import tokens, users  # noqa: E402
from .incidents.cli import incidents  # noqa: E402
from .zoning.cli import permits  # noqa: E402

for _group in (etl, incidents, permits, audit, users, tokens):
    main.add_command(_group)

if __name__ == "__main__":
    main()
