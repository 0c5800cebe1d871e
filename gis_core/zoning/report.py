"""Reports of stored checks: CSV (one row per permit, reasons joined) or GeoJSON (features built by
PostGIS, streamed row by row so a province-wide report never sits whole in memory)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import psycopg

REPORT = """
SELECT p.permit_no, p.address, p.commune_code, a.name AS commune, p.intended_use, p.floors, p.height_m,
       p.applied_on, p.status, c.verdict, c.decision_nos,
       (SELECT string_agg(z->>'zone_code' || ' ' || round((z->>'share')::numeric * 100, 1) || '%%', '; ')
        FROM jsonb_array_elements(c.zones) z) AS zones,
       (SELECT string_agg(r->>'message_vi', '; ') FROM jsonb_array_elements(c.reasons) r) AS reasons_vi,
       (SELECT string_agg(r->>'message_en', '; ') FROM jsonb_array_elements(c.reasons) r) AS reasons_en,
       c.reasons, c.checked_at, ST_AsGeoJSON(p.geom, 7)::json AS geometry
FROM building_permits p
JOIN permit_checks c ON c.permit_id = p.id
LEFT JOIN admin_units a ON a.code = p.commune_code
WHERE p.id = ANY (%s)
ORDER BY p.id
"""
CSV_COLUMNS = ("permit_no", "address", "commune_code", "commune", "intended_use", "floors", "height_m", "applied_on",
               "status", "verdict", "decision_nos", "zones", "reasons_vi", "reasons_en")


def write_report(conn: psycopg.Connection, ids: Sequence[int], path: Path) -> int:
    """Write the stored checks of `ids` to path (.csv or .geojson); returns rows written."""
    suffix = path.suffix.lower()
    n = 0
    with conn.cursor(name="zoning_report") as cur:
        cur.itersize = 2000
        cur.execute(REPORT, (list(ids),))
        names = [d.name for d in cur.description or ()]
        if suffix == ".csv":
            # utf-8-sig: spreadsheet programs on Windows then read the Vietnamese correctly
            with path.open("w", newline="", encoding="utf-8-sig") as f:
                writer = csv.writer(f)
                writer.writerow(CSV_COLUMNS)
                for row in cur:
                    rec = dict(zip(names, row, strict=True))
                    rec["decision_nos"] = "; ".join(rec["decision_nos"])
                    writer.writerow([rec[c] for c in CSV_COLUMNS])
                    n += 1
        else:
            with path.open("w", encoding="utf-8") as f:
                f.write('{"type": "FeatureCollection", "features": [\n')
                for row in cur:
                    rec = dict(zip(names, row, strict=True))
                    geometry = rec.pop("geometry")
                    props = {k: (v.isoformat() if hasattr(v, "isoformat") else
                                 float(v) if k == "height_m" else v) for k, v in rec.items()}
                    feature = {"type": "Feature", "geometry": geometry, "properties": props}
                    f.write(("" if n == 0 else ",\n") + json.dumps(feature, ensure_ascii=False))
                    n += 1
                f.write("\n]}\n")
    return n
