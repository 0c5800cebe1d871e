"""One settings object, read from the environment in entry points and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where things are and how to reach them.

    `database_url` None means: use the managed cluster under `var_dir`.
    """

    database_url: str | None = None
    var_dir: Path = PROJECT_ROOT / "var"
    pg_port: int = 54329
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    # An online tile URL ({z}/{x}/{y}) for the web map; None keeps the map offline-capable.
    basemap_url: str | None = None
    layers_dir: Path = PROJECT_ROOT / "layers"
    migrations_dir: Path = PROJECT_ROOT / "postgis" / "migrations"
    pygeoapi_config: Path = PROJECT_ROOT / "pygeoapi-config.yml"
    assets_dir: Path = PROJECT_ROOT / "node_modules"
    data_dir: Path = PROJECT_ROOT / "data"
    pool_min: int = 1
    pool_max: int = 10
    # Signs the web session cookie. Production sets IOCGIS_SECRET_KEY; without it one is made once
    # in var_dir/secret_key (mode 600) and kept (gis_core/auth/secret.py).
    secret_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls(**read_env(ENV_VARS, environ))

    @property
    def managed(self) -> bool:
        """True when IOC-GIS runs its own PostGIS cluster under var/."""
        return self.database_url is None

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def raster_dir(self) -> Path:
        return self.var_dir / "rasters"


def read_env(variables: Mapping[str, tuple[str, Callable[[str], object]]],
             environ: Mapping[str, str] | None = None) -> dict:
    """Keyword arguments for a settings class: each variable that is set, parsed, under its field name."""
    env = os.environ if environ is None else environ
    kwargs: dict = {}
    for key, (name, parse) in variables.items():
        if env.get(key):
            try:
                kwargs[name] = parse(env[key])
            except ValueError:
                raise ValueError(f"{key}: invalid value {env[key]!r}") from None
    return kwargs


def _path(value: str) -> Path:
    return Path(value).resolve()


# Every environment variable IOC-GIS reads, and the setting it fills (docker-compose is checked
# against this table).
ENV_VARS: dict[str, tuple[str, Callable[[str], object]]] = {
    "DATABASE_URL": ("database_url", str),
    "IOCGIS_VAR_DIR": ("var_dir", _path),
    "IOCGIS_PG_PORT": ("pg_port", int),
    "IOCGIS_HOST": ("host", str),
    "IOCGIS_PORT": ("port", int),
    "IOCGIS_PUBLIC_URL": ("public_url", lambda v: v.rstrip("/")),
    "IOCGIS_ASSETS_DIR": ("assets_dir", _path),
    "IOCGIS_POOL_MIN": ("pool_min", int),
    "IOCGIS_POOL_MAX": ("pool_max", int),
    "IOCGIS_BASEMAP_URL": ("basemap_url", str),
    "IOCGIS_SECRET_KEY": ("secret_key", str),
}
