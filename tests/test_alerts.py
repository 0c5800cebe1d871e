"""Alert rules held as data, on the demo province: a rule fires with its reason and communes, the
alert is shown (JSON and GeoJSON for the wall and the map) until acknowledged, and the same
situation does not fire again once acknowledged."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import psycopg
import pytest
from conftest import ensure_token
from psycopg.types.json import Jsonb

from gis_core.incidents import alerts


def call(method: str, url: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_indicator_rule_fires_on_demo_data_and_clears_when_acknowledged(server, demo_url):
    operator = ensure_token(demo_url, "operator")
    assert call("POST", f"{server}/api/alerts/evaluate?rule=poverty_above_target")[0] == 401
    status, results = call("POST", f"{server}/api/alerts/evaluate?rule=poverty_above_target", token=operator)
    assert status == 200
    (result,) = results
    assert result["state"] in ("fired", "refreshed") and result["communes"]
    alert_id = result["alert_id"]
    with psycopg.connect(demo_url) as conn:
        # the communes named are exactly those whose latest poverty rate is above the 3 % target
        expected = {r[0] for r in conn.execute(alerts.LATEST_VALUES, ("poverty_rate",)).fetchall() if r[2] > 3}
    assert set(result["communes"]) == expected

    shown = {a["id"]: a for a in call("GET", f"{server}/api/alerts")[1]}
    assert alert_id in shown
    alert = shown[alert_id]
    assert alert["reason_vi"].startswith("Tỷ lệ hộ nghèo vượt mục tiêu 3 %")
    assert alert["reason_en"].startswith("Poverty rate above the target of 3 %")
    assert len(alert["commune_names"]) == len(expected)
    with urllib.request.urlopen(f"{server}/api/alerts?f=geojson", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/geo+json")
        features = {f["id"]: f for f in json.load(response)["features"]}
    assert features[alert_id]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    board_request = urllib.request.Request(f"{server}/incidents", headers={"Authorization": f"Bearer {operator}"})
    board = urllib.request.urlopen(board_request, timeout=30).read().decode()
    assert f'data-alert-id="{alert_id}"' in board

    # Only operators acknowledge, and the one who did is the token, not what the body says.
    assert call("POST", f"{server}/api/alerts/{alert_id}/acknowledge", {"actor": "x"})[0] == 401
    assert call("POST", f"{server}/api/alerts/{alert_id}/acknowledge", {},
                token=ensure_token(demo_url, "viewer"))[0] == 403
    status, ack = call("POST", f"{server}/api/alerts/{alert_id}/acknowledge", {"actor": "lãnh đạo trực"},
                       token=operator)
    assert status == 200 and ack["id"] == alert_id
    assert alert_id not in {a["id"] for a in call("GET", f"{server}/api/alerts")[1]}
    assert call("POST", f"{server}/api/alerts/{alert_id}/acknowledge", {}, token=operator)[0] == 409
    assert call("POST", f"{server}/api/alerts/999999999/acknowledge", {}, token=operator)[0] == 404
    # the same situation, already acknowledged, does not come back
    (again,) = call("POST", f"{server}/api/alerts/evaluate?rule=poverty_above_target", token=operator)[1]
    assert again["state"] == "acknowledged"
    assert alert_id not in {a["id"] for a in call("GET", f"{server}/api/alerts")[1]}


@pytest.fixture
def rule(demo_url):
    """A rule of the test's own, removed afterwards with its alerts."""
    made = []

    def make(code: str, kind: str, params: dict) -> str:
        with psycopg.connect(demo_url) as conn:
            conn.execute("INSERT INTO alert_rules (code, kind, name_vi, name_en, severity, params)"
                         " VALUES (%s, %s, 'Thử', 'Test', 'critical', %s)", (code, kind, Jsonb(params)))
        made.append(code)
        return code

    yield make
    with psycopg.connect(demo_url) as conn:
        conn.execute("DELETE FROM alert_rules WHERE code = ANY(%s)", (made,))


def test_rain_over_landslide_hazard_cells(demo_url, rule):
    with psycopg.connect(demo_url) as conn:
        shares = alerts.hazard_shares(conn, "laocai_landslide_hazard", 3)
        assert len(shares) == 99 and all(0 <= s <= 1 for s in shares.values())
        # classes 3-4 are a quarter of the province (the demo cuts them at fixed shares)
        assert 0.1 < sum(shares.values()) / len(shares) < 0.45
        steep = {c for c, s in shares.items() if s >= 0.4}
        code = rule("test_rain_any", "rainfall_hazard",
                    {"indicator": "rainfall", "min_mm": 0, "raster": "laocai_landslide_hazard", "min_class": 3,
                     "min_share": 0.4})
        (result,) = alerts.evaluate(conn, code)
        assert result["state"] == "fired" and set(result["communes"]) == steep
        (shown,) = [a for a in alerts.active(conn) if a["rule_code"] == code]
        assert shown["severity"] == "critical" and "nguy cơ sạt lở cấp 3" in shown["reason_vi"]
        # no rain that heavy: nothing fires
        dry = rule("test_rain_none", "rainfall_hazard", {"min_mm": 100_000, "min_share": 0.0})
        assert alerts.evaluate(conn, dry)[0]["state"] == "clear"
        missing = rule("test_rain_noraster", "rainfall_hazard", {"raster": "no_such_raster"})
        assert alerts.evaluate(conn, missing)[0]["state"] == "unavailable"


def test_open_incidents_rule_counts_the_backlog(demo_url, rule):
    with psycopg.connect(demo_url) as conn:
        busiest = conn.execute("SELECT commune_code, count(*) FROM incidents WHERE status IN"
                               " ('new', 'assigned', 'in_progress') GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()
        code = rule("test_backlog", "open_incidents", {"max_open": busiest[1] - 1})
        (result,) = alerts.evaluate(conn, code)
        assert result["state"] == "fired" and busiest[0] in result["communes"]
        (shown,) = [a for a in alerts.active(conn) if a["rule_code"] == code]
        assert f"({busiest[1]})" in shown["reason_vi"]
        # evaluated again while unacknowledged: the one alert is refreshed, not duplicated
        assert alerts.evaluate(conn, code)[0] == {**result, "state": "refreshed"}
        assert conn.execute("SELECT count(*) FROM alerts WHERE rule_code = %s", (code,)).fetchone()[0] == 1


def test_cli_overdue_sweep_and_alerts(demo_url):
    from click.testing import CliRunner

    from gis_core.cli import main

    runner = CliRunner()
    env = {"DATABASE_URL": demo_url}
    result = runner.invoke(main, ["incidents", "overdue", "--json", "--limit", "5"], env=env)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert 0 < len(rows) <= 5 and all(r["status"] in ("new", "assigned", "in_progress") for r in rows)
    result = runner.invoke(main, ["incidents", "cameras-sweep"], env=env)
    assert result.exit_code == 0 and "turned offline" in result.output
    result = runner.invoke(main, ["incidents", "alerts", "evaluate", "--rule", "reports_late"], env=env)
    assert result.exit_code == 0 and result.output.startswith("reports_late"), result.output
    result = runner.invoke(main, ["incidents", "alerts", "evaluate", "--rule", "no_such_rule"], env=env)
    assert result.exit_code != 0 and "No enabled alert rule" in result.output
    result = runner.invoke(main, ["incidents", "move", "PA-1999-000001", "assigned", "--actor", "op"], env=env)
    assert result.exit_code != 0 and "No ticket" in result.output
