"""The transaction SQL builders and the body checks of gis_core/features_write.py, without a
database: only catalog names reach SQL, as identifiers; every value is a parameter."""

from __future__ import annotations

import json

import pytest

from gis_core import features_sql as fsql
from gis_core import features_write as fw
from gis_core.errors import InvalidParameter

CATALOG = fsql.Catalog(table="schools", id_column=fsql.Column("id", "bigint"), geometry="geom", srid=4326,
                       columns=(fsql.Column("name", "text"), fsql.Column("students", "integer")))
POINT = {"type": "Point", "coordinates": [103.97, 22.48]}


def feature(properties: dict, geometry: dict | None = POINT) -> str:
    return json.dumps({"type": "Feature", "geometry": geometry, "properties": properties})


def test_a_whole_feature_sets_every_writable_field():
    edit = fw.parse_feature(feature({"name": "Trường A"}), CATALOG, "Point", partial=False)
    assert edit.values == {"name": "Trường A", "students": None} and not edit.multi


def test_a_patch_sets_only_what_it_names_and_may_leave_the_geometry():
    edit = fw.parse_feature(feature({"students": 5}, None), CATALOG, "Point", partial=True)
    assert edit.values == {"students": 5} and edit.geometry is None
    with pytest.raises(InvalidParameter, match="Nothing to update"):
        fw.parse_feature(feature({}, None), CATALOG, "Point", partial=True)


def test_single_geometries_are_wrapped_into_a_multi_layer():
    polygon = {"type": "Polygon", "coordinates": [[[103.9, 22.4], [104, 22.4], [104, 22.5], [103.9, 22.4]]]}
    edit = fw.parse_feature(feature({}, polygon), CATALOG, "MultiPolygon", partial=False)
    assert edit.multi
    statement, _ = fw.insert_sql(CATALOG, edit)
    assert "ST_Multi(" in statement.as_string(None)


@pytest.mark.parametrize(("properties", "message"), [
    ({"name; DROP TABLE schools": 1}, "cannot be written"),
    ({"id": 3}, "cannot be written"),
    ({"name": ["a", {"b": 1}]}, "must be a number"),
    ({"students": float("nan")}, "not a finite number"),
])
def test_bad_properties_are_refused(properties, message):
    with pytest.raises(InvalidParameter, match=message):
        fw.parse_feature({"type": "Feature", "geometry": POINT, "properties": properties}, CATALOG, "Point",
                         partial=False)


def test_sql_names_are_identifiers_and_values_parameters():
    edit = fw.with_search_copies(
        fw.parse_feature(feature({"name": "Trường Đông'; --"}), CATALOG, "Point", partial=False), ["name_unaccent"])
    assert edit.values["name_unaccent"] == "truong dong'; --"
    statement, params = fw.update_sql(CATALOG, edit, 7)
    text = statement.as_string(None)
    assert "Trường" not in text and "--" not in text
    assert '"name" = CAST(%(v_name)s AS text)' in text and '"name_unaccent" = CAST(%(v_name_unaccent)s AS text)' in text
    assert 'WHERE "id" = %(id)s' in text and params["id"] == 7 and params["v_name"] == "Trường Đông'; --"
    statement, params = fw.delete_sql(CATALOG, 7)
    assert statement.as_string(None) == 'DELETE FROM "schools" WHERE "id" = %(id)s RETURNING "id"'
