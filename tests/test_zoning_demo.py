"""The bulk check on the demo province against what the generator meant: every permit it made to
break a rule is found with that rule's reason, and the ones it made compliant break no zone rule.
Then the derived overlays, the CLI with its reports, and the stored results."""

from __future__ import annotations

import csv
import datetime as dt
import json

import psycopg
import pytest
import shapely
from click.testing import CliRunner

from gis_core.cli import main
from gis_core.demo import _rng
from gis_core.demo import planning as demo_planning
from gis_core.demo.boundaries import read_units
from gis_core.demo.geo import Metric
from gis_core.settings import Settings
from gis_core.zoning import check_permits
from gis_core.zoning.overlays import load_overlays

ZONE_RULES = {"height", "floors", "use", "conditional_use", "coverage", "coverage_unknown", "setback", "split",
              "no_plan", "outside_plan"}
EXPECTED = {"too_tall": "height", "too_many_floors": "floors", "use_not_allowed": "use", "coverage": "coverage",
            "two_zones": "split"}


@pytest.fixture(scope="module")
def truth(monkeypatch_module) -> dict[str, str]:
    """Footprint (WKB hex) -> the role the generator gave the permit, drawn again with the demo's seeds."""
    captured = {}
    original = demo_planning._permit_rows

    def spy(rng, zones, keep, zone_of, role, uses, footprints, area_m2, today, chunk):
        captured["role"], captured["footprints"] = role.copy(), footprints
        return original(rng, zones, keep, zone_of, role, uses, footprints, area_m2, today, chunk)

    monkeypatch_module.setattr(demo_planning, "_permit_rows", spy)
    _province, communes = read_units(Settings().data_dir)
    metric = Metric()
    _plans, zones = demo_planning.generate_zones(_rng("zones"), communes, metric)
    demo_planning.generate_permits(_rng("permits:0"), zones, 2000, metric, dt.date.today(), 0)
    hexes = shapely.to_wkb(captured["footprints"], hex=True)
    return {h.lower(): demo_planning.ROLES[r] for h, r in zip(hexes, captured["role"], strict=True)}


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def checked(demo_url) -> str:
    with psycopg.connect(demo_url) as conn:
        load_overlays(conn)
    check_permits(demo_url, all_permits=True, workers=2)
    return demo_url


@pytest.fixture(scope="module")
def results(checked) -> list[dict]:
    with psycopg.connect(checked) as conn:
        rows = conn.execute("""
            SELECT encode(ST_AsBinary(ST_GeometryN(p.geom, 1)), 'hex'), c.verdict, c.reasons, c.overlays
            FROM building_permits p JOIN permit_checks c ON c.permit_id = p.id""").fetchall()
    return [{"hex": r[0], "verdict": r[1], "reasons": r[2], "overlays": r[3]} for r in rows]


def test_every_demo_permit_is_checked_and_matched_to_the_generator(results, truth):
    assert len(results) == 2000 and len(truth) == 2000
    assert {r["hex"] for r in results} == set(truth)


def test_rule_breakers_are_found_with_the_right_reason(results, truth):
    found: dict[str, int] = {}
    for r in results:
        role = truth[r["hex"]]
        if role == "ok":
            continue
        rules = {x["rule"] for x in r["reasons"]}
        assert EXPECTED[role] in rules, (role, r["reasons"])
        assert r["verdict"] in (("needs_review", "non_compliant") if role == "two_zones" else ("non_compliant",))
        found[role] = found.get(role, 0) + 1
    assert set(found) == set(EXPECTED), found
    assert sum(found.values()) > 150                     # about 12 % of 2,000


def test_compliant_permits_break_no_zone_rule(results, truth):
    ok = [r for r in results if truth[r["hex"]] == "ok"]
    assert len(ok) > 1500
    for r in ok:
        assert not {x["rule"] for x in r["reasons"]} & ZONE_RULES, r["reasons"]
    # Overlays (landslide classes 3-4 from the hazard raster, river corridors) are not the
    # generator's business: permits clear of them are compliant, the rest carry only overlay reasons.
    clear = [r for r in ok if not r["overlays"]]
    assert clear and all(r["verdict"] == "compliant" for r in clear)
    assert all(x["rule"].startswith("overlay_") for r in ok for x in r["reasons"])


def test_derived_overlays_come_from_the_hazard_raster_and_the_rivers(checked):
    with psycopg.connect(checked) as conn:
        rows = dict(conn.execute("SELECT kind || ':' || effect, count(*) FROM zoning_overlays GROUP BY 1").fetchall())
        plans = conn.execute("SELECT count(*) FROM zoning_plans").fetchone()[0]
        inside = conn.execute("""
            SELECT count(*) FROM permit_checks c, jsonb_array_elements(c.overlays) o
            WHERE o->>'kind' = 'landslide_hazard'""").fetchone()[0]
    assert rows["landslide_hazard:forbid"] > 10 and rows["landslide_hazard:restrict"] > 10
    assert rows["river_corridor:forbid"] == 2
    assert plans == 99 and inside > 0


def test_cli_checks_by_number_and_since_and_writes_reports(checked, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", checked)
    with psycopg.connect(checked) as conn:
        number, applied = conn.execute("""
            SELECT p.permit_no, p.applied_on FROM building_permits p JOIN permit_checks c ON c.permit_id = p.id
            WHERE c.verdict = 'non_compliant' ORDER BY p.id LIMIT 1""").fetchone()
        since_n = conn.execute("SELECT count(*) FROM building_permits WHERE applied_on >= %s",
                               (applied,)).fetchone()[0]
    runner = CliRunner()
    out = tmp_path / "one.geojson"
    result = runner.invoke(main, ["permits", "check", number, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "không phù hợp / non-compliant" in result.output and "1 permit(s) checked" in result.output
    (feature,) = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert feature["properties"]["permit_no"] == number and feature["properties"]["verdict"] == "non_compliant"
    assert feature["geometry"]["type"] == "MultiPolygon" and feature["properties"]["reasons"]

    report = tmp_path / "since.csv"
    result = runner.invoke(main, ["permits", "check", "--since", applied.isoformat(), "--out", str(report)])
    assert result.exit_code == 0, result.output
    with report.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == since_n and {r["verdict"] for r in rows} <= {"compliant", "needs_review", "non_compliant"}
    assert any(r["reasons_vi"] and r["reasons_en"] for r in rows)

    bad = runner.invoke(main, ["permits", "check", "--all", "--out", str(tmp_path / "x.pdf")])
    assert bad.exit_code == 2 and "--out" in bad.output
    both = runner.invoke(main, ["permits", "check", "--all", number])
    assert both.exit_code == 2
    missing = runner.invoke(main, ["permits", "check", "GPXD-1999-999999"])
    assert missing.exit_code == 1 and "GPXD-1999-999999" in missing.output


def test_bulk_check_is_one_statement_per_chunk_and_stable(checked):
    with psycopg.connect(checked) as conn:
        before = dict(conn.execute("SELECT permit_id, verdict FROM permit_checks").fetchall())
    counts = check_permits(checked, all_permits=True, chunk=700, workers=3)
    assert sum(counts.values()) == 2000
    with psycopg.connect(checked) as conn:
        after = dict(conn.execute("SELECT permit_id, verdict FROM permit_checks").fetchall())
    assert after == before
