"""Access: roles and their rules (rules.py), accounts, tokens and sessions (accounts.py), and the
`iocgis users` / `iocgis tokens` commands (cli.py)."""

from .accounts import PUBLIC, Forbidden, Principal, Throttled, Unauthorized
from .rules import ALL_ROLES, ANONYMOUS, PAGES, ROLES

__all__ = ["ALL_ROLES", "ANONYMOUS", "PAGES", "PUBLIC", "ROLES", "Forbidden", "Principal", "Throttled",
           "Unauthorized"]
