"""QGIS (Debian's python3-qgis, headless) opens layers through its OAPIF provider and counts them.

python3-qgis is built for Debian's own Python, not the project's venv: QGIS runs in a
/usr/bin/python3 subprocess with an offscreen Qt platform and prints what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess

import psycopg
import pytest
from psycopg import sql

from gis_core.registry import Registry
from gis_core.settings import Settings

LAYERS = {layer.id: layer for layer in Registry.load(Settings().layers_dir).published()}

QGIS_SCRIPT = """
import json, os, sys
from qgis.core import QgsApplication, QgsVectorLayer

app = QgsApplication([], False)
app.initQgis()
base, name = sys.argv[1:3]
layer = QgsVectorLayer(f"url='{base}' typename='{name}' pagingEnabled='true' restrictToRequestBBOX='0'",
                       name, "OAPIF")
# (layer.error() is not asked for: in QGIS 3.22 reading it from Python crashes the process.)
out = {"valid": layer.isValid(), "crs": layer.crs().authid(),
       "geometry": layer.wkbType(), "fields": [f.name() for f in layer.fields()],
       "featureCount": layer.featureCount() if layer.isValid() else None,
       "iterated": sum(1 for _ in layer.getFeatures()) if layer.isValid() else None}
print("QGIS " + json.dumps(out), flush=True)
# QGIS 3.22 can crash while tearing its providers down; what it saw is already printed.
os._exit(0)
"""


def open_in_qgis(base: str, layer: str, tmp_path) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path),
           "HOME": str(tmp_path)}   # QGIS writes its profile under HOME: keep it out of the real one
    env.pop("PYTHONPATH", None)
    # faulthandler: if QGIS crashes, stderr says where.
    done = subprocess.run(["/usr/bin/python3", "-X", "faulthandler", "-c", QGIS_SCRIPT, base, layer],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("QGIS ")]
    assert done.returncode == 0 and lines, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    return json.loads(lines[-1].removeprefix("QGIS "))


def table_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("layer_id", ["schools", "incidents"])
def test_qgis_opens_a_layer_and_counts_its_features(server, demo_url, tmp_path, layer_id):
    layer = LAYERS[layer_id]
    expected = table_count(demo_url, layer.table)
    assert expected > 0, f"demo left {layer.table} empty"
    seen = open_in_qgis(f"{server}/ogc", layer.id, tmp_path)
    assert seen["valid"], seen
    assert seen["crs"] in ("OGC:CRS84", "EPSG:4326"), seen["crs"]
    assert seen["featureCount"] == expected, seen
    assert seen["iterated"] == expected, seen
    public = {f.name for f in layer.public_fields}
    assert public <= set(seen["fields"]) | {layer.id_field}, seen["fields"]
    assert not {f.name for f in layer.restricted_fields} & set(seen["fields"]), seen["fields"]
