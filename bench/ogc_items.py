"""Single-request latency of OGC API Features items pages, measured in one run on one database:

  page1    the first page (Q1 of the issue)
  offset   the page at offset 500,000, or the middle of a smaller layer (Q4)
  cursor   the page after it, through the `next` link's cursor (keyset)
  bbox     a bbox of about 2,000 points at scale 100, in one page (Q2)

and, for each, four ways:

  raw      the floor: PostGIS builds the page's GeoJSON itself, one query (OFFSET as asked)
  stock    pygeoapi's own PostgreSQL provider (SQLAlchemy + psycopg2), in process
  ours     our FastPostGISProvider, in process
  http     the whole /ogc/collections/<layer>/items request through the Flask app

Prints the median of each and the ratio stock/ours. The concurrent req/s benchmark is another
script; this one says where a single request spends its time. The machine is shared and noisy:
read medians and ratios, not single timings. Needs a database with the demo loaded (scale 100 for
the issue's figures: `iocgis demo load --scale 100`):

    .venv/bin/python bench/ogc_items.py [--layer incidents] [--limit 100] [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.parse
from collections.abc import Callable

import psycopg
from psycopg import sql

from gis_core import ogc_config, paging
from gis_core.db import database_url, sqlalchemy_url
from gis_core.ogc_provider import FastPostGISProvider
from gis_core.registry import Registry
from gis_core.settings import Settings

RAW_PAGE = sql.SQL(
    "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg("
    "json_build_object('type', 'Feature', 'id', t.{id}, 'geometry', ST_AsGeoJSON(t.{geom})::json,"
    " 'properties', to_jsonb(t) - {id_name} - {geom_name})), '[]'))::text"
    " FROM (SELECT {id}, {geom}, {fields} FROM {table} WHERE {where} ORDER BY {id} LIMIT %(limit)s"
    " OFFSET %(offset)s) t")
BBOX = [104.48, 21.98, 104.54, 22.04]   # about 1,800 incidents at scale 100
DEEP = 500_000


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm caches and connections once
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="incidents")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    settings = Settings.from_env()
    url = database_url(settings)
    layer = Registry.load(settings.layers_dir)[args.layer]
    fields = [f.name for f in layer.public_fields if f.name != layer.id_field]
    conn = psycopg.connect(url, autocommit=True)
    table = sql.Identifier(layer.table)
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]
    deep = min(DEEP, rows // 2)
    ident = sql.Identifier(layer.id_field)
    after = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY {} OFFSET %s LIMIT 1").format(ident, table, ident),
                         (deep + args.limit - 1,)).fetchone()[0]

    def raw_query(where: sql.Composable) -> sql.Composed:
        return RAW_PAGE.format(
            id=ident, geom=sql.Identifier(layer.geometry_column), id_name=sql.Literal(layer.id_field),
            geom_name=sql.Literal(layer.geometry_column), fields=sql.SQL(", ").join(map(sql.Identifier, fields)),
            table=table, where=where)

    envelope = sql.SQL("{} && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)").format(
        sql.Identifier(layer.geometry_column))
    box = dict(zip(("x0", "y0", "x1", "y1"), BBOX, strict=True))
    # name: (raw SQL and its parameters, provider.query keywords, items query string)
    queries = {
        "page1": (raw_query(sql.SQL("TRUE")), {"limit": args.limit, "offset": 0},
                  {"limit": args.limit}, f"limit={args.limit}"),
        "offset": (raw_query(sql.SQL("TRUE")), {"limit": args.limit, "offset": deep},
                   {"limit": args.limit, "offset": deep}, f"limit={args.limit}&offset={deep}"),
        "cursor": (raw_query(sql.SQL("{} > %(after)s").format(ident)),
                   {"limit": args.limit, "offset": 0, "after": after},
                   {"limit": args.limit, "offset": deep + args.limit}, None),
        "bbox": (raw_query(envelope), {"limit": 2000, "offset": 0, **box},
                 {"limit": 2000, "bbox": BBOX}, "limit=2000&bbox=" + ",".join(map(str, BBOX))),
    }

    from pygeoapi.provider.sql import PostgreSQLProvider

    stock_def = {"name": "PostgreSQL", "type": "feature", "table": layer.table, "id_field": layer.id_field,
                 "geom_field": layer.geometry_column, "properties": fields,
                 "data": sqlalchemy_url(url).replace("+psycopg", "+psycopg2")}
    stock = PostgreSQLProvider(stock_def)
    ours_def = ogc_config.build(Registry.load(settings.layers_dir))["resources"][layer.id]["providers"][0]
    ours = FastPostGISProvider({**ours_def, "data": url})

    from webmap import create_app

    client = create_app(settings).test_client()
    items = f"/ogc/collections/{layer.id}/items"

    def get(query: str) -> bytes:
        response = client.get(f"{items}?f=json&{query}")
        assert response.status_code == 200, (response.status_code, response.data[:300])
        return response.data

    # The cursor page is the one the offset page's `next` link names.
    next_link = next(x for x in client.get(f"{items}?f=json&{queries['offset'][3]}").get_json()["links"]
                     if x["rel"] == "next")["href"]
    cursor_query = urllib.parse.urlsplit(next_link).query
    queries["cursor"] = (*queries["cursor"][:3], cursor_query)
    cursor_args = urllib.parse.parse_qsl(cursor_query)

    def ours_query(name: str, kwargs: dict) -> object:
        if name != "cursor":
            return ours.query(**kwargs)
        with paging.items_request("http://127.0.0.1/bench", cursor_args):
            return ours.query(limit=args.limit)

    print(f"layer {layer.id} ({rows:,} rows), page of {args.limit} (bbox: one page of up to 2,000), "
          f"{args.rounds} rounds, median ms")
    print(f"  {'query':<8}{'raw':>9}{'stock':>10}{'ours':>9}{'http':>9}{'stock/ours':>12}{'stock/http':>12}")
    for name, (raw, raw_params, kwargs, query) in queries.items():
        results = {
            "raw": median_ms(lambda raw=raw, p=raw_params: conn.execute(raw, p).fetchone(), args.rounds),
            "stock": median_ms(lambda kw=kwargs: stock.query(**kw), args.rounds),
            "ours": median_ms(lambda n=name, kw=kwargs: ours_query(n, kw), args.rounds),
            "http": median_ms(lambda q=query: get(q), args.rounds),
        }
        print(f"  {name:<8}" + "".join(f"{results[w]:9.2f}" for w in ("raw",)) + f"{results['stock']:10.2f}"
              + f"{results['ours']:9.2f}{results['http']:9.2f}"
              + f"{results['stock'] / results['ours']:11.1f}x{results['stock'] / results['http']:11.1f}x")
    print("  (stock has no cursor: its 'cursor' row is the same page by offset)")


if __name__ == "__main__":
    main()
