"""docker-compose.yml cannot run here (no Docker engine), so it is kept honest by reading it."""

from __future__ import annotations

import re

import click
import yaml

from gis_core.cli import main
from gis_core.settings import ENV_VARS, PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
VAR = re.compile(r"\$\{(\w+)(?::[-?]([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    return VAR.sub(lambda m: env.get(m[1]) or (m[2] or ""), value)


def test_services_and_their_wiring():
    services = COMPOSE["services"]
    assert {"postgis", "migrate", "web"} <= set(services)
    assert services["postgis"]["image"].startswith("postgis/postgis:15-3")
    assert services["migrate"]["depends_on"]["postgis"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["web"]["command"][:3] == ["iocgis", "serve", "--workers"]
    assert services["web"]["environment"]["IOCGIS_PORT"] == "8080" and services["web"]["ports"][0].endswith(":8080")


def test_every_variable_is_one_the_settings_read():
    for name in ("migrate", "web"):
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= set(ENV_VARS), set(env) - set(ENV_VARS)
        assert "DATABASE_URL" in env


def test_database_url_points_at_the_postgis_service_and_parses():
    given = {"POSTGRES_PASSWORD": "s3cret", "IOCGIS_PUBLIC_URL": "https://gis.laocai.gov.vn"}
    env = {k: interpolate(str(v), given) for k, v in COMPOSE["services"]["web"]["environment"].items()}
    settings = Settings.from_env(env)
    pg = {k: interpolate(v, given) for k, v in COMPOSE["services"]["postgis"]["environment"].items()}
    assert settings.database_url == (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgis:5432/{pg['POSTGRES_DB']}")
    assert settings.public_url == "https://gis.laocai.gov.vn"
    assert not settings.managed  # production never starts its own cluster
    assert settings.pool_max >= settings.pool_min


def test_commands_exist_in_the_cli():
    for service in COMPOSE["services"].values():
        command = service.get("command")
        if not command or command[0] != "iocgis":
            continue
        ctx = click.Context(main)
        group = main
        for word in command[1:]:
            sub = group.get_command(ctx, word)
            assert sub is not None, f"`{' '.join(command)}` is not an iocgis command"
            if not isinstance(sub, click.Group):
                break
            group = sub


def test_image_and_assets_are_built_from_the_repo():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "npm ci" in dockerfile and "package-lock.json" in dockerfile
    assert "pip install" in dockerfile and '"iocgis", "serve", "--workers"' in dockerfile
    assert COMPOSE["services"]["migrate"]["build"] == "."
