"""pygeoapi's PostgreSQL provider, held to the registry: psycopg 3 as driver, and only the
layer's public fields in schemas and queryables (the stock provider lists every column)."""

from __future__ import annotations

from pygeoapi.provider.sql import GenericSQLProvider, PostgreSQLProvider


class RegistryPostgreSQLProvider(PostgreSQLProvider):
    def __init__(self, provider_def: dict):
        GenericSQLProvider.__init__(
            self, provider_def, "postgresql+psycopg",
            {"client_encoding": "utf8", "application_name": "iocgis-ogc"},
        )

    def get_fields(self) -> dict:
        fields = super().get_fields()
        if self.properties:
            allowed = set(self.properties) | {self.id_field}
            for name in list(fields):
                if name not in allowed:
                    del fields[name]
        return fields
