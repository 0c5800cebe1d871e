#!/usr/bin/env bash
# Installs what IOC-GIS needs and is missing: Debian packages, a Python >= 3.12 virtual
# environment with the project, and the web assets from npm. Safe to run again: each step is
# skipped when what it would install is already there and unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

# --- Debian packages --------------------------------------------------------------------------
# PostgreSQL 15 + PostGIS 3 (managed cluster), GDAL (ogrinfo/ogr2ogr in tests), QGIS's Python
# bindings (a test opens layers with QGIS), Chromium (page tests), fonts with Vietnamese glyphs,
# Node.js/npm (web assets), wrk (the load generator of `make bench`).
DEB_PACKAGES=(postgresql-15 postgresql-15-postgis-3 postgresql-client-15 gdal-bin python3-qgis chromium
              fonts-noto-core nodejs npm wrk)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  # npm may come from elsewhere (nodesource, nvm): only ask apt for it when there is none at all.
  if command -v npm >/dev/null && command -v node >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
  fi
  read -r -a missing <<< "${missing[*]}"
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "Debian packages to install: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "Run as root or install: apt-get install ${missing[*]}"
    SUDO=sudo
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Python >= 3.12 (pygeoapi >= 0.22 needs it) ------------------------------------------------
py_ok() { "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
PYTHON="${IOCGIS_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3 \
                   "$HOME"/.pyenv/versions/3.13*/bin/python "$HOME"/.pyenv/versions/3.12*/bin/python \
                   /root/.pyenv/versions/3.13*/bin/python /root/.pyenv/versions/3.12*/bin/python; do
    path=$(command -v "$candidate" 2>/dev/null || true)
    [ -n "$path" ] && py_ok "$path" && { PYTHON="$path"; break; }
  done
fi
[ -n "$PYTHON" ] || die "No Python >= 3.12 found (pygeoapi needs it). Install one, e.g.
    apt-get install python3.12-venv   (Debian 13 / Ubuntu 24.04), or
    pyenv install 3.12
then run this again, or set IOCGIS_PYTHON=/path/to/python3.12."

if [ ! -x .venv/bin/python ] || ! py_ok .venv/bin/python; then
  say "creating .venv with $PYTHON ($("$PYTHON" --version))"
  rm -rf .venv
  "$PYTHON" -m venv .venv
fi
stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat .venv/.iocgis-installed 2>/dev/null)" != "$stamp" ]; then
  say "installing the project and its Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,bench]'
  echo "$stamp" > .venv/.iocgis-installed
fi

# --- web assets from npm (served locally; no CDN at page load) --------------------------------
stamp=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat node_modules/.iocgis-installed 2>/dev/null)" != "$stamp" ]; then
  say "installing web assets from npm"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$stamp" > node_modules/.iocgis-installed
fi
say "ready"
