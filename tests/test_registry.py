"""The layer registry is the single source of truth: tables match it, the committed pygeoapi
config is generated from it and valid, restricted fields never reach the config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gis_core.errors import ConfigError
from gis_core.ogc_config import render
from gis_core.registry import Registry, parse_layer
from gis_core.settings import Settings

SETTINGS = Settings()
REGISTRY = Registry.load(SETTINGS.layers_dir)


def test_registry_has_the_mission_layers():
    assert {layer.id for layer in REGISTRY} >= {
        "provinces", "communes", "landuse_zones", "building_permits", "schools", "clinics", "cameras", "incidents"}


@pytest.mark.parametrize("layer", list(REGISTRY), ids=lambda layer: layer.id)
def test_layer_backed_by_table_of_declared_type(conn, layer):
    row = conn.execute(
        "SELECT type, srid FROM geometry_columns WHERE f_table_schema = 'public'"
        " AND f_table_name = %s AND f_geometry_column = %s",
        (layer.table, layer.geometry_column)).fetchone()
    if row is None or row[0] == "GEOMETRY":  # a view: ask the column's type modifier
        row = conn.execute(
            "SELECT postgis_typmod_type(a.atttypmod), postgis_typmod_srid(a.atttypmod)"
            " FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attname = %s",
            (layer.table, layer.geometry_column)).fetchone()
    assert row is not None, f"{layer.table}.{layer.geometry_column} missing"
    assert (row[0].upper(), row[1]) == (layer.geometry_type.upper(), 4326)
    columns = {r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (layer.table,))}
    declared = {f.name for f in layer.fields} | {layer.id_field}
    assert declared <= columns, f"declared but not in {layer.table}: {declared - columns}"


def test_committed_pygeoapi_config_is_in_sync():
    assert SETTINGS.pygeoapi_config.read_text(encoding="utf-8") == render(REGISTRY), (
        "pygeoapi-config.yml is stale: run `iocgis layers config`")


def test_pygeoapi_validates_the_committed_config():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pygeoapi"), "config", "validate", "-c", str(SETTINGS.pygeoapi_config)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout


def test_restricted_fields_never_reach_the_config():
    config = yaml.safe_load(SETTINGS.pygeoapi_config.read_text(encoding="utf-8"))
    restricted_seen = 0
    for layer in REGISTRY:
        published = set(config["resources"][layer.id]["providers"][0]["properties"])
        restricted = {f.name for f in layer.restricted_fields}
        restricted_seen += len(restricted)
        assert not published & restricted
        assert published == {f.name for f in layer.public_fields} - {layer.id_field}
    assert restricted_seen >= 5  # applicants, reporters, camera streams


def test_bad_layer_files_are_refused_with_a_reason(tmp_path):
    bad = tmp_path / "roads.yml"
    bad.write_text(yaml.safe_dump({
        "id": "roads", "title": {"vi": "Đường"}, "description": {"vi": "x", "en": "x"},
        "theme": "planning", "geometry_type": "LineString", "fields": {"name": {"label": {"vi": "Tên", "en": "Name"}}},
    }))
    with pytest.raises(ConfigError, match="English"):
        parse_layer(bad)
    bad.write_text(bad.read_text().replace("title:\n  vi: Đường", "title: {vi: Đường, en: Roads}")
                   + "style: {popup: [secret]}\n")
    with pytest.raises(ConfigError, match="popup"):
        parse_layer(bad)


def test_public_reports_layer_cannot_carry_personal_data(conn):
    """The public answer sheet is a view without the reporter's columns, not a filter on a table."""
    columns = {r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'public_reports'::regclass AND attnum > 0")}
    assert "ticket_code" in columns and "answer" in columns
    assert not columns & {"reporter_name", "reporter_contact"}
    assert REGISTRY["public_reports"].restricted_fields == ()
