"""The key that signs web session cookies."""

from __future__ import annotations

import os
import secrets

from ..settings import Settings

MIN_LENGTH = 32


def secret_key(settings: Settings) -> str:
    """IOCGIS_SECRET_KEY when set; else var_dir/secret_key, made on first use readable by its owner
    only. Several workers starting at once all end up with the one file's key."""
    if settings.secret_key:
        if len(settings.secret_key) < MIN_LENGTH:
            raise ValueError(f"IOCGIS_SECRET_KEY: at least {MIN_LENGTH} characters")
        return settings.secret_key
    path = settings.var_dir / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
