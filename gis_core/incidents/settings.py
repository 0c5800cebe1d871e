"""Settings of the incident area, read from the environment by entry points and passed down."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..settings import read_env
from .reports import MAX_PHOTO_BYTES


@dataclass(frozen=True)
class IncidentSettings:
    # Public reports per client (IP address) per minute, and the burst allowed at once. Generous on
    # purpose: mobile carriers put many citizens behind one address (CGNAT). 0 turns the limit off
    # (the benchmark, or a proxy that limits instead).
    report_rate_per_min: float = 30.0
    report_burst: int = 20
    max_photo_bytes: int = MAX_PHOTO_BYTES
    # The web app sweeps silent cameras offline at most this often (seconds); 0: only heartbeats,
    # camera events and `iocgis incidents cameras-sweep` do.
    camera_sweep_s: float = 30.0

    @property
    def max_request_bytes(self) -> int:
        # the photo plus the form fields and multipart framing around it
        return self.max_photo_bytes + 256 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IncidentSettings:
        return cls(**read_env(ENV_VARS, environ))


ENV_VARS: dict[str, tuple[str, Callable[[str], object]]] = {
    "IOCGIS_REPORTS_PER_MIN": ("report_rate_per_min", float),
    "IOCGIS_REPORTS_BURST": ("report_burst", int),
    "IOCGIS_REPORTS_MAX_PHOTO_BYTES": ("max_photo_bytes", int),
    "IOCGIS_CAMERA_SWEEP_S": ("camera_sweep_s", float),
}
