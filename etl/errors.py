"""ETL errors: a run that cannot start (bad file, bad declaration) says why in Vietnamese and English."""

from __future__ import annotations

from gis_core.errors import IocgisError


class EtlError(IocgisError):
    """The input or its declaration is wrong: nothing has been written."""

    status = 400
    code = "InvalidParameterValue"


class SourceError(EtlError):
    """A source declaration under etl/sources/ is malformed."""
