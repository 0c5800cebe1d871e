"""`iocgis serve --workers N`, the production server (granian worker processes, as docker-compose
runs it): with 2 workers the same answers as the one-worker server the other tests use, under
concurrent clients, and a clean stop on SIGTERM. And plain `iocgis serve` (one threaded process,
as `make demo` starts it) answering as they do."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.message import Message

import pytest
from conftest import free_port

ITEMS = "/ogc/collections/schools/items?f=json&limit=7"


def get(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, Message, bytes]:
    """Status, headers (looked up without regard to case: granian sends them in lower case), body."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


WORKERS = ("--workers", "2", "--threads", "2")


def launch(demo_url: str, tmp_root, name: str, args: tuple[str, ...] = WORKERS) -> tuple[str, subprocess.Popen]:
    """`iocgis serve ARGS` on a free port, in a process group of its own, its output in
    tmp_root/NAME.log; (base URL, process), not waiting for it to answer."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": demo_url, "IOCGIS_PORT": str(port),
           "IOCGIS_VAR_DIR": str(tmp_root / "var")}
    with open(tmp_root / f"{name}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gis_core.cli", "serve", *args],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return f"http://127.0.0.1:{port}", proc


def start(demo_url: str, tmp_root, name: str, args: tuple[str, ...] = WORKERS) -> tuple[str, subprocess.Popen]:
    """As launch, once the server answers."""
    base, proc = launch(demo_url, tmp_root, name, args)
    log_path = tmp_root / f"{name}.log"
    deadline = time.monotonic() + 60
    while True:
        try:
            if get(f"{base}/ogc/collections?f=json")[0] == 200:
                return base, proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"iocgis serve {' '.join(args)} did not start:\n" + log_path.read_text())
        time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.fixture(scope="module")
def workers(demo_url, tmp_root):
    base, proc = start(demo_url, tmp_root, "serve-workers")
    yield base
    stop(proc)


def features(body: bytes) -> list[dict]:
    return json.loads(body)["features"]


def test_workers_answer_as_the_one_worker_server(workers, server):
    base = workers
    status, headers, body = get(base + ITEMS)
    assert status == 200 and headers["Content-Type"].startswith("application/geo+json")
    assert len(features(body)) == 7 and features(body) == features(get(server + ITEMS)[2])
    status, headers, page = get(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"] and "<html" in page.decode()
    # A bad request is a 400 with its reason, through this server too.
    status, _headers, body = get(base + "/ogc/collections/schools/items?f=json&bbox=1,2,3")
    assert status == 400 and "bbox" in body.decode()
    status, _headers, body = get(base + "/api/reports", data=b"{", headers={"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["code"] and " / " in json.loads(body)["description"]


def test_single_process_server_answers_alike(demo_url, tmp_root, server):
    base, proc = start(demo_url, tmp_root, "serve-single", ())
    try:
        status, headers, body = get(base + ITEMS)
        assert status == 200 and headers["Content-Type"].startswith("application/geo+json")
        assert features(body) == features(get(server + ITEMS)[2])
        status, _headers, body = get(base + "/ogc/collections/schools/items?f=json&bbox=1,2,3")
        assert status == 400 and "bbox" in body.decode()
    finally:
        stop(proc)


def test_workers_serve_concurrent_clients(workers):
    base = workers
    paths = [ITEMS, "/ogc/collections/incidents/items?f=json&limit=50", "/ogc/collections?f=json",
             "/ogc/collections/communes/tiles/WebMercatorQuad/9/223/403?f=mvt"] * 12
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda p: get(base + p), paths))
    assert [status for status, _h, _b in answers if status not in (200, 204)] == []


def test_sigterm_stops_every_worker(demo_url, tmp_root):
    base, proc = start(demo_url, tmp_root, "serve-workers-sigterm")
    assert_sigterm_stops(base, proc)


def test_sigterm_while_workers_start_stops_them(demo_url, tmp_root):
    """A stop that reaches the workers while they still build the app (granian then waited for them
    forever) ends within the workers' stop time."""
    base, proc = launch(demo_url, tmp_root, "serve-workers-booting")
    log_path = tmp_root / "serve-workers-booting.log"
    deadline = time.monotonic() + 30
    while "Spawning worker-2" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_sigterm_stops(base, proc)


def assert_sigterm_stops(base: str, proc: subprocess.Popen) -> None:
    port = int(base.rsplit(":", 1)[1])
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) is not None
    finally:
        stop(proc)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "a worker still listens after SIGTERM"
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"processes left in the server's group: {left.stdout}"
