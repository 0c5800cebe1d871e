"""A throwaway PostGIS cluster for the whole session, a migrated template database cloned for
each test, one demo database and one running server shared by the HTTP and browser tests."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
import requests
from psycopg import sql

from gis_core.cluster import throwaway_cluster
from gis_core.db import with_dbname
from gis_core.migrate import migrate
from gis_core.settings import PROJECT_ROOT, Settings

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# Debian's Chromium, headless, kept off the network but for our own server; a heap that can be
# measured (exact sizes, and a gc() to call before reading them) for the wall's long-run test.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--enable-precise-memory-info", "--js-flags=--expose-gc"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tmp_root():
    root = Path(tempfile.mkdtemp(prefix="iocgis-test-"))
    root.chmod(0o755)  # the unprivileged server user must reach its data dir inside
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=False)


@pytest.fixture(scope="session")
def pg_cluster(tmp_root):
    cluster = throwaway_cluster(tmp_root, free_port())
    yield cluster
    cluster.stop()


def _create_db(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_dbname(admin_url, name)


def _drop_db(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def admin_url(pg_cluster) -> str:
    return with_dbname(pg_cluster.url, "postgres")


@pytest.fixture(scope="session")
def template_db(admin_url) -> str:
    """A database migrated once; every test database is a copy of it."""
    url = _create_db(admin_url, "iocgis_template")
    with psycopg.connect(url) as conn:
        migrate(conn, Settings().migrations_dir)
    return "iocgis_template"


_counter = itertools.count()


@pytest.fixture
def db_url(admin_url, template_db):
    name = f"iocgis_test_{os.getpid()}_{next(_counter)}"
    url = _create_db(admin_url, name, template=template_db)
    yield url
    _drop_db(admin_url, name)


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url) as connection:
        yield connection


@pytest.fixture
def empty_db(admin_url):
    """An empty database (no migrations), for tests of the migrator itself."""
    name = f"iocgis_empty_{os.getpid()}_{next(_counter)}"
    yield _create_db(admin_url, name)
    _drop_db(admin_url, name)


@pytest.fixture(scope="session")
def settings(tmp_root) -> Settings:
    return Settings(database_url="postgresql://unused", var_dir=tmp_root / "var", port=free_port())


@pytest.fixture(scope="session")
def demo_url(admin_url, template_db, tmp_root) -> str:
    """One database with the demo province loaded, shared read-only by the HTTP tests."""
    from gis_core.demo import load_demo

    url = _create_db(admin_url, "iocgis_demo", template=template_db)
    demo_settings = Settings(database_url=url, var_dir=tmp_root / "var")
    with psycopg.connect(url) as connection:
        load_demo(connection, demo_settings)
    return url


@pytest.fixture(scope="session")
def server(demo_url, tmp_root):
    """`iocgis serve --workers 1` in its own process: the production server (granian), as
    docker-compose starts it, so that every client test meets what users meet."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": demo_url, "IOCGIS_PORT": str(port),
           "IOCGIS_VAR_DIR": str(tmp_root / "var")}
    log = open(tmp_root / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gis_core.cli", "serve", "--workers", "1"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/ogc/collections?f=json", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise RuntimeError("server did not start:\n" + (tmp_root / "server.log").read_text())
        time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(10)
    log.close()


# -- access: one user and one API token per role ------------------------------------------------

PASSWORD = "mật khẩu đủ dài 2026"
_tokens: dict[tuple[str, str], str] = {}


def ensure_user(url: str, role: str) -> str:
    """The user '<role>-test' with PASSWORD in the database at `url` (made once)."""
    from gis_core.auth.accounts import add_user

    name = f"{role}-test"
    with psycopg.connect(url) as connection:
        if connection.execute("SELECT 1 FROM users WHERE name = %s", (name,)).fetchone() is None:
            add_user(connection, name, role, PASSWORD, full_name=f"Thử {role}")
    return name


def ensure_token(url: str, role: str) -> str:
    """The API token '<role>-token' in the database at `url` (made once; its secret kept here)."""
    from gis_core.auth.accounts import create_token

    if (url, role) not in _tokens:
        with psycopg.connect(url) as connection:
            _tokens[url, role] = create_token(connection, f"{role}-token", role, days=1)
    return _tokens[url, role]


def form_csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:2000]
    return found[1]


def log_in_client(client, url: str, role: str) -> str:
    """Log a Flask test client in as the `role` user of the database at `url`; the session's CSRF token."""
    name = ensure_user(url, role)
    csrf = form_csrf(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"csrf_token": csrf, "name": name, "password": PASSWORD})
    assert r.status_code == 303, r.get_data(as_text=True)
    return form_csrf(client.get("/login").get_data(as_text=True))


def log_in(base: str, url: str, role: str) -> requests.Session:
    """A requests session logged in to the server at `base` as the `role` user; `.csrf` is its token."""
    name = ensure_user(url, role)
    http = requests.Session()
    csrf = form_csrf(http.get(f"{base}/login", timeout=30).text)
    r = http.post(f"{base}/login", data={"csrf_token": csrf, "name": name, "password": PASSWORD},
                  allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text
    http.csrf = form_csrf(http.get(f"{base}/login", timeout=30).text)
    return http


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module (a module that drives Playwright itself must not use it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_sessionfinish(session, exitstatus):
    """A skipped test hides a missing install step: the run fails on any skip."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped; IOC-GIS allows no skips.", red=True)
        session.exitstatus = 1


@pytest.fixture
def units(conn):
    """A province and a commune, so that layer rows can name one."""
    conn.execute("""
        INSERT INTO admin_units (code, parent_code, level, kind, name, full_name, name_unaccent, valid_from,
                                 source, geom)
        VALUES ('99', NULL, 'province', 'Tỉnh', 'Thử', 'Tỉnh Thử', 'thu', '2025-07-01', 'test',
                ST_Multi(ST_MakeEnvelope(103, 22, 105, 23, 4326))),
               ('99001', '99', 'commune', 'Xã', 'Một', 'Xã Một', 'mot', '2025-07-01', 'test',
                ST_Multi(ST_MakeEnvelope(103, 22, 104, 23, 4326)))""")
    conn.commit()
    return conn
