"""Errors of the incident area, in the IocgisError hierarchy (one status and code each)."""

from __future__ import annotations

from ..errors import InvalidParameter, IocgisError


class ValidationFailed(InvalidParameter):
    """Bad input, with a message per field in Vietnamese and English."""

    def __init__(self, fields: dict[str, tuple[str, str]]):
        self.fields = fields
        super().__init__("Dữ liệu gửi lên không hợp lệ: " + ", ".join(fields) + ".",
                         "Invalid input: " + ", ".join(fields) + ".")

    def to_dict(self) -> dict:
        return {**super().to_dict(),
                "fields": {name: {"vi": vi, "en": en} for name, (vi, en) in self.fields.items()}}


class IllegalTransition(IocgisError):
    status = 409
    code = "Conflict"


class PayloadTooLarge(IocgisError):
    status = 413
    code = "PayloadTooLarge"


class UnsupportedMediaType(IocgisError):
    status = 415
    code = "UnsupportedMediaType"

