"""Access: roles and their rules (rules.py), accounts, tokens, sessions and login throttling
(accounts.py), the session-signing key (secret.py), and `iocgis users` / `iocgis tokens` (cli.py).
Imported by the registry, so this package itself imports nothing."""
