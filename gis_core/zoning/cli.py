"""`iocgis permits ...`: bulk checks with a progress bar, reports, and the derived overlays."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import click

from ..errors import IocgisError


def _fail(exc: Exception):
    if isinstance(exc, IocgisError):
        raise click.ClickException(f"{exc.message_vi}\n{exc.message_en}") from None
    raise exc


def _url() -> str:
    from ..db import database_url
    from ..settings import Settings

    try:
        return database_url(Settings.from_env())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except IocgisError as exc:
        _fail(exc)
        raise


@click.group()
def permits() -> None:
    """Giấy phép xây dựng và quy hoạch / building permits against the land-use plan."""


@permits.command("check")
@click.argument("numbers", nargs=-1)
@click.option("--all", "all_permits", is_flag=True, help="Mọi giấy phép / every permit.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]),
              help="Nộp hồ sơ từ ngày / applied on or after (YYYY-MM-DD).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Báo cáo .csv hoặc .geojson / report file (.csv or .geojson).")
@click.option("--sliver", type=click.FloatRange(0, 1000), default=None,
              help="Bỏ qua phần chồng lấn nhỏ hơn (m²) / ignore overlaps smaller than this (m²); default from "
                   "zoning_tolerances.")
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Số kết nối song song / connections checking chunks at once.")
def check(numbers: tuple[str, ...], all_permits: bool, since: dt.datetime | None, out: Path | None,
          sliver: float | None, workers: int) -> None:
    """Kiểm tra giấy phép với quy hoạch / check permits against the plan in force when they applied.

    NUMBERS are permit numbers (GPXD-2026-000123); or use --all or --since."""
    from ..db import connect
    from ..rows import one
    from .check import check_ids, permit_ids
    from .report import write_report

    if sum((all_permits, since is not None, bool(numbers))) != 1:
        raise click.UsageError("Chọn đúng một: --all, --since NGÀY hoặc SỐ giấy phép.\n"
                               "Give exactly one of --all, --since DATE or permit NUMBERs.")
    if out is not None and out.suffix.lower() not in (".csv", ".geojson"):
        raise click.BadParameter("phải là .csv hoặc .geojson / must end in .csv or .geojson", param_hint="--out")
    url = _url()
    started = time.monotonic()
    try:
        with connect(url) as conn:
            ids = permit_ids(conn, all_permits=all_permits, since=since.date() if since else None,
                             numbers=numbers)
            overlays = one(conn.execute("SELECT count(*) FROM zoning_overlays"))[0]
        if not overlays:
            click.echo("chưa có lớp phủ nào (chạy 'iocgis permits overlays') / no overlays yet "
                       "(run 'iocgis permits overlays')", err=True)
        with click.progressbar(length=len(ids), label="Kiểm tra / checking", show_pos=True) as bar:
            counts = check_ids(url, ids, sliver_m2=sliver, workers=workers, progress=bar.update)
        if out is not None:
            with connect(url) as conn:
                written = write_report(conn, ids, out)
    except IocgisError as exc:
        _fail(exc)
    labels = {"compliant": "phù hợp / compliant", "needs_review": "cần xem xét / needs review",
              "non_compliant": "không phù hợp / non-compliant"}
    for verdict in ("compliant", "needs_review", "non_compliant"):
        click.echo(f"  {labels[verdict]:<34} {counts.get(verdict, 0):>9,}")
    click.echo(f"{len(ids):,} permit(s) checked in {time.monotonic() - started:.1f}s")
    if out is not None:
        click.echo(f"wrote {written:,} row(s) to {out}")


@permits.command("overlays")
@click.option("--no-hazard", is_flag=True, help="Không lấy vùng sạt lở từ raster / skip hazard areas.")
@click.option("--no-rivers", is_flag=True, help="Không tạo hành lang sông / skip river corridors.")
def overlays(no_hazard: bool, no_rivers: bool) -> None:
    """Tạo lớp phủ từ dữ liệu sẵn có / derive overlays (hazard raster classes >= 3, river corridors)."""
    from ..db import connect
    from .overlays import load_overlays

    try:
        with connect(_url()) as conn:
            counts = load_overlays(conn, hazard=not no_hazard, rivers=not no_rivers)
    except IocgisError as exc:
        _fail(exc)
    for what, n in counts.items():
        click.echo(f"  {what:<18} {n:>8,}")
