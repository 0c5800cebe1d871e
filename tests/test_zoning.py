"""The zoning check's rules, each at its boundary (equal to the limit passes, above fails), on a
small plan drawn in metres (UTM 48N) in a fresh database: splits and slivers, land outside the
plan, overlays that forbid, restrict or send to review, and a plan superseded by a newer one."""

from __future__ import annotations

import datetime as dt

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import Transformer

from gis_core.errors import InvalidParameter
from gis_core.zoning import Proposal, check_footprint, parse_footprint

TO_DEG = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
X0, Y0 = 400_000.0, 2_480_000.0     # near Lào Cai city, in UTM 48N metres
APPLIED = dt.date(2026, 3, 1)


def deg(geom):
    return shapely.transform(geom, lambda c: np.column_stack(TO_DEG.transform(c[:, 0], c[:, 1])))


def rect(x: float, y: float, w: float, h: float):
    """A w x h m rectangle with its south-west corner x, y metres from the plan's origin."""
    return deg(shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h))


ZONE = """
INSERT INTO landuse_zones (plan_name, decision_no, decision_date, zone_code, zone_type, allowed_uses,
  conditional_uses, max_height_m, max_floors, max_coverage_pct, min_setback_m, commune_code, valid_from, source, geom)
VALUES ('Quy hoạch thử', %(decision)s, %(valid_from)s, %(code)s, %(type)s, %(allowed)s, %(conditional)s,
        %(height)s, %(floors)s, %(coverage)s, %(setback)s, '00001', %(valid_from)s, 'test',
        ST_Multi(ST_GeomFromWKB(%(wkb)s, 4326)))
RETURNING id
"""
PERMIT = """
INSERT INTO building_permits (permit_no, applicant_name, address, address_unaccent, commune_code, intended_use,
  floors, height_m, footprint_area_m2, parcel_area_m2, status, applied_on, source, geom)
VALUES (%(no)s, 'Người thử', 'Số 1', 'so 1', '00001', %(use)s, %(floors)s, %(height)s, %(footprint)s, %(parcel)s,
        'submitted', %(applied)s, 'test', ST_Multi(ST_GeomFromWKB(%(wkb)s, 4326)))
RETURNING id
"""


def add_zone(conn, code, geom, *, decision="1/QĐ-UBND", valid_from=dt.date(2020, 1, 1), type_="residential",
             allowed=("residential",), conditional=("commercial",), height=15, floors=4, coverage=60, setback=3):
    return conn.execute(ZONE, dict(decision=decision, valid_from=valid_from, code=code, type=type_,
                                   allowed=list(allowed), conditional=list(conditional), height=height,
                                   floors=floors, coverage=coverage, setback=setback,
                                   wkb=shapely.to_wkb(geom))).fetchone()[0]


_numbers = iter(range(1, 1_000_000))


def add_permit(conn, geom=None, *, use="residential", floors=3, height=12.0, footprint=60.0, parcel=200.0,
               applied=APPLIED) -> int:
    geom = geom if geom is not None else rect(95, 95, 10, 10)
    return conn.execute(PERMIT, dict(no=f"T-{next(_numbers)}", use=use, floors=floors, height=height,
                                     footprint=footprint, parcel=parcel, applied=applied,
                                     wkb=shapely.to_wkb(geom))).fetchone()[0]


def check(conn, *ids: int) -> dict[int, dict]:
    conn.execute("SELECT * FROM zoning_check_permits(%s)", (list(ids),))
    rows = conn.execute("SELECT permit_id, verdict, zones, overlays, reasons, decision_nos FROM permit_checks"
                        " WHERE permit_id = ANY (%s)", (list(ids),)).fetchall()
    return {r[0]: {"verdict": r[1], "zones": r[2], "overlays": r[3], "reasons": r[4], "decision_nos": r[5]}
            for r in rows}


def rules(result: dict) -> set[str]:
    return {r["rule"] for r in result["reasons"]}


@pytest.fixture
def plan(conn: psycopg.Connection):
    """Zone R2 (housing, 15 m, 4 floors, 60 %, setback 3 m) and, east of it, C1 (mixed use, 30 m,
    8 floors, 70 %, no setback); 200 m x 200 m each."""
    conn.execute("INSERT INTO admin_units (code, parent_code, level, kind, name, full_name, name_unaccent,"
                 " valid_from, source, geom) VALUES ('15', NULL, 'province', 'Tỉnh', 'Thử', 'Tỉnh Thử', 'thu',"
                 " '2020-01-01', 'test', ST_Multi(ST_MakeEnvelope(103, 21, 106, 23.5, 4326))),"
                 " ('00001', '15', 'commune', 'Xã', 'Thử', 'Xã Thử', 'thu', '2020-01-01', 'test',"
                 " ST_Multi(ST_MakeEnvelope(103, 21, 106, 23.5, 4326)))")
    zones = {"R2": add_zone(conn, "R2", rect(0, 0, 200, 200)),
             "C1": add_zone(conn, "C1", rect(200, 0, 200, 200), type_="mixed",
                            allowed=("residential", "commercial", "office"), conditional=(), height=30, floors=8,
                            coverage=70, setback=0)}
    return zones


# -- each rule at its boundary --------------------------------------------------------------------


def test_a_permit_within_every_limit_is_compliant(conn, plan):
    pid = add_permit(conn)
    result = check(conn, pid)[pid]
    assert result["verdict"] == "compliant", result["reasons"]
    assert result["reasons"] == [] and result["overlays"] == []
    assert [(z["zone_code"], z["share"]) for z in result["zones"]] == [("R2", 1)]
    assert result["decision_nos"] == ["1/QĐ-UBND"]


@pytest.mark.parametrize("height, verdict", [(15, "compliant"), (15.01, "non_compliant")])
def test_height_at_the_limit(conn, plan, height, verdict):
    pid = add_permit(conn, height=height, floors=3)
    result = check(conn, pid)[pid]
    assert result["verdict"] == verdict
    if verdict == "non_compliant":
        (reason,) = result["reasons"]
        assert reason["rule"] == "height" and reason["measured"] == 15.01 and reason["limit"] == 15
        assert reason["message_vi"] == "chiều cao 15,01 m vượt mức tối đa 15 m của khu R2"
        assert reason["message_en"] == "height 15.01 m exceeds the 15 m maximum of zone R2"


@pytest.mark.parametrize("floors, verdict", [(4, "compliant"), (5, "non_compliant")])
def test_floors_at_the_limit(conn, plan, floors, verdict):
    pid = add_permit(conn, floors=floors, height=14)
    result = check(conn, pid)[pid]
    assert result["verdict"] == verdict
    if verdict == "non_compliant":
        (reason,) = result["reasons"]
        assert (reason["rule"], reason["measured"], reason["limit"]) == ("floors", 5, 4)
        assert reason["message_vi"] == "số tầng 5 vượt mức tối đa 4 tầng của khu R2"


@pytest.mark.parametrize("footprint, verdict", [(120, "compliant"), (120.01, "non_compliant")])
def test_coverage_at_the_limit(conn, plan, footprint, verdict):
    pid = add_permit(conn, footprint=footprint, parcel=200)      # 60 % of 200 m² is 120 m²
    result = check(conn, pid)[pid]
    assert result["verdict"] == verdict
    if verdict == "non_compliant":
        (reason,) = result["reasons"]
        assert reason["rule"] == "coverage" and reason["limit"] == 60 and reason["measured"] == 60.01
        assert reason["message_en"] == "building coverage 60.01% exceeds the 60% maximum of zone R2"


def test_unknown_parcel_area_is_a_review(conn, plan):
    pid = add_permit(conn, parcel=None)
    result = check(conn, pid)[pid]
    assert result["verdict"] == "needs_review" and rules(result) == {"coverage_unknown"}


@pytest.mark.parametrize("gap, verdict", [(3.0, "compliant"), (5.0, "compliant"), (2.9, "non_compliant"),
                                          (0.0, "non_compliant")])
def test_setback_from_the_zone_edge(conn, plan, gap, verdict):
    pid = add_permit(conn, rect(gap, 50, 10, 10))               # `gap` metres from R2's west edge
    result = check(conn, pid)[pid]
    assert result["verdict"] == verdict, result["reasons"]
    if verdict == "non_compliant":
        (reason,) = result["reasons"]
        assert reason["rule"] == "setback" and reason["limit"] == 3
        assert abs(reason["measured"] - gap) < 0.01
        assert reason["message_vi"].startswith("khoảng lùi ") and "tối thiểu 3 m của khu R2" in reason["message_vi"]


@pytest.mark.parametrize("use, verdict, rule", [("residential", "compliant", None), ("commercial", "needs_review",
                                                "conditional_use"), ("industry", "non_compliant", "use")])
def test_allowed_conditional_and_forbidden_uses(conn, plan, use, verdict, rule):
    pid = add_permit(conn, use=use)
    result = check(conn, pid)[pid]
    assert result["verdict"] == verdict
    assert rules(result) == ({rule} if rule else set())
    if rule == "use":
        assert result["reasons"][0]["message_vi"] == \
            'mục đích sử dụng "công nghiệp" không được phép trong khu R2 (được phép: nhà ở)'
        assert result["reasons"][0]["message_en"] == 'use "industry" is not allowed in zone R2 (allowed: housing)'


# -- where the footprint lies ---------------------------------------------------------------------


def test_a_footprint_split_across_two_zones_needs_review(conn, plan):
    pid = add_permit(conn, rect(190, 50, 20, 10))                # half in R2, half in C1
    result = check(conn, pid)[pid]
    assert result["verdict"] == "needs_review", result["reasons"]
    assert rules(result) == {"split"}
    shares = {z["zone_code"]: z["share"] for z in result["zones"]}
    assert shares.keys() == {"R2", "C1"} and abs(shares["R2"] - 0.5) < 0.01 and abs(shares["C1"] - 0.5) < 0.01
    split = result["reasons"][0]
    assert split["message_vi"].startswith("công trình nằm trên 2 khu: ")
    assert "% trong khu R2" in split["message_vi"] and "in zone C1" in split["message_en"]


def test_a_sliver_is_not_a_split_and_the_tolerance_is_configurable(conn, plan):
    conn.execute("UPDATE landuse_zones SET min_setback_m = 0 WHERE zone_code = 'R2'")
    sliver = add_permit(conn, rect(180.05, 50, 20, 10))          # 0.5 m² in C1
    small = add_permit(conn, rect(180.2, 50, 20, 10))            # 2 m² in C1
    results = check(conn, sliver, small)
    assert results[sliver]["verdict"] == "compliant", results[sliver]["reasons"]
    assert [z["zone_code"] for z in results[sliver]["zones"]] == ["R2"]
    assert results[small]["verdict"] == "needs_review" and rules(results[small]) == {"split"}
    conn.execute("UPDATE zoning_tolerances SET sliver_m2 = 3")
    assert check(conn, small)[small]["verdict"] == "compliant"


def test_land_outside_the_plan(conn, plan):
    half = add_permit(conn, rect(-5, 50, 10, 10))                # half west of R2, where no plan is
    none = add_permit(conn, rect(-100, 50, 10, 10))
    results = check(conn, half, none)
    assert results[half]["verdict"] == "non_compliant"           # it also sits on R2's edge: setback 0 m
    assert rules(results[half]) == {"outside_plan", "setback"}
    outside = next(r for r in results[half]["reasons"] if r["rule"] == "outside_plan")
    assert abs(outside["measured"] - 50) < 1
    assert results[none]["verdict"] == "needs_review" and rules(results[none]) == {"no_plan"}
    assert results[none]["zones"] == []


# -- overlays -------------------------------------------------------------------------------------


OVERLAY = """
INSERT INTO zoning_overlays (code, kind, name_vi, name_en, effect, max_height_m, max_floors, hazard_class,
                             valid_from, source, geom)
VALUES (%(code)s, %(kind)s, %(vi)s, %(en)s, %(effect)s, %(height)s, %(floors)s, 3, '2020-01-01', 'test',
        ST_Multi(ST_GeomFromWKB(%(wkb)s, 4326)))
"""


def add_overlay(conn, code, geom, effect, kind="landslide_hazard", height=None, floors=None):
    conn.execute(OVERLAY, dict(code=code, kind=kind, vi=f"vùng {code}", en=f"area {code}", effect=effect,
                               height=height, floors=floors, wkb=shapely.to_wkb(geom)))


def test_a_permit_inside_a_hazard_overlay(conn, plan):
    add_overlay(conn, "sat-lo-4", rect(0, 100, 100, 100), "forbid")
    add_overlay(conn, "sat-lo-3", rect(100, 100, 100, 100), "restrict", height=8, floors=2)
    add_overlay(conn, "ngap", rect(0, 0, 100, 60), "review", kind="flood_hazard")
    forbidden = add_permit(conn, rect(40, 140, 10, 10))
    low = add_permit(conn, rect(140, 140, 10, 10), floors=2, height=8)
    high = add_permit(conn, rect(140, 140, 10, 10), floors=3, height=11)
    flood = add_permit(conn, rect(40, 20, 10, 10))
    edge = add_permit(conn, rect(95, 170, 10, 10), floors=2, height=8)   # half forbidden, half restricted
    results = check(conn, forbidden, low, high, flood, edge)

    assert results[forbidden]["verdict"] == "non_compliant"
    (reason,) = results[forbidden]["reasons"]
    assert reason["rule"] == "overlay_forbid" and reason["target"] == "sat-lo-4"
    assert reason["message_vi"].startswith("công trình nằm trong vùng sat-lo-4 (")
    assert reason["message_vi"].endswith("100% diện tích), nơi không được xây dựng")
    assert results[forbidden]["overlays"][0]["share"] == 1

    assert results[low]["verdict"] == "compliant"                # at the overlay's limits: passes
    assert [o["code"] for o in results[low]["overlays"]] == ["sat-lo-3"]
    assert results[high]["verdict"] == "non_compliant"
    assert rules(results[high]) == {"overlay_height", "overlay_floors"}
    assert results[flood]["verdict"] == "needs_review" and rules(results[flood]) == {"overlay_review"}
    edge_overlays = {o["code"]: o["share"] for o in results[edge]["overlays"]}
    assert abs(edge_overlays["sat-lo-4"] - 0.5) < 0.01 and abs(edge_overlays["sat-lo-3"] - 0.5) < 0.01
    assert results[edge]["verdict"] == "non_compliant"


# -- plans in force -------------------------------------------------------------------------------


def test_a_superseded_plan_judges_permits_applied_before_the_new_decision(conn, plan):
    conn.execute("INSERT INTO zoning_plans (decision_no, plan_name, decision_date, valid_from, source)"
                 " VALUES ('1/QĐ-UBND', 'Quy hoạch thử', '2020-01-01', '2020-01-01', 'test')")
    add_zone(conn, "R2", rect(0, 0, 200, 200), decision="2/QĐ-UBND", valid_from=dt.date(2025, 1, 1), height=10)
    add_zone(conn, "C1", rect(200, 0, 200, 200), decision="2/QĐ-UBND", valid_from=dt.date(2025, 1, 1),
             type_="commercial", allowed=("commercial",), conditional=(), height=30, floors=8, coverage=70, setback=0)
    conn.execute("INSERT INTO zoning_plans (decision_no, plan_name, decision_date, valid_from, supersedes, source)"
                 " VALUES ('2/QĐ-UBND', 'Điều chỉnh quy hoạch', '2024-11-20', '2025-01-01', '1/QĐ-UBND', 'test')")
    # The trigger closed the old plan's zones on the day the new one took effect.
    closed = conn.execute("SELECT DISTINCT valid_to FROM landuse_zones WHERE decision_no = '1/QĐ-UBND'").fetchall()
    assert closed == [(dt.date(2025, 1, 1),)]
    before = add_permit(conn, height=12, applied=dt.date(2024, 12, 31))
    after = add_permit(conn, height=12, applied=dt.date(2025, 1, 1))
    results = check(conn, before, after)
    assert results[before]["verdict"] == "compliant" and results[before]["decision_nos"] == ["1/QĐ-UBND"]
    assert results[after]["verdict"] == "non_compliant" and results[after]["decision_nos"] == ["2/QĐ-UBND"]
    (reason,) = results[after]["reasons"]
    assert reason["message_en"] == "height 12 m exceeds the 10 m maximum of zone R2"


# -- the bulk check's short path ------------------------------------------------------------------

ONE_BY_ONE = """
SELECT e.verdict, e.decision_nos, e.zones, e.overlays, e.reasons
FROM building_permits p
CROSS JOIN LATERAL zoning_evaluate(ARRAY[ROW(p.id, p.geom, p.intended_use, p.floors, p.height_m,
    p.footprint_area_m2, p.parcel_area_m2, p.applied_on)::zoning_subject]) e
WHERE p.id = %s
"""


def test_the_bulk_check_answers_as_the_check_of_one_permit(conn, plan):
    """zoning_check_permits judges footprints inside one zone and away from overlays on a short
    path of its own; everything else, and the page's check of one permit, goes through
    zoning_evaluate. Every kind of permit gets the same verdict, zones, overlays and reasons."""
    add_overlay(conn, "sat-lo-4", rect(0, 150, 60, 50), "forbid")
    BEFORE = dt.date(2024, 6, 1)                                 # the new plan (R2 only) is in force from 2025
    conn.execute("INSERT INTO zoning_plans (decision_no, plan_name, decision_date, valid_from, source)"
                 " VALUES ('1/QĐ-UBND', 'Quy hoạch thử', '2020-01-01', '2020-01-01', 'test')")
    add_zone(conn, "R2", rect(0, 0, 200, 200), decision="2/QĐ-UBND", valid_from=dt.date(2025, 1, 1), height=10)
    conn.execute("INSERT INTO zoning_plans (decision_no, plan_name, decision_date, valid_from, supersedes, source)"
                 " VALUES ('2/QĐ-UBND', 'Điều chỉnh', '2024-11-20', '2025-01-01', '1/QĐ-UBND', 'test')")
    ids = [
        add_permit(conn),                                        # inside R2, compliant
        add_permit(conn, height=12, applied=BEFORE),             # the old R2: 15 m allowed
        add_permit(conn, height=12),                             # the new R2: 10 m, too tall
        add_permit(conn, rect(1, 95, 10, 10)),                   # 1 m from R2's edge: setback
        add_permit(conn, rect(250, 95, 10, 10), use="office", floors=9, parcel=None, applied=BEFORE),   # C1 (old plan)
        add_permit(conn, rect(95, 95, 10, 10), use="commercial"),   # conditional in R2
        add_permit(conn, rect(95, 95, 10, 10), use="industry"),  # not allowed in R2
        add_permit(conn, rect(190, 50, 20, 10), applied=BEFORE),   # split R2 / C1 (old plan)
        add_permit(conn, rect(-5, 50, 10, 10)),                  # half outside the plan
        add_permit(conn, rect(-100, 50, 10, 10)),                # no plan
        add_permit(conn, rect(20, 170, 10, 10)),                 # inside R2 and a forbidden overlay
        add_permit(conn, rect(55, 170, 10, 10)),                 # on the overlay's edge
        add_permit(conn, rect(0, 95, 10, 10), height=9),         # on R2's edge, from inside
        add_permit(conn, rect(185, 50, 20, 10), use="industry", applied=BEFORE),   # split, the use allowed in neither
        add_permit(conn, rect(140, 40, 10, 10), floors=2, height=8),   # inside R2 and a restricted area, within it
        add_permit(conn, rect(140, 40, 10, 10), floors=3, height=9),   # the same, above the area's limits
    ]
    add_overlay(conn, "sat-lo-3", rect(120, 20, 60, 60), "restrict", height=8, floors=2)
    bulk = check(conn, *ids)
    assert len(bulk) == len(ids)
    for pid in ids:
        verdict, decision_nos, zones, overlays, reasons = conn.execute(ONE_BY_ONE, (pid,)).fetchone()
        assert (bulk[pid]["verdict"], bulk[pid]["decision_nos"], bulk[pid]["zones"], bulk[pid]["overlays"],
                bulk[pid]["reasons"]) == (verdict, decision_nos, zones, overlays, reasons), pid
    assert {r["verdict"] for r in bulk.values()} == {"compliant", "non_compliant", "needs_review"}
    assert {rule for r in bulk.values() for rule in rules(r)} >= {
        "height", "setback", "floors", "coverage_unknown", "conditional_use", "use", "split", "outside_plan",
        "no_plan", "overlay_forbid", "overlay_height", "overlay_floors"}
    assert bulk[ids[12]]["verdict"] == "non_compliant" and rules(bulk[ids[12]]) == {"setback"}
    assert bulk[ids[14]]["verdict"] == "compliant" and [o["code"] for o in bulk[ids[14]]["overlays"]] == ["sat-lo-3"]
    assert rules(bulk[ids[15]]) == {"overlay_height", "overlay_floors"}


def test_the_reasons_of_a_split_footprint_come_in_a_fixed_order(conn, plan):
    """The split first, then each zone's broken rules, the zone holding the larger share first."""
    pid = add_permit(conn, rect(185, 50, 20, 10), use="industry", floors=5, height=14)   # 75 % R2, 25 % C1
    result = check(conn, pid)[pid]
    assert [(r["rule"], r["target"]) for r in result["reasons"]] == [
        ("split", "R2, C1"), ("floors", "R2"), ("use", "R2"), ("use", "C1")]
    assert result["verdict"] == "non_compliant"


# -- proposals ------------------------------------------------------------------------------------


def test_a_proposal_is_checked_without_being_stored(conn, plan):
    footprint = parse_footprint(shapely.geometry.mapping(rect(95, 95, 10, 10)))
    result = check_footprint(conn, Proposal(footprint, "residential", 5, 16.5, parcel_area_m2=100,
                                            applied_on=APPLIED))
    assert result["verdict"] == "non_compliant"
    assert {r["rule"] for r in result["reasons"]} == {"height", "floors", "coverage"}
    coverage = next(r for r in result["reasons"] if r["rule"] == "coverage")
    assert abs(coverage["measured"] - 100) < 0.5                 # footprint measured: 100 m² on a 100 m² parcel
    assert conn.execute("SELECT count(*) FROM permit_checks").fetchone()[0] == 0


def test_a_proposal_in_vn2000_coordinates(conn, plan):
    to_vn = Transformer.from_crs("EPSG:4326", "EPSG:9208", always_xy=True)
    geom = shapely.transform(rect(95, 95, 10, 10), lambda c: np.column_stack(to_vn.transform(c[:, 0], c[:, 1])))
    footprint = parse_footprint(shapely.to_geojson(geom), crs="EPSG:9208")
    result = check_footprint(conn, Proposal(footprint, "residential", 3, 12, parcel_area_m2=200, applied_on=APPLIED))
    assert result["verdict"] == "compliant" and result["zones"][0]["zone_code"] == "R2"


@pytest.mark.parametrize("value, crs, message", [
    ("{not json", None, "not valid JSON"),
    ({"type": "Point", "coordinates": [104, 22]}, None, "Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": []}, None, "empty"),
    ({"type": "Polygon", "coordinates": [[[104.0, 22.4], [104.001, 22.401], [104.001, 22.4], [104.0, 22.4005],
                                          [104.0, 22.4]]]}, None, "not a valid polygon"),
    ({"type": "Polygon", "coordinates": [[[419540, 2487019], [419560, 2487019], [419560, 2487039],
                                          [419540, 2487019]]]}, None, "outside Lào Cai"),
    ({"type": "Polygon", "coordinates": [[[104, 22], [104.001, 22], [104.001, 22.001], [104, 22]]]}, "EPSG:99999",
     "Unknown coordinate reference system"),
])
def test_malformed_footprints_are_refused_with_a_reason(value, crs, message):
    with pytest.raises(InvalidParameter) as info:
        parse_footprint(value, crs)
    assert message in info.value.message_en and info.value.message_vi
