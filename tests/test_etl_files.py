"""The ETL pipeline on files, against the real cluster: each format, VN-2000, repairs, rejects with
their reasons, runs refused before any write, and a second load of the same file changing nothing."""

from __future__ import annotations

import csv
import json
import threading
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from psycopg import sql
from pyproj import Transformer

from etl import pipeline
from etl.errors import EtlError
from etl.pipeline import run_source
from etl.sources import Source
from gis_core.registry import Registry
from gis_core.settings import Settings
from gis_core.text import unaccent

REGISTRY = Registry.load(Settings().layers_dir)
# The check point of migration 0002: lon 103.97, lat 22.48 <=> E 419540.122, N 2487019.787 (EPSG:9208).
CHECK_LONLAT = (103.97, 22.48)
CHECK_VN2000 = (419540.122, 2487019.787)
OUTSIDE = (105.85, 21.03)   # Hà Nội


def copy_boundaries(demo_url: str, url: str) -> None:
    """The real communes of the demo province, so commune assignment and the province test have
    something to work with (the layers themselves stay empty)."""
    with psycopg.connect(demo_url) as src, psycopg.connect(url) as dst:
        with src.cursor().copy("COPY admin_units TO STDOUT (FORMAT binary)") as out, \
                dst.cursor().copy("COPY admin_units FROM STDIN (FORMAT binary)") as inp:
            for block in out:
                inp.write(block)


@pytest.fixture
def etl_url(db_url, demo_url):
    copy_boundaries(demo_url, db_url)
    return db_url


def school(code: str, name: str, lon: float, lat: float, **extra) -> dict:
    return {"code": code, "name": name, "level": "primary", "ownership": "public", "students": 300,
            "address": "Tổ 1", "lon": lon, "lat": lat, **extra}


SCHOOLS = [
    school("TH-001", "Trường Tiểu học Kim Tân", 103.97, 22.48),
    school("TH-002", "Trường Tiểu học Cốc Lếu", 103.965, 22.495),
    school("TH-003", "Trường Tiểu học Bắc Cường", 103.99, 22.44),
]


def frame(rows: list[dict], crs="EPSG:4326") -> gpd.GeoDataFrame:
    props = [{k: v for k, v in r.items() if k not in ("lon", "lat")} for r in rows]
    return gpd.GeoDataFrame(props, geometry=[shapely.Point(r["lon"], r["lat"]) for r in rows], crs=crs)


def load(url, layer, path, **kw) -> object:
    dry_run = kw.pop("dry_run", False)
    return run_source(url, REGISTRY, Source.adhoc(layer, path, **kw), dry_run=dry_run)


def table_state(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.SQL("SELECT t::text FROM {} t ORDER BY id").format(sql.Identifier(table))).fetchall()


def runs(url: str) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM etl_runs ORDER BY id").fetchall()


def rejects(url: str, run_id: int) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM etl_rejects WHERE run_id = %s ORDER BY row_no", (run_id,)).fetchall()


# -- formats ---------------------------------------------------------------------------------------


def test_geojson_loads_with_commune_unaccent_and_provenance(etl_url, tmp_path):
    path = tmp_path / "truong.geojson"
    frame(SCHOOLS).to_file(path, driver="GeoJSON")
    result = load(etl_url, "schools", path)
    assert (result.status, result.read, result.inserted, result.rejected) == ("succeeded", 3, 3, 0)
    with psycopg.connect(etl_url) as conn:
        rows = conn.execute("SELECT s.code, s.name, s.name_unaccent, s.source, s.commune_code,"
                            " ST_Within(s.geom, c.geom) FROM schools s JOIN admin_units c ON c.code = s.commune_code"
                            " ORDER BY s.code").fetchall()
    assert [r[0] for r in rows] == ["TH-001", "TH-002", "TH-003"]
    assert rows[1][1:4] == ("Trường Tiểu học Cốc Lếu", "truong tieu hoc coc leu", "etl:schools")
    assert all(r[5] for r in rows)      # each lies in the commune it was given
    run = runs(etl_url)[-1]
    assert (run["status"], run["n_read"], run["n_inserted"], run["layer"]) == ("succeeded", 3, 3, "schools")
    assert run["checksum"] and run["ended_at"] >= run["started_at"]


def test_geopackage(etl_url, tmp_path):
    path = tmp_path / "truong.gpkg"
    frame(SCHOOLS).to_file(path, driver="GPKG")
    result = load(etl_url, "schools", path)
    assert (result.inserted, result.rejected) == (3, 0)


def test_zipped_shapefile_utf8_with_cpg(etl_url, tmp_path):
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    frame(SCHOOLS).to_file(shp_dir / "truong.shp", driver="ESRI Shapefile", encoding="UTF-8")
    (shp_dir / "truong.cpg").write_text("UTF-8")
    archive = tmp_path / "truong.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in shp_dir.iterdir():
            z.write(p, p.name)
    result = load(etl_url, "schools", archive)
    assert (result.inserted, result.rejected) == (3, 0)
    with psycopg.connect(etl_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM schools ORDER BY code")]
    assert names == [s["name"] for s in SCHOOLS]


def test_zipped_shapefile_cp1258_is_decoded(etl_url, tmp_path):
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    # Windows-1258 writes Vietnamese partly with combining tone marks; we store NFC.
    frame(SCHOOLS[:1]).to_file(shp_dir / "truong.shp", driver="ESRI Shapefile", encoding="cp1258")
    (shp_dir / "truong.cpg").write_text("1258")
    archive = tmp_path / "truong.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in shp_dir.iterdir():
            z.write(p, p.name)
    assert load(etl_url, "schools", archive).inserted == 1
    with psycopg.connect(etl_url) as conn:
        assert conn.execute("SELECT name FROM schools").fetchone()[0] == "Trường Tiểu học Kim Tân"


# Place names of the province as the legacy fonts store them, byte for byte (TCVN 5712:1993 "ABC";
# VNI-Windows: base letter, then one Windows-1252 byte for its marks).
PLACES = {
    "Lào Cai": (b"L\xb5o Cai", b"La\xf8o Cai"),
    "Bát Xát": (b"B\xb8t X\xb8t", b"Ba\xf9t Xa\xf9t"),
    "Sa Pa": (b"Sa Pa", b"Sa Pa"),
    "Mường Khương": (b"M\xad\xeang Kh\xad\xacng", b"M\xf6\xf4\xf8ng Kh\xf6\xf4ng"),
    "Bắc Hà": (b"B\xbec H\xb5", b"Ba\xe9c Ha\xf8"),
    "Đường Hoàng Liên": (b"\xa7\xad\xeang Ho\xb5ng Li\xaan", b"\xd1\xf6\xf4\xf8ng Hoa\xf8ng Lie\xe2n"),
    "ỦY BAN XÃ Y TÝ": (b"\x9eY BAN X\x82 Y T\x16", b"U\xdbY BAN XA\xd5 Y TY\xd9"),
}


def test_tcvn3_and_vni_decode_the_place_names_and_round_trip_every_letter():
    import unicodedata

    from etl import vnfonts

    for name, (tcvn3, vni) in PLACES.items():
        assert tcvn3.decode("tcvn3") == name and vni.decode("vni") == name
        assert name.encode("tcvn3") == tcvn3 and name.encode("vni") == vni
        assert name.encode("utf-8").decode("utf-8") == name
    # Every Vietnamese letter, lower case and capital, both ways; decomposed input comes out NFC.
    letters = "".join(sorted(set(vnfonts.VNI) - {"\u00a0"}))
    assert len(letters) == 134
    for codec in ("tcvn3", "vni"):
        assert letters.encode(codec).decode(codec) == letters
        assert unicodedata.normalize("NFD", letters).encode(codec).decode(codec) == letters
    assert len(set(vnfonts.TCVN3.values())) == len(vnfonts.TCVN3)      # no two characters share a byte
    with pytest.raises(UnicodeEncodeError):
        "Ελλάς".encode("vni")


def write_dbf(path: Path, fields: list[tuple[str, str, int]], rows: list[list[bytes]]) -> None:
    """A dBase III table as shapefiles carry it, the text already in its encoding's bytes."""
    import struct

    head = struct.pack("<B3BIHH20x", 3, 126, 11, 22, len(rows), 32 + 32 * len(fields) + 1,
                       1 + sum(width for _, _, width in fields))
    descs = b"".join(struct.pack("<11sc4xBB14x", name.encode("ascii"), kind.encode("ascii"), width, 0)
                     for name, kind, width in fields)
    body = b"".join(b" " + b"".join(v.rjust(width) if kind == "N" else v.ljust(width)
                                    for v, (_, kind, width) in zip(row, fields, strict=True)) for row in rows)
    path.write_bytes(head + descs + b"\r" + body + b"\x1a")


def legacy_shapefile(tmp_path: Path, codec: str, cpg: str | None, names: list[str]) -> Path:
    """A zipped shapefile of schools whose DBF text is in `codec` (the .cpg saying `cpg`)."""
    shp_dir = tmp_path / f"shp-{codec}"
    shp_dir.mkdir()
    rows = [school(f"TH-{i:03}", f"Trường Tiểu học {name}", lon, lat, address=name)
            for i, (name, (lon, lat)) in enumerate(zip(names, LOCATIONS, strict=False), start=1)]
    frame(rows)[["geometry"]].to_file(shp_dir / "truong.shp", driver="ESRI Shapefile")
    fields = [("CODE", "C", 10), ("NAME", "C", 80), ("LEVEL", "C", 20), ("OWNERSHIP", "C", 10),
              ("STUDENTS", "N", 6), ("ADDRESS", "C", 60)]
    write_dbf(shp_dir / "truong.dbf", fields,
              [[r["code"].encode(), r["name"].encode(codec), r["level"].encode(), r["ownership"].encode(),
                str(r["students"]).encode(), r["address"].encode(codec)] for r in rows])
    if cpg is not None:
        (shp_dir / "truong.cpg").write_text(cpg)
    archive = tmp_path / f"truong-{codec}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in shp_dir.iterdir():
            z.write(p, p.name)
    return archive


LOCATIONS = [(103.97, 22.48), (103.965, 22.495), (103.99, 22.44), (103.975, 22.47), (103.98, 22.46)]


def stored_schools(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT name, name_unaccent, address FROM schools ORDER BY code").fetchall()


@pytest.mark.parametrize(("codec", "cpg"), [("tcvn3", "TCVN3"), ("vni", "VNI-WIN")])
def test_zipped_shapefile_in_a_legacy_font_is_decoded_from_its_cpg(etl_url, tmp_path, codec, cpg):
    names = ["Lào Cai", "Bát Xát", "Sa Pa", "Mường Khương", "Bắc Hà"]
    archive = legacy_shapefile(tmp_path, codec, cpg, names)
    result = load(etl_url, "schools", archive)
    assert (result.inserted, result.rejected) == (5, 0)
    assert stored_schools(etl_url) == [
        (f"Trường Tiểu học {n}", unaccent(f"Trường Tiểu học {n}"), n) for n in names]
    assert stored_schools(etl_url)[3] == ("Trường Tiểu học Mường Khương", "truong tieu hoc muong khuong",
                                          "Mường Khương")
    # The same file again: nothing changes (decoding is stable).
    assert load(etl_url, "schools", archive).status == "unchanged"


def test_legacy_font_declared_by_the_source_when_the_cpg_says_nothing_useful(etl_url, tmp_path):
    from etl.sources import parse_source

    archive = legacy_shapefile(tmp_path, "tcvn3", "ANSI 1252", ["Bắc Hà", "Mường Khương"])
    declaration = tmp_path / "truong_tcvn3.yml"
    declaration.write_text(f"layer: schools\npath: {archive.name}\nencoding: tcvn3\n", encoding="utf-8")
    result = run_source(etl_url, REGISTRY, parse_source(declaration))
    assert (result.inserted, result.rejected) == (2, 0)
    assert [r[2] for r in stored_schools(etl_url)] == ["Bắc Hà", "Mường Khương"]
    # Without the declaration the .cpg's Windows-1252 is believed: other text ("B¾c Hµ"), so both
    # rows would change (a dry run: nothing is written).
    dry = load(etl_url, "schools", archive, dry_run=True)
    assert (dry.status, dry.updated, dry.rejected) == ("dry-run", 2, 0)


def test_unknown_encoding_is_refused_before_anything_runs(tmp_path):
    from etl.errors import SourceError
    from etl.sources import Source, parse_source

    declaration = tmp_path / "bad.yml"
    declaration.write_text("layer: schools\npath: x.zip\nencoding: vn-klingon\n", encoding="utf-8")
    with pytest.raises(SourceError) as err:
        parse_source(declaration)
    assert "vn-klingon" in err.value.message_vi and "tcvn3" in err.value.message_en
    with pytest.raises(SourceError):
        Source.adhoc("schools", tmp_path / "x.zip", encoding="abc-xyz")


def test_font_look_alikes_in_a_geopackage_are_decoded_when_declared(etl_url, tmp_path):
    """Text typed in an ABC font and saved as Unicode comes out as its Latin-1 look-alikes."""
    names = ["Bắc Hà", "ỦY BAN XÃ Y TÝ"]
    look_alike = [n.encode("tcvn3").decode("latin-1") for n in names]
    assert look_alike[0] == "B¾c Hµ"
    rows = [school(f"TH-{i}", f"Trường {n}", lon, lat, address=n)
            for i, (n, (lon, lat)) in enumerate(zip(look_alike, LOCATIONS, strict=False))]
    frame(rows).to_file(tmp_path / "truong.gpkg", driver="GPKG")
    assert load(etl_url, "schools", tmp_path / "truong.gpkg", encoding="tcvn3").inserted == 2
    # The names are partly Unicode already ("Trường"): only the look-alikes are decoded.
    assert stored_schools(etl_url) == [(f"Trường {n}", unaccent(f"Trường {n}"), n) for n in names]


def test_csv_in_vni_is_decoded(etl_url, tmp_path):
    path = tmp_path / "truong.csv"
    text = ("code,name,level,ownership,students,address,lon,lat\n"
            "TH-009,Trường Tiểu học Bắc Hà,primary,public,10,Bắc Hà,103.97,22.48\n")
    path.write_bytes(text.encode("vni"))
    assert load(etl_url, "schools", path, encoding="vni", crs="EPSG:4326").inserted == 1
    assert stored_schools(etl_url) == [("Trường Tiểu học Bắc Hà", "truong tieu hoc bac ha", "Bắc Hà")]


def test_csv_with_lon_lat_and_with_wkt(etl_url, tmp_path):
    path = tmp_path / "truong.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(SCHOOLS[0]))
        w.writeheader()
        w.writerows(SCHOOLS)
    assert load(etl_url, "schools", path, crs="EPSG:4326").inserted == 3
    wkt = tmp_path / "truong_wkt.csv"
    with open(wkt, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["code", "name", "level", "ownership", "wkt"])
        w.writerow(["TH-009", "Trường Tiểu học Pom Hán", "primary", "public", "POINT (103.98 22.47)"])
    result = load(etl_url, "schools", wkt, crs="EPSG:4326")
    assert (result.inserted, result.rejected) == (1, 0)


def test_vn2000_tm3_input_lands_within_5_cm(etl_url, tmp_path):
    path = tmp_path / "vn2000.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "level", "ownership", "x", "y"])
        w.writerow(["TH-100", "Trường mốc kiểm tra", "primary", "public", *CHECK_VN2000])
    assert load(etl_url, "schools", path, crs="EPSG:9208").inserted == 1
    with psycopg.connect(etl_url) as conn:
        lon, lat = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM schools").fetchone()
    # 5 cm as a distance on the ground, measured in the metric zone itself.
    to_vn = Transformer.from_crs(4326, 9208, always_xy=True)
    x, y = to_vn.transform(lon, lat)
    assert abs(x - CHECK_VN2000[0]) < 0.05 and abs(y - CHECK_VN2000[1]) < 0.05
    assert abs(lon - CHECK_LONLAT[0]) < 1e-6 and abs(lat - CHECK_LONLAT[1]) < 1e-6


def test_vn2000_file_with_its_own_crs_and_utm48n(etl_url, tmp_path):
    to_utm = Transformer.from_crs(4326, 32648, always_xy=True)
    gdf = frame(SCHOOLS[:1], crs="EPSG:4326").to_crs(9208)
    gdf.to_file(tmp_path / "vn.gpkg", driver="GPKG")
    utm = frame(SCHOOLS[1:2]).to_crs(32648)
    utm.to_file(tmp_path / "utm.gpkg", driver="GPKG")
    assert load(etl_url, "schools", tmp_path / "vn.gpkg").inserted == 1
    assert load(etl_url, "schools", tmp_path / "utm.gpkg").inserted == 1
    with psycopg.connect(etl_url) as conn:
        pts = conn.execute("SELECT code, ST_X(geom), ST_Y(geom) FROM schools ORDER BY code").fetchall()
    assert abs(pts[0][1] - 103.97) < 1e-6 and abs(pts[0][2] - 22.48) < 1e-6
    x, y = to_utm.transform(pts[1][1], pts[1][2])
    ex, ey = to_utm.transform(SCHOOLS[1]["lon"], SCHOOLS[1]["lat"])
    assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01


# -- validation ------------------------------------------------------------------------------------


ZONE = {"plan_name": "QHPK Kim Tân", "decision_no": "123/QĐ-UBND", "decision_date": "2024-05-10",
        "zone_type": "residential", "allowed_uses": "residential;commercial", "max_height_m": 24,
        "max_floors": 7, "max_coverage_pct": 60, "min_setback_m": 3, "valid_from": "2024-06-01"}


def zones_geojson(path: Path, rings: dict[str, list]) -> None:
    features = [{"type": "Feature", "properties": {**ZONE, "zone_code": code},
                 "geometry": {"type": "Polygon", "coordinates": [ring]}} for code, ring in rings.items()]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def test_self_intersecting_polygon_repaired_and_unclosed_ring_closed(etl_url, tmp_path):
    x, y, d = 103.97, 22.48, 0.002
    path = tmp_path / "zones.geojson"
    zones_geojson(path, {
        "OK": [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]],
        "BOWTIE": [[x, y], [x + d, y + d], [x + d, y], [x, y + d], [x, y]],    # crosses itself
        "OPEN": [[x, y], [x + d, y], [x + d, y + d], [x, y + d]],              # last point missing
        "LINE": [[x, y], [x + d, y], [x, y]],                                  # nothing to save
    })
    result = load(etl_url, "landuse_zones", path)
    assert (result.inserted, result.repaired, result.rejected) == (3, 2, 1)
    with psycopg.connect(etl_url) as conn:
        rows = dict(conn.execute("SELECT zone_code, ST_IsValid(geom) AND ST_NumGeometries(geom) > 0"
                                 " FROM landuse_zones").fetchall())
        bowtie = conn.execute("SELECT ST_NumGeometries(geom), ST_Area(geom::geography) FROM landuse_zones"
                              " WHERE zone_code = 'BOWTIE'").fetchone()
        opened = conn.execute("SELECT ST_NPoints(geom) FROM landuse_zones WHERE zone_code = 'OPEN'").fetchone()[0]
        repairs = conn.execute("SELECT row_no, reason_vi, reason_en FROM etl_repairs WHERE run_id = %s"
                               " ORDER BY row_no", (result.run_id,)).fetchall()
        allowed = conn.execute("SELECT allowed_uses FROM landuse_zones WHERE zone_code = 'OK'").fetchone()[0]
    assert rows == {"OK": True, "BOWTIE": True, "OPEN": True}
    assert bowtie[0] == 2 and bowtie[1] > 0       # the two triangles of the bow tie
    assert opened == 5                            # four corners and the closing point
    assert [r[0] for r in repairs] == [2, 3]
    assert "make_valid" in repairs[0][2] and "Self-intersection" in repairs[0][2]
    assert "khép" in repairs[1][1] and "closed" in repairs[1][2]
    assert allowed == ["residential", "commercial"]
    [reject] = rejects(etl_url, result.run_id)
    assert reject["row_no"] == 4 and reject["field"] == "geom"
    assert reject["row_data"]["properties"]["zone_code"] == "LINE"


def test_point_outside_the_province_rejected_with_its_reason(etl_url, tmp_path):
    rows = [*SCHOOLS, school("TH-HN", "Trường ở Hà Nội", *OUTSIDE)]
    path = tmp_path / "truong.geojson"
    frame(rows).to_file(path, driver="GeoJSON")
    result = load(etl_url, "schools", path)
    assert (result.inserted, result.rejected) == (3, 1)
    [reject] = rejects(etl_url, result.run_id)
    assert reject["row_no"] == 4 and reject["field"] == "geom"
    assert "ngoài tỉnh" in reject["reason_vi"] and "outside the province" in reject["reason_en"]
    assert reject["row_data"]["properties"]["code"] == "TH-HN"
    assert runs(etl_url)[-1]["n_rejected"] == 1


def one_good_four_bad() -> list[dict]:
    """A good row, then a bad code, a bad type, a missing name and a broken CHECK rule."""
    return [
        school("TH-001", "Tốt", 103.97, 22.48),
        school("TH-002", "Cấp học lạ", 103.97, 22.48, level="university"),
        school("TH-003", "Số lạ", 103.97, 22.48, students="nhiều"),
        school("TH-004", "", 103.97, 22.48),
        school("TH-005", "Âm", 103.97, 22.48, students=-5),
    ]


def test_types_code_lists_required_checks_and_duplicates(etl_url, tmp_path):
    rows = [*one_good_four_bad(), school("TH-001", "Trùng", 103.97, 22.48)]
    path = tmp_path / "t.geojson"
    frame(rows).to_file(path, driver="GeoJSON")
    result = load(etl_url, "schools", path)
    assert (result.inserted, result.rejected) == (1, 5)
    got = {r["row_no"]: (r["field"], r["reason_en"]) for r in rejects(etl_url, result.run_id)}
    assert got[2][0] == "level" and "code list" in got[2][1]
    assert got[3][0] == "students" and "integer" in got[3][1]
    assert got[4][0] == "name" and "Required" in got[4][1]
    assert got[5][0] == "students" and "schools_students_check" in got[5][1]
    assert got[6][0] == "code" and "Duplicate" in got[6][1] and "row 1" in got[6][1]


def test_chunks_reject_and_load_exactly_what_one_pass_does(etl_url, tmp_path, monkeypatch):
    """A run checks and loads its input chunk by chunk (the next chunk checked while the database
    loads this one): on a file mixing every kind of bad row, with duplicates inside one chunk and
    across chunks, chunks of 3 rows give the same rejects, reasons and counts as one chunk, load
    the same rows in input order, and a chunked snapshot retires only what no chunk named."""
    rows = [
        *one_good_four_bad(),
        school("TH-001", "Trùng khúc trước", 103.97, 22.48),
        school("TH-HN", "Hà Nội", *OUTSIDE),
        school("TH-008", "Tốt 2", 103.965, 22.495),
        school("TH-008", "Trùng trong khúc", 103.965, 22.495),
        school("TH-010", "Tốt 3", 103.99, 22.44),
        school("TH-011", "Không hình", 103.99, 22.44),
        school("TH-012", "Đường", 103.99, 22.44),
    ]
    gdf = frame(rows)
    gdf.loc[10, "geometry"] = None
    gdf.loc[11, "geometry"] = shapely.LineString([(103.99, 22.44), (103.98, 22.45)])
    path = tmp_path / "mixed.geojson"
    gdf.to_file(path, driver="GeoJSON")
    whole = load(etl_url, "schools", path, dry_run=True)
    monkeypatch.setattr(pipeline, "CHUNK", 3)
    chunked = load(etl_url, "schools", path, dry_run=True)
    assert [(r["row"], r["field"]) for r in whole.rejects] == [
        (2, "level"), (3, "students"), (4, "name"), (5, "students"), (6, "code"), (7, "geom"), (9, "code"),
        (11, "geom"), (12, "geom")]
    assert chunked.rejects == whole.rejects
    assert "row 1" in whole.rejects[4]["reason_en"] and "row 8" in whole.rejects[6]["reason_en"]
    counts = ("inserted", "updated", "unchanged", "repaired", "rejected", "retired")
    assert [getattr(chunked, c) for c in counts] == [getattr(whole, c) for c in counts] == [3, 0, 0, 0, 9, 0]

    done = load(etl_url, "schools", path)
    assert (done.inserted, done.rejected) == (3, 9)
    assert [r["row_no"] for r in rejects(etl_url, done.run_id)] == [2, 3, 4, 5, 6, 7, 9, 11, 12]
    with psycopg.connect(etl_url) as conn:
        assert conn.execute("SELECT code, name FROM schools ORDER BY id").fetchall() == [
            ("TH-001", "Tốt"), ("TH-008", "Tốt 2"), ("TH-010", "Tốt 3")]
    assert load(etl_url, "schools", path).status == "unchanged"

    # TH-001 delivered badly still counts as present; TH-008 is named by no chunk: retired.
    again = tmp_path / "snapshot.geojson"
    frame([school("TH-001", "Số lạ", 103.97, 22.48, students="nhiều"), school("TH-020", "Mới", 103.97, 22.48),
           school("TH-021", "Mới 2", 103.97, 22.48), school("TH-010", "Tốt 3", 103.99, 22.44)]).to_file(
        again, driver="GeoJSON")
    snap = load(etl_url, "schools", again, snapshot=True, tag="etl:schools")
    assert (snap.inserted, snap.unchanged, snap.rejected, snap.retired) == (2, 1, 1, 1)
    with psycopg.connect(etl_url) as conn:
        assert [r[0] for r in conn.execute("SELECT code FROM schools ORDER BY id")] == \
            ["TH-001", "TH-010", "TH-020", "TH-021"]


def test_checking_thread_hands_over_its_error_and_stops_with_the_run():
    def failing():
        yield 1
        raise ValueError("hỏng / broken")

    got = []
    with pytest.raises(ValueError, match="broken"):
        for item in pipeline.ahead(failing()):
            got.append(item)
    assert got == [1]
    made = []

    def endless():
        for i in range(1_000_000):
            made.append(i)
            yield i

    items = pipeline.ahead(endless())
    assert next(items) == 0
    items.close()     # what a failing run does: the thread stops, one item ahead at most
    assert len(made) <= 3 and not any(t.name == "etl-check" for t in threading.enumerate())
    assert pipeline.chunk_bounds(10, 10) == [(0, 10)]
    assert pipeline.chunk_bounds(1_000_000, 200_000)[:2] == [(0, 50_000), (50_000, 250_000)]


def test_staged_points_are_the_ewkb_shapely_writes():
    """Points are staged as hex EWKB written by numpy; other geometries by shapely: the same text."""
    def shapely_hex(geoms):
        return [None if g is None else shapely.to_wkb(shapely.set_srid(g, 4326), hex=True, include_srid=True)
                for g in geoms]

    points = np.array([shapely.Point(103.97, 22.48), None, shapely.Point(-1e-300, 1e300),
                       shapely.Point(0.1, -0.2)], dtype=object)
    mixed = np.array([shapely.Point(1, 2), shapely.LineString([(0, 0), (1, 1)]), None], dtype=object)
    for geoms in (points, mixed, np.array([None], dtype=object)):
        assert pipeline.ewkb_hex(geoms).tolist() == shapely_hex(geoms)


def test_file_without_crs_refused_before_any_write(etl_url, tmp_path):
    path = tmp_path / "truong.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(SCHOOLS[0]))
        w.writeheader()
        w.writerows(SCHOOLS)
    before = table_state(etl_url, "schools")
    with pytest.raises(EtlError) as err:
        load(etl_url, "schools", path)
    assert "hệ tọa độ" in err.value.message_vi and "coordinate reference system" in err.value.message_en
    assert table_state(etl_url, "schools") == before == []
    [run] = runs(etl_url)
    assert run["status"] == "failed" and run["n_inserted"] == 0 and "CRS" in run["message"]
    assert rejects(etl_url, run["id"]) == []
    # A shapefile without .prj is refused the same way.
    frame(SCHOOLS).to_file(tmp_path / "noprj.shp", driver="ESRI Shapefile")
    (tmp_path / "noprj.prj").unlink()
    with pytest.raises(EtlError, match="coordinate reference system"):
        load(etl_url, "schools", tmp_path / "noprj.shp")
    assert table_state(etl_url, "schools") == []


def test_missing_mapped_column_and_empty_file_refused(etl_url, tmp_path):
    path = tmp_path / "t.geojson"
    frame(SCHOOLS).to_file(path, driver="GeoJSON")
    source = Source(name="sgd", layer="schools", path=path, fields={"code": "MA_TRUONG", "name": "name",
                                                                     "level": "level", "ownership": "ownership"})
    with pytest.raises(EtlError) as err:
        run_source(etl_url, REGISTRY, source)
    assert "MA_TRUONG" in err.value.message_en and "MA_TRUONG" in err.value.message_vi
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(EtlError, match="empty"):
        load(etl_url, "schools", empty)
    assert table_state(etl_url, "schools") == []
    assert [r["status"] for r in runs(etl_url)] == ["failed", "failed"]


def test_declared_mapping_codes_and_defaults(etl_url, tmp_path):
    gdf = gpd.GeoDataFrame({"MA": ["MN-1", "TH-1"], "TEN": ["Mầm non Hoa Mai", "Tiểu học Lê Lợi"],
                            "CAP": ["MN", "TH"]},
                           geometry=[shapely.Point(103.97, 22.48), shapely.Point(103.968, 22.49)], crs=4326)
    gdf.to_file(tmp_path / "sgd.gpkg", driver="GPKG")
    source = Source(name="sgd", layer="schools", path=tmp_path / "sgd.gpkg",
                    fields={"code": "MA", "name": "TEN", "level": "CAP"}, defaults={"ownership": "public"},
                    codes={"level": {"MN": "preschool", "TH": "primary"}})
    result = run_source(etl_url, REGISTRY, source)
    assert (result.inserted, result.rejected) == (2, 0)
    with psycopg.connect(etl_url) as conn:
        assert conn.execute("SELECT code, level, ownership, source FROM schools ORDER BY code").fetchall() == [
            ("MN-1", "preschool", "public", "etl:sgd"), ("TH-1", "primary", "public", "etl:sgd")]


# -- idempotence, dry run --------------------------------------------------------------------------


def test_same_file_twice_changes_nothing_the_second_time(etl_url, tmp_path):
    path = tmp_path / "truong.gpkg"
    frame(SCHOOLS).to_file(path, driver="GPKG")
    first = load(etl_url, "schools", path)
    state = table_state(etl_url, "schools")
    with psycopg.connect(etl_url) as conn:
        xmins = conn.execute("SELECT xmin::text FROM schools ORDER BY id").fetchall()
    second = load(etl_url, "schools", path)
    assert first.inserted == 3
    assert (second.status, second.inserted, second.updated, second.unchanged, second.changed) == \
        ("unchanged", 0, 0, 3, 0)
    assert "Nothing changed" in second.message
    assert table_state(etl_url, "schools") == state
    with psycopg.connect(etl_url) as conn:
        # Not even rewritten: the same tuple versions, and no new history version.
        assert conn.execute("SELECT xmin::text FROM schools ORDER BY id").fetchall() == xmins
        assert conn.execute("SELECT count(*) FROM history.schools").fetchone()[0] == 3
    # One field changed: one update, the rest untouched.
    changed = [dict(s) for s in SCHOOLS]
    changed[1]["students"] = 999
    frame(changed).to_file(path, driver="GPKG")
    third = load(etl_url, "schools", path)
    assert (third.status, third.inserted, third.updated, third.unchanged) == ("succeeded", 0, 1, 2)


def test_dry_run_reports_and_writes_nothing(etl_url, tmp_path):
    path = tmp_path / "truong.geojson"
    frame([*SCHOOLS, school("TH-HN", "Hà Nội", *OUTSIDE)]).to_file(path, driver="GeoJSON")
    result = load(etl_url, "schools", path, dry_run=True)
    assert (result.status, result.inserted, result.rejected) == ("dry-run", 3, 1)
    assert "outside" in result.rejects[0]["reason_en"]
    assert table_state(etl_url, "schools") == [] and runs(etl_url) == []


def test_column_unaccent_agrees_with_the_one_value_form():
    from etl.validate import unaccent_column

    names = ["Trường Tiểu học Kim Tân", "  Xã  Bản Vược ", "Đồng Văn", "", "a\u0301b", "Ωmega", "ß straße",
             "x\u00a0y", "ﬁne", None, "Trường Tiểu học Kim Tân", "Ελλάς", "e\u20dd"]
    assert unaccent_column(names) == [unaccent(n) if n is not None else None for n in names]
    assert unaccent_column(["a\x00b", None]) == ["a\x00b", None]
    # Vietnamese only (the one-pass path), clean or with spaces to tidy, with and without NULLs.
    for column in (["Đồng Văn", "Bắc Hà", None, "Mường Khương"], ["Sa  Pa", " Bát Xát", "Lào\tCai ", "Y\x0bTý"],
                   ["Si Ma Cai"]):
        assert unaccent_column(column) == [unaccent(n) if n is not None else None for n in column]
