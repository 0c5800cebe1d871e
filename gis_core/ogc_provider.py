"""pygeoapi's PostgreSQL provider, held to the registry: psycopg 3 as driver, and only the
layer's public fields in schemas and queryables (the stock provider lists every column)."""

from __future__ import annotations

from datetime import date, datetime

from pygeoapi.crs import get_transform_from_spec
from pygeoapi.provider.base import ProviderItemNotFoundError
from pygeoapi.provider.sql import GenericSQLProvider, PostgreSQLProvider
from sqlalchemy.orm import Session

# JSON-schema type and format per Python type of a column; the stock map lacks date and arrays.
JSON_TYPES: dict[type, tuple[str, str | None]] = {
    bool: ("boolean", None),
    int: ("integer", None),
    float: ("number", None),
    str: ("string", None),
    datetime: ("string", "date-time"),
    date: ("string", "date"),
    list: ("array", None),
    dict: ("object", None),
}


class RegistryPostgreSQLProvider(PostgreSQLProvider):
    def __init__(self, provider_def: dict):
        GenericSQLProvider.__init__(
            self, provider_def, "postgresql+psycopg",
            {"client_encoding": "utf8", "application_name": "iocgis-ogc"},
        )

    def get_fields(self) -> dict:
        if self._fields:
            return self._fields
        allowed = set(self.properties or ()) | {self.id_field}
        for column in self.table_model.__table__.columns:
            if column.name == self.geom or (self.properties and column.name not in allowed):
                continue
            try:
                python_type = column.type.python_type
            except NotImplementedError:
                python_type = str
            if python_type.__name__ == "Decimal":
                python_type = float
            json_type, json_format = JSON_TYPES.get(python_type, ("string", None))
            self._fields[column.name] = {"type": json_type, "format": json_format}
        return self._fields

    def get(self, identifier, crs_transform_spec=None, **kwargs):
        # The stock get() hands the URL's text id to the database; psycopg 3 sends it typed as
        # text and PostgreSQL will not compare bigint = text. So: the id in the column's own type.
        column = getattr(self.table_model, self.id_field)
        key = identifier
        if column.type.python_type is int:
            try:
                key = int(identifier)
            except (TypeError, ValueError):
                raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.") from None
            if not -(2**63) <= key < 2**63:
                raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.")
        with Session(self._engine) as session:
            item = session.get(self.table_model, key)
            if item is None:
                raise ProviderItemNotFoundError(f"No such item: {self.id_field}={identifier}.")
            feature = self._sqlalchemy_to_feature(item, get_transform_from_spec(crs_transform_spec))
            if self.properties:
                feature["properties"] = {k: v for k, v in feature["properties"].items()
                                         if k in self.properties}
            previous = (session.query(column).filter(column < key).order_by(column.desc()).first())
            following = (session.query(column).filter(column > key).order_by(column.asc()).first())
            feature["prev"] = previous[0] if previous else key
            feature["next"] = following[0] if following else key
        return feature
