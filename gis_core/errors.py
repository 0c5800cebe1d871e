"""One root exception carrying an HTTP status, an OGC-style code and a safe bilingual message."""

from __future__ import annotations


class IocgisError(Exception):
    status = 500
    code = "ServerError"

    def __init__(self, message_vi: str, message_en: str | None = None):
        super().__init__(message_en or message_vi)
        self.message_vi = message_vi
        self.message_en = message_en or message_vi

    def to_dict(self) -> dict:
        return {"code": self.code, "description": f"{self.message_vi} / {self.message_en}"}


class InvalidParameter(IocgisError):
    status = 400
    code = "InvalidParameterValue"


class Unauthorized(IocgisError):
    """Not logged in, or an API token that is unknown, expired or revoked."""
    status = 401
    code = "Unauthorized"


class Forbidden(IocgisError):
    """Logged in (or a token), without a role that may do this; or a form without its CSRF token."""
    status = 403
    code = "Forbidden"


class TooManyRequests(IocgisError):
    """Too many requests from one caller (logins, citizen reports): 429, and Retry-After."""
    status = 429
    code = "TooManyRequests"

    def __init__(self, message_vi: str, message_en: str, retry_after_s: int):
        super().__init__(message_vi, message_en)
        self.retry_after_s = retry_after_s


class NotFound(IocgisError):
    status = 404
    code = "NotFound"


class ConfigError(IocgisError):
    status = 500
    code = "ConfigurationError"


class DatabaseUnavailable(IocgisError):
    status = 503
    code = "ServiceUnavailable"


class ClusterError(IocgisError):
    """The managed PostGIS cluster could not be set up or started."""
