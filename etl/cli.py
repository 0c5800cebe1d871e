"""`iocgis etl ...`: load files, run declared sources, read the run history, schedule.

Imports of the heavy machinery happen inside the commands, so `iocgis --help` stays quick."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from gis_core.settings import Settings

DEFAULT_SOURCES = Path(__file__).resolve().parent / "sources"


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _fail(exc: Exception):
    from gis_core.errors import IocgisError

    if isinstance(exc, IocgisError):
        raise click.ClickException(f"{exc.message_vi}\n{exc.message_en}") from None
    raise exc


def _url_and_registry(settings: Settings):
    from gis_core.db import database_url
    from gis_core.registry import Registry

    try:
        return database_url(settings), Registry.load(settings.layers_dir)
    except Exception as exc:
        _fail(exc)


@contextmanager
def _progress(total: int):
    """A bar on stderr with rows per second; click prints only the label when not on a terminal."""
    started = time.monotonic()
    done = 0
    with click.progressbar(length=total, label="Nạp / loading", file=sys.stderr, show_pos=True,
                           item_show_func=lambda s: s) as bar:
        def advance(n: int) -> None:
            nonlocal done
            done += n
            bar.update(n, f"{done / max(time.monotonic() - started, 1e-6):,.0f} rows/s")

        yield advance


def _report(results, dry_run: bool) -> None:
    for result in results:
        click.echo(result.summary())
        if dry_run:
            for r in result.rejects[:50]:
                click.echo(f"  row {r['row']} [{r['field'] or '-'}]: {r['reason_vi']} / {r['reason_en']}")
            if len(result.rejects) > 50:
                click.echo(f"  ... {len(result.rejects) - 50} more")


def _crs(ctx, param, value):
    if value is None:
        return None
    from pyproj import CRS

    try:
        CRS.from_user_input(value)
    except Exception:
        raise click.BadParameter(f"hệ tọa độ không hợp lệ / unknown CRS {value!r} (e.g. EPSG:9208)",
                                 param_hint="--crs") from None
    return value


@click.group()
def etl() -> None:
    """Nạp và cập nhật dữ liệu lớp / keep the layers current (ETL)."""


@etl.command("load")
@click.argument("layer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--crs", callback=_crs, help="Hệ tọa độ của tệp, vd EPSG:9208 / the file's CRS, overriding it.")
@click.option("--dry-run", is_flag=True, help="Chỉ kiểm tra, không ghi / validate and report, write nothing.")
@click.option("--snapshot", is_flag=True, help="Tệp là toàn bộ lớp: bản ghi vắng mặt bị loại vào lịch sử /"
              " the file is the whole layer: records missing from it are retired into history.")
@click.option("--tag", help="Giá trị cột nguồn (source) / value of the rows' source column [etl:LAYER].")
@click.option("--encoding", help="Bảng mã chữ: utf-8, cp1258, tcvn3, vni (mặc định theo .cpg) /"
              " text encoding: utf-8, cp1258, tcvn3, vni (default: the shapefile's .cpg).")
def load(layer: str, file: Path, crs: str | None, dry_run: bool, snapshot: bool, tag: str | None,
         encoding: str | None) -> None:
    """Nạp một tệp vào lớp LAYER / load FILE into LAYER (GeoJSON, GPKG, zipped SHP, CSV)."""
    from .pipeline import run_source
    from .sources import Source

    url, registry = _url_and_registry(_settings())
    try:
        source = Source.adhoc(layer, file.resolve(), crs=crs, snapshot=snapshot, tag=tag, encoding=encoding)
        result = run_source(url, registry, source, dry_run=dry_run, progress=_progress)
    except Exception as exc:
        _fail(exc)
    _report([result], dry_run)


@etl.command("run")
@click.argument("source_name", metavar="SOURCE")
@click.option("--sources", "sources_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_SOURCES, envvar="IOCGIS_ETL_SOURCES", show_default=True)
@click.option("--dry-run", is_flag=True, help="Chỉ kiểm tra, không ghi / validate and report, write nothing.")
def run(source_name: str, sources_dir: Path, dry_run: bool) -> None:
    """Chạy một nguồn đã khai báo / run a declared source now."""
    from .schedule import run_any
    from .sources import load_sources

    url, registry = _url_and_registry(_settings())
    try:
        sources = load_sources(sources_dir)
        if source_name not in sources:
            raise click.BadParameter(f"không có nguồn / no source {source_name!r} in {sources_dir}"
                                     f" (có / there are: {', '.join(sources) or '-'})", param_hint="SOURCE")
        results = run_any(url, registry, sources[source_name], dry_run=dry_run, progress=_progress)
    except click.ClickException:
        raise
    except Exception as exc:
        _fail(exc)
    if not results:
        click.echo("không có tệp nào chờ / no files waiting")
    _report(results, dry_run)


@etl.command("runs")
@click.option("--layer", help="Chỉ lớp này / only this layer.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="In JSON / print JSON.")
def runs(layer: str | None, limit: int, as_json: bool) -> None:
    """Lịch sử các lần chạy / the run history, newest first."""
    import psycopg
    from psycopg.rows import dict_row

    url, _ = _url_and_registry(_settings())
    try:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT id, source, layer, status, started_at, ended_at, n_read, n_inserted, n_updated,"
                " n_unchanged, n_repaired, n_rejected, n_retired, message FROM etl_runs"
                " WHERE %(layer)s::text IS NULL OR layer = %(layer)s ORDER BY id DESC LIMIT %(limit)s",
                {"layer": layer, "limit": limit}).fetchall()
    except Exception as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=1))
        return
    click.echo(f"{'id':>6} {'status':<10} {'layer':<17} {'source':<20} {'started (UTC)':<19} {'read':>8} {'ins':>7}"
               f" {'upd':>7} {'same':>7} {'rep':>5} {'rej':>5} {'ret':>5}")
    for r in rows:
        started = r["started_at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{r['id']:>6} {r['status']:<10} {r['layer']:<17} {r['source'][:20]:<20} {started:<19}"
                   f" {r['n_read']:>8} {r['n_inserted']:>7} {r['n_updated']:>7} {r['n_unchanged']:>7}"
                   f" {r['n_repaired']:>5} {r['n_rejected']:>5} {r['n_retired']:>5}")
        if r["message"] and r["status"] == "failed":
            click.echo("       " + r["message"].replace("\n", "\n       "))


@etl.command("rejects")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--json", "as_json", is_flag=True, help="In JSON kèm dữ liệu dòng / print JSON with the rows.")
def rejects(run_id: int, as_json: bool) -> None:
    """Các dòng bị loại và lý do / the rows a run rejected, and why."""
    import psycopg
    from psycopg.rows import dict_row

    url, _ = _url_and_registry(_settings())
    try:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            if conn.execute("SELECT 1 FROM etl_runs WHERE id = %s", (run_id,)).fetchone() is None:
                raise click.BadParameter(f"không có lần chạy / no run {run_id}", param_hint="RUN")
            rows = conn.execute("SELECT row_no, field, reason_vi, reason_en, row_data FROM etl_rejects"
                                " WHERE run_id = %s ORDER BY row_no, id", (run_id,)).fetchall()
            repairs = conn.execute("SELECT row_no, field, reason_vi, reason_en FROM etl_repairs"
                                   " WHERE run_id = %s ORDER BY row_no, id", (run_id,)).fetchall()
    except click.ClickException:
        raise
    except Exception as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps({"rejects": rows, "repairs": repairs}, default=str, ensure_ascii=False, indent=1))
        return
    click.echo(f"run {run_id}: {len(rows)} dòng bị loại / rows rejected, {len(repairs)} sửa / repaired")
    for r in rows:
        click.echo(f"  row {r['row_no']} [{r['field'] or '-'}]: {r['reason_vi']} / {r['reason_en']}")
    for r in repairs:
        click.echo(f"  row {r['row_no']} [{r['field'] or '-'}] (sửa / repaired): {r['reason_vi']} / {r['reason_en']}")


@etl.command("schedule")
@click.option("--sources", "sources_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_SOURCES, envvar="IOCGIS_ETL_SOURCES", show_default=True)
@click.option("--poll", type=click.FloatRange(0.1, 3600), default=30, show_default=True,
              help="Giây giữa các vòng kiểm tra / seconds between rounds.")
@click.option("--once", is_flag=True, help="Một vòng rồi thoát / one round, then exit.")
def schedule(sources_dir: Path, poll: float, once: bool) -> None:
    """Chạy các nguồn theo lịch, đến khi nhận SIGTERM / run sources on their schedules until SIGTERM."""
    from .schedule import Scheduler
    from .sources import load_sources

    url, registry = _url_and_registry(_settings())
    scheduler = Scheduler(url, registry, sources_dir, poll, load_sources, lambda m: click.echo(m))
    scheduler.install_signals()
    click.echo(f"lập lịch ETL: {sources_dir}, mỗi {poll:g}s / ETL scheduler: {sources_dir}, every {poll:g}s")
    try:
        scheduler.loop(once=once)
    except Exception as exc:
        _fail(exc)
    click.echo("đã dừng / stopped")


@etl.command("raster")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--title-vi", required=True)
@click.option("--title-en", required=True)
@click.option("--kind", type=click.Choice(["dem", "hazard", "hillshade", "other"]), default="other",
              show_default=True)
@click.option("--unit", help="Đơn vị giá trị / unit of the values, e.g. m.")
@click.option("--crs", callback=_crs, help="Hệ tọa độ nếu ảnh không ghi / CRS when the file has none.")
def raster(name: str, file: Path, title_vi: str, title_en: str, kind: str, unit: str | None,
           crs: str | None) -> None:
    """GeoTIFF -> COG có ảnh tổng quan, vào danh mục / GeoTIFF to a COG with overviews, catalogued."""
    import psycopg

    from .raster import load_raster

    settings = _settings()
    url, _ = _url_and_registry(settings)
    try:
        with psycopg.connect(url) as conn:
            done = load_raster(conn, settings.raster_dir, name, file, title_vi=title_vi, title_en=title_en,
                               kind=kind, unit=unit, crs=crs)
    except Exception as exc:
        _fail(exc)
    click.echo(f"{done.name}: {done.path} ({done.width}x{done.height}, {done.crs}, overviews {done.overviews})")


@etl.command("as-of")
@click.argument("layer")
@click.argument("when", metavar="DATE")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Ghi GeoJSON ra tệp / write"
              " the GeoJSON to a file.")
def as_of(layer: str, when: str, output: Path | None) -> None:
    """Lớp như vào ngày DATE (YYYY-MM-DD hoặc thời điểm ISO) / the layer as it was on DATE."""
    import psycopg

    from .history import layer_as_of

    url, registry = _url_and_registry(_settings())
    try:
        at = dt.datetime.fromisoformat(when) if "T" in when or " " in when else dt.date.fromisoformat(when)
    except ValueError:
        raise click.BadParameter(f"ngày không hợp lệ / bad date {when!r}", param_hint="DATE") from None
    try:
        with psycopg.connect(url) as conn:
            collection = layer_as_of(conn, registry[layer], at)
    except KeyError:
        raise click.BadParameter(f"không có lớp / no layer {layer!r}", param_hint="LAYER") from None
    except Exception as exc:
        _fail(exc)
    text = json.dumps(collection, ensure_ascii=False)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{len(collection['features'])} features -> {output}")
    else:
        click.echo(text)
