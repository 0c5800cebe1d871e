"""The one module that owns the database: connection URL, pool, and failures mapped to a 503."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy import Engine, create_engine

from .audit import set_actor
from .cluster import managed_cluster
from .errors import ClusterError, DatabaseUnavailable
from .settings import Settings


def database_url(settings: Settings) -> str:
    """DATABASE_URL when given, else the managed cluster's (which must have been set up)."""
    if settings.database_url:
        return settings.database_url
    cluster = managed_cluster(settings.var_dir, settings.pg_port)
    if not cluster.password_file.exists():
        raise ClusterError(
            "Cụm PostGIS chưa được khởi tạo: chạy 'iocgis db up' trước.",
            "The managed PostGIS cluster is not set up: run 'iocgis db up' first.",
        )
    return cluster.url


def sqlalchemy_url(url: str) -> str:
    """The same database for SQLAlchemy/GeoAlchemy2, through psycopg 3."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError(f"not a PostgreSQL URL: {scheme}://...")
    return f"postgresql+psycopg://{rest}"


def connect(url: str, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(url, application_name="iocgis", **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            "Không kết nối được cơ sở dữ liệu.", "The database cannot be reached."
        ) from exc


# While the database is known to be away (see FailFastPool), a request waits
# this long for one instead of the pool's full timeout: under load, requests that each held a
# server thread for the full timeout queued the others behind them for tens of seconds, pages that
# need no database included.
DOWN_TIMEOUT_S = 0.1
WAIT_SLICE_S = 1.0
# psycopg_pool retries a failed connection with a doubling delay (1, 2, 4, ... s) for
# `reconnect_timeout` (300 s by default): after an outage of half a minute its next attempt could
# come a minute after the database's return. Giving up after a few seconds instead lets the next
# request start a fresh attempt, so the pool refills within seconds of the database's return.
RECONNECT_S = 5.0
# `check` (a round trip) runs only on a connection idle at least this long. One in steady use has
# just answered a query: checking it again before each request cost a round trip per request (a
# fifth of a small OGC page's time), and if its server has died since, the request's own query
# fails and returns it broken, which marks the database away just the same.
CHECK_IDLE_S = 1.0


class FailFastPool(ConnectionPool):
    """A psycopg pool that answers fast while the database is away and refills soon after it is back.

    "Away" is learnt from a request that found no connection within the timeout, or found an idle
    one dead (`check`), or returned one broken; the next request to get a connection clears it. A
    pool exhausted by slow queries for the whole timeout also counts as away: the requests after
    it get their 503 at once instead of queueing, which sheds load until a connection is free."""

    def __init__(self, conninfo: str, **kwargs):
        kwargs.setdefault("reconnect_timeout", RECONNECT_S)
        self.database_away = False
        self._returned: dict[int, float] = {}   # id(connection) -> when it was last given back
        check = kwargs.get("check")
        if check is not None:
            def checked(conn: psycopg.Connection) -> None:
                if time.monotonic() - self._returned.pop(id(conn), -CHECK_IDLE_S) < CHECK_IDLE_S:
                    return
                try:
                    check(conn)
                except Exception:
                    self.database_away = True     # an idle connection died: most likely with its server
                    raise
            kwargs["check"] = checked
        super().__init__(conninfo, **kwargs)

    def getconn(self, timeout: float | None = None) -> psycopg.Connection:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            # Wait in slices, so that a request already waiting when another one finds the
            # database away gives up too, instead of waiting out its full timeout.
            away = self.database_away
            left = deadline - time.monotonic()
            try:
                conn = super().getconn(min(left, DOWN_TIMEOUT_S if away else WAIT_SLICE_S))
            except PoolTimeout:
                if away or time.monotonic() >= deadline:
                    self.database_away = True
                    raise
                continue
            self.database_away = False
            return conn

    def putconn(self, conn: psycopg.Connection) -> None:
        # A connection that came back broken most likely lost its server: the requests after this
        # one need not each wait the full timeout to find that out.
        if conn.broken:
            self.database_away = True
        else:
            self._returned[id(conn)] = time.monotonic()
        super().putconn(conn)


class Database:
    """A pool of psycopg connections for tuned SQL (one lent per request or command), and a small
    SQLAlchemy engine for queries written against the typed models in `models.py`."""

    def __init__(self, url: str, min_size: int = 1, max_size: int = 10):
        self.url = url
        self.pool = FailFastPool(
            url, min_size=min_size, max_size=max_size, open=False, timeout=5,
            kwargs={"application_name": "iocgis"},
            check=ConnectionPool.check_connection,
        )
        self.engine: Engine = create_engine(
            sqlalchemy_url(url), pool_size=2, max_overflow=3, pool_pre_ping=True, pool_timeout=5,
            connect_args={"application_name": "iocgis-orm"},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings), settings.pool_min, settings.pool_max)

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()
        self.engine.dispose()

    @contextmanager
    def connection(self, actor: str | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection for one request or command; its transaction is committed at the end
        of the block (rolled back on an exception). `actor` names who acts in that transaction for
        the audit trail (see gis_core/audit.py): 'web:citizen', 'device:CAM-001', 'user:lan', 'token:qgis-sync'."""
        try:
            with self.pool.connection() as conn:
                if actor is not None:
                    set_actor(conn, actor)
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise DatabaseUnavailable(
                "Cơ sở dữ liệu tạm thời không phản hồi, vui lòng thử lại.",
                "The database is not answering right now; please retry.",
            ) from exc


def with_dbname(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if "://" in url:
        base, _, query = url.partition("?")
        head, _, _old = base.rpartition("/")
        return f"{head}/{dbname}" + (f"?{query}" if query else "")
    return make_conninfo("", **{**conninfo_to_dict(url), "dbname": dbname})
