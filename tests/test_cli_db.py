"""`iocgis db ...` drives the managed cluster as a user would, in a var dir of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gis_core.settings import PROJECT_ROOT

IOCGIS = str(Path(sys.executable).parent / "iocgis")


def run(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([IOCGIS, *args], env=env, capture_output=True, text=True, cwd=PROJECT_ROOT,
                            timeout=120, check=False)
    if check:
        assert result.returncode == 0, f"iocgis {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_managed_cluster_lifecycle(tmp_root):
    from conftest import free_port

    var = tmp_root / "managed-var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(IOCGIS_VAR_DIR=str(var), IOCGIS_PG_PORT=str(free_port()))
    try:
        assert "initialised and running" in run(env, "db", "up").stdout
        assert "running" in run(env, "db", "up").stdout  # a second `up` reuses the cluster
        assert (var / "pg" / "password").stat().st_mode & 0o077 == 0  # the secret stays private
        status = run(env, "db", "status").stdout
        assert "cluster: running" in status and "applied" in status
        migrated = run(env, "db", "migrate").stdout
        assert "0001_extensions_and_roles.sql" in migrated
        assert "applied 0 migration(s)" in run(env, "db", "migrate").stdout
        out = run(env, "db", "psql", "-tA", "-c", "SELECT postgis_lib_version()").stdout
        assert out.strip().startswith("3.")
        assert "0 pending" in run(env, "db", "status").stdout
    finally:
        run(env, "db", "down", check=False)
    stopped = run(env, "db", "status", check=False)
    assert stopped.returncode == 1 and "cluster: stopped" in stopped.stdout


def test_database_url_means_nothing_is_started(tmp_root, db_url):
    env = {**os.environ, "DATABASE_URL": db_url, "IOCGIS_VAR_DIR": str(tmp_root / "never")}
    assert "nothing to start" in run(env, "db", "up").stdout
    assert not (tmp_root / "never").exists()
    assert run(env, "db", "psql", "-tA", "-c", "SELECT count(*) FROM schema_migrations").stdout.strip() != "0"
    refused = run(env, "db", "down", check=False)
    assert refused.returncode != 0 and "DATABASE_URL" in refused.stderr
