"""pygeoapi's PostgreSQL provider, held to the registry: psycopg 3 as driver, and only the
layer's public fields in schemas and queryables (the stock provider lists every column)."""

from __future__ import annotations

from datetime import date, datetime

from pygeoapi.provider.sql import GenericSQLProvider, PostgreSQLProvider

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
