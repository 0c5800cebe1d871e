"""OGC API - Processes `zonal-stats` through the running server: each commune's figures equal an
independent rasterio cut of the file, class shares add up, and every bad input is a clear 400."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import psycopg
import pytest
import rasterio
import rasterio.mask

EXECUTE = "/ogc/processes/zonal-stats/execution"


def post(server: str, body: bytes | dict) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(server + EXECUTE, data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.load(e)


@pytest.fixture(scope="module")
def communes(demo_url) -> dict[str, dict]:
    with psycopg.connect(demo_url) as conn:
        rows = conn.execute("SELECT code, name, ST_AsGeoJSON(geom)::json FROM communes ORDER BY code").fetchall()
        paths = dict(conn.execute("SELECT name, path FROM rasters").fetchall())
    return {"rows": {code: (name, geom) for code, name, geom in rows}, "paths": paths}


def test_described_with_its_rasters(server):
    with urllib.request.urlopen(f"{server}/ogc/processes?f=json") as r:
        assert "zonal-stats" in [p["id"] for p in json.load(r)["processes"]]
    with urllib.request.urlopen(f"{server}/ogc/processes/zonal-stats?f=json") as r:
        described = json.load(r)
    assert described["inputs"]["raster"]["schema"]["enum"] == ["dem", "landslide_hazard"]
    assert described["inputs"]["communes"]["minOccurs"] == 0


def test_dem_per_commune_matches_rasterio(server, communes):
    codes = sorted(communes["rows"])[:3]
    status, result = post(server, {"inputs": {"raster": "dem", "communes": codes}})
    assert status == 200, result
    assert result["raster"] == "dem" and result["unit"] == "m"
    assert [c["code"] for c in result["communes"]] == codes
    with rasterio.open(communes["paths"]["laocai_dem"]) as src:
        for row in result["communes"]:
            cut, _ = rasterio.mask.mask(src, [communes["rows"][row["code"]][1]], crop=True, filled=False)
            values = cut.compressed()
            assert row["name"] == communes["rows"][row["code"]][0]
            assert row["pixels"] == values.size > 0
            assert row["min"] == pytest.approx(float(values.min()), abs=1e-3)
            assert row["max"] == pytest.approx(float(values.max()), abs=1e-3)
            assert row["mean"] == pytest.approx(float(values.mean()), abs=1e-2)
            assert 25 <= row["min"] <= row["mean"] <= row["max"] <= 3143


def test_hazard_shares_for_every_commune(server, communes):
    status, result = post(server, {"inputs": {"raster": "landslide_hazard"}})
    assert status == 200, result
    rows = result["communes"]
    assert len(rows) == len(communes["rows"]) == 99
    total = {str(v): 0 for v in range(5)}
    for row in rows:
        assert row["pixels"] > 0, row["code"]
        assert set(row["classes"]) == set(total)
        assert sum(c["pixels"] for c in row["classes"].values()) == row["pixels"]
        assert sum(c["share"] for c in row["classes"].values()) == pytest.approx(1.0, abs=1e-3)
        for value, c in row["classes"].items():
            total[value] += c["pixels"]
    assert rows[0]["classes"]["4"]["label"] == {"vi": "Rất cao", "en": "Very high"}
    # The demo cut the classes at 30/25/20/15/10 % of the province's pixels.
    shares = np.array(list(total.values())) / sum(total.values())
    assert shares == pytest.approx([0.30, 0.25, 0.20, 0.15, 0.10], abs=0.03)


def test_a_communes_figures_do_not_depend_on_the_others_asked(server, communes):
    code = sorted(communes["rows"])[0]
    alone = post(server, {"inputs": {"raster": "dem", "communes": [code]}})[1]["communes"][0]
    every = {c["code"]: c for c in post(server, {"inputs": {"raster": "dem"}})[1]["communes"]}
    assert every[code] == alone


@pytest.mark.parametrize("inputs, words", [
    ({}, "raster input is missing"),
    ({"raster": "nothing"}, "No raster 'nothing'"),
    ({"raster": 5}, "raster input is missing"),
    ({"raster": "dem", "communes": ["99999"]}, "No commune with code 99999"),
    ({"raster": "dem", "communes": [1, 2]}, "commune codes"),
    ({"raster": "dem", "communes": []}, "commune codes"),
    ({"raster": "dem", "communes": {"a": 1}}, "commune codes"),
])
def test_bad_inputs_are_400_with_a_reason(server, inputs, words):
    status, body = post(server, {"inputs": inputs})
    assert status == 400, body
    assert words in body["description"]


def test_malformed_body_is_400(server):
    assert post(server, b"{not json")[0] == 400


@pytest.mark.parametrize("body, words", [
    (b"null", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"\xff\xfe\x00C", "invalid request data"),
    (b'{"inputs": [1]}', "must be JSON objects"),
    (b'{"inputs": {"raster": "dem"}, "response": "stream"}', "'raw' or 'document'"),
    (b'{"inputs": {"raster": "dem"}, "subscriber": {"successUri": "http://127.0.0.1:9/x"}}', "synchronously"),
    (b'{"inputs": {"raster": "dem"}, "subscriber": [null]}', "synchronously"),
])
@pytest.mark.parametrize("process", ["zonal-stats", "zoning-check"])
def test_execute_requests_pygeoapi_would_fail_on_are_400(server, process, body, words):
    """Bodies schemathesis found answered with a 500 by pygeoapi's own execute handler."""
    req = urllib.request.Request(f"{server}/ogc/processes/{process}/execution", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    with info.value:
        assert info.value.code == 400
        assert words in json.load(info.value)["description"]
