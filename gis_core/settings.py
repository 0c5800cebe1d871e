"""One settings object, read from the environment in entry points and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    layers_dir: Path = PROJECT_ROOT / "layers"
    migrations_dir: Path = PROJECT_ROOT / "postgis" / "migrations"
    pygeoapi_config: Path = PROJECT_ROOT / "pygeoapi-config.yml"
    assets_dir: Path = PROJECT_ROOT / "node_modules"
    data_dir: Path = PROJECT_ROOT / "data"
    pool_min: int = 1
    pool_max: int = 10
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        kwargs: dict = {}
        if env.get("DATABASE_URL"):
            kwargs["database_url"] = env["DATABASE_URL"]
        if env.get("IOCGIS_VAR_DIR"):
            kwargs["var_dir"] = Path(env["IOCGIS_VAR_DIR"]).resolve()
        for name, key in (("pg_port", "IOCGIS_PG_PORT"), ("port", "IOCGIS_PORT"),
                          ("pool_min", "IOCGIS_POOL_MIN"), ("pool_max", "IOCGIS_POOL_MAX")):
            if env.get(key):
                try:
                    kwargs[name] = int(env[key])
                except ValueError:
                    raise ValueError(f"{key} must be a whole number, not {env[key]!r}") from None
        if env.get("IOCGIS_HOST"):
            kwargs["host"] = env["IOCGIS_HOST"]
        if env.get("IOCGIS_PUBLIC_URL"):
            kwargs["public_url"] = env["IOCGIS_PUBLIC_URL"].rstrip("/")
        if env.get("IOCGIS_ASSETS_DIR"):
            kwargs["assets_dir"] = Path(env["IOCGIS_ASSETS_DIR"]).resolve()
        return cls(**kwargs)

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
