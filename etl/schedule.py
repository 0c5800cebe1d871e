"""Running sources by name and on their schedules.

The scheduler is a loop: every `poll` seconds it asks etl_runs when each scheduled source last
started, runs those that are due one after another, and sleeps. SIGTERM (docker stop) and SIGINT
end the sleep at once; a run under way is allowed to finish, since stopping it halfway would only
throw its work away (its transaction would roll back)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg

from gis_core.registry import Registry
from gis_core.rows import one

from .errors import EtlError
from .pipeline import APPLICATION, RunResult, run_source
from .sources import Source
from .upstream import dropped_files, file_away

LAST_START = "SELECT max(started_at) FROM etl_runs WHERE source = %s"


def run_any(url: str, registry: Registry, source: Source, *, dry_run: bool = False,
            progress=None, actor: str | None = None) -> list[RunResult]:
    """One run, or for a drop directory one run per waiting file (then filed away)."""
    if source.kind != "directory":
        return [run_source(url, registry, source, dry_run=dry_run, progress=progress, actor=actor)]
    results = []
    for path in dropped_files(source):
        try:
            results.append(run_source(url, registry, source, path=path, dry_run=dry_run, progress=progress,
                                      actor=actor))
        except EtlError:
            if not dry_run:
                file_away(path, "failed")
            raise
        if not dry_run:
            file_away(path, "processed")
    return results


def due_sources(url: str, sources: dict[str, Source], now: dt.datetime) -> list[Source]:
    with psycopg.connect(url, application_name=APPLICATION) as conn:
        due = []
        for source in sources.values():
            if source.schedule.manual:
                continue
            last = one(conn.execute(LAST_START, (source.name,)))[0]
            # A drop directory is looked at on every round: files may arrive any time.
            if source.kind == "directory" or source.schedule.due(last, now):
                due.append(source)
        return due


class Scheduler:
    def __init__(self, url: str, registry: Registry, sources_dir: Path, poll_s: float,
                 load_sources: Callable[[Path], dict[str, Source]], echo: Callable[[str], None]):
        self.url, self.registry, self.sources_dir, self.poll_s = url, registry, sources_dir, poll_s
        self.load_sources, self.echo = load_sources, echo
        self.stop = threading.Event()

    def install_signals(self) -> None:
        def handler(signum, _frame):
            name = signal.Signals(signum).name
            self.echo(f"nhận tín hiệu {name}, dừng / got {name}, stopping")
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def round(self) -> int:
        """Run every due source once; return how many runs were made."""
        # Declarations are read each round: a new or edited source file needs no restart.
        sources = self.load_sources(self.sources_dir)
        n = 0
        for source in due_sources(self.url, sources, dt.datetime.now(dt.UTC)):
            if self.stop.is_set():
                break
            try:
                for result in run_any(self.url, self.registry, source):
                    self.echo(result.summary())
                    n += 1
            except EtlError as exc:
                self.echo(f"{source.name}: {exc.message_vi} / {exc.message_en}")
                n += 1
            except Exception as exc:  # one broken source must not stop the others
                self.echo(f"{source.name}: lỗi / error: {exc}")
        return n

    def loop(self, once: bool = False) -> None:
        while not self.stop.is_set():
            self.round()
            if once:
                return
            self.stop.wait(self.poll_s)
