-- Who may do what (gis_core/auth): people who log in to the pages, API tokens for machine clients,
-- the web sessions of logged-in people, and failed logins (to throttle password guessing).
--
-- Roles are the application's (anonymous public, viewer, planner, operator, steward, admin); what
-- each may do is declared in gis_core/auth/rules.py and layers/*.yml, not here. Passwords are kept
-- only as a KDF hash (scrypt); tokens and session ids only as their SHA-256 (they are random
-- 256-bit values, so a fast hash is enough and lets a request find its row by index).

CREATE TABLE users (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
  full_name     text,
  role          text NOT NULL CHECK (role IN ('viewer', 'planner', 'operator', 'steward', 'admin')),
  password_hash text NOT NULL,
  disabled      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz
);

CREATE TABLE api_tokens (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
  role         text NOT NULL CHECK (role IN ('viewer', 'planner', 'operator', 'steward', 'admin')),
  token_hash   bytea NOT NULL UNIQUE,
  created_by   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz,
  last_used_at timestamptz
);

CREATE TABLE web_sessions (
  id_hash    bytea PRIMARY KEY,
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

CREATE TABLE login_failures (
  id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  name    text NOT NULL,
  address text NOT NULL
);
CREATE INDEX login_failures_name_idx ON login_failures (name, at);
CREATE INDEX login_failures_address_idx ON login_failures (address, at);

-- Changes to accounts and tokens are audited like layer rows; their secrets never reach the trail.
SELECT audit_enable('users', 'name', ARRAY['password_hash']);
SELECT audit_enable('api_tokens', 'name', ARRAY['token_hash']);

-- The web app reads and writes these (sessions, logins); the read role may not see them at all.
GRANT SELECT, INSERT, UPDATE, DELETE ON users, api_tokens, web_sessions, login_failures TO iocgis_owner;
