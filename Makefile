# Two commands: `make demo` (set up, start PostGIS, load Lào Cai, serve) and `make test`.
.PHONY: setup demo test bench load load-restart lint config db-up db-down clean

IOCGIS := .venv/bin/iocgis

setup:
	@scripts/setup.sh

demo: setup
	@$(IOCGIS) db up
	@$(IOCGIS) db migrate
	@$(IOCGIS) demo load
	@$(IOCGIS) serve

test: setup
	.venv/bin/ruff check gis_core webmap etl tests bench
	.venv/bin/mypy
	.venv/bin/python -m pytest $(PYTEST_ARGS)

# The OGC API under 8 concurrent clients, ours next to stock pygeoapi, on a scratch database of a
# million incidents (bench/ogc_load.py; about 10 minutes the first time, then --reuse).
bench: setup
	@$(IOCGIS) db up
	.venv/bin/python bench/ogc_load.py $(BENCH_ARGS)

# 64 clients, mixed reads and writes, 5 minutes, on a scratch cluster and server of its own (127.0.0.1).
load: setup
	.venv/bin/python bench/load_mixed.py $(LOAD_ARGS)

# The same with the database stopped 2 minutes in and started again 30 s later.
load-restart: setup
	.venv/bin/python bench/load_mixed.py --restart-at 120 --down 30 $(LOAD_ARGS)

lint: setup
	.venv/bin/ruff check gis_core webmap etl tests bench
	.venv/bin/mypy

config: setup
	@$(IOCGIS) layers config

db-up: setup
	@$(IOCGIS) db up

db-down:
	@$(IOCGIS) db down

clean: db-down
	rm -rf var test-artifacts
