"""One page of features (GeoJSON), measured in one run four ways on the same database:

  raw      the floor: PostGIS builds the page's GeoJSON itself, one query
  stock    pygeoapi's own PostgreSQL provider (SQLAlchemy + psycopg2), in process
  ours     our FastPostGISProvider (PostGIS builds the GeoJSON, pooled psycopg 3), in process
  http     the whole /ogc/collections/<layer>/items request through the Flask app

Prints the median per way and its ratio to the floor. The machine is shared and noisy: read the
medians and ratios, not single timings. Needs a database with the demo loaded:

    .venv/bin/python bench/ogc_items.py [--layer incidents] [--limit 100] [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from gis_core.db import database_url, sqlalchemy_url
from gis_core.ogc_provider import FastPostGISProvider
from gis_core.registry import Registry
from gis_core.settings import Settings

RAW_PAGE = sql.SQL(
    "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg("
    "json_build_object('type', 'Feature', 'id', t.{id}, 'geometry', ST_AsGeoJSON(t.{geom})::json,"
    " 'properties', to_jsonb(t) - {id_name} - {geom_name})), '[]'))::text"
    " FROM (SELECT {id}, {geom}, {fields} FROM {table} ORDER BY {id} LIMIT %s OFFSET %s) t")


def median_ms(fn: Callable[[int], object], rounds: int, pages: int) -> float:
    fn(0)  # warm caches and connections once
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        fn(i % pages)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="incidents")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pages", type=int, default=20, help="pages cycled through (offset = page * limit)")
    args = parser.parse_args()

    settings = Settings.from_env()
    url = database_url(settings)
    layer = Registry.load(settings.layers_dir)[args.layer]
    fields = [f.name for f in layer.public_fields if f.name != layer.id_field]
    provider_def = {"name": "PostgreSQL", "type": "feature", "data": None, "table": layer.table,
                    "id_field": layer.id_field, "geom_field": layer.geometry_column, "properties": fields}

    conn = psycopg.connect(url)
    raw_query = RAW_PAGE.format(
        id=sql.Identifier(layer.id_field), geom=sql.Identifier(layer.geometry_column),
        id_name=sql.Literal(layer.id_field), geom_name=sql.Literal(layer.geometry_column),
        fields=sql.SQL(", ").join(map(sql.Identifier, fields)), table=sql.Identifier(layer.table))
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(layer.table))).fetchone()[0]
    pages = max(1, min(args.pages, rows // args.limit))

    from pygeoapi.provider.sql import PostgreSQLProvider

    stock = PostgreSQLProvider({**provider_def, "data": sqlalchemy_url(url).replace("+psycopg", "+psycopg2")})
    ours = FastPostGISProvider({**provider_def, "data": url})

    from webmap import create_app

    client = create_app(settings).test_client()

    def http(page: int) -> object:
        response = client.get(f"/ogc/collections/{layer.id}/items?f=json&limit={args.limit}"
                              f"&offset={page * args.limit}")
        assert response.status_code == 200, response.status_code
        return response.data

    ways = {
        "raw": lambda page: conn.execute(raw_query, (args.limit, page * args.limit)).fetchone(),
        "stock": lambda page: stock.query(offset=page * args.limit, limit=args.limit),
        "ours": lambda page: ours.query(offset=page * args.limit, limit=args.limit),
        "http": http,
    }
    print(f"layer {layer.id} ({rows:,} rows), page of {args.limit}, {args.rounds} rounds, median ms")
    results = {name: median_ms(fn, args.rounds, pages) for name, fn in ways.items()}
    floor = results["raw"]
    for name, ms in results.items():
        print(f"  {name:<6} {ms:8.2f} ms   x{ms / floor:6.2f} of raw")
    print(f"  ours/stock: x{results['ours'] / results['stock']:.2f}")


if __name__ == "__main__":
    main()
