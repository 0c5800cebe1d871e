"""Alert rules held as data (`alert_rules`), evaluated into alerts shown until acknowledged.

A rule that finds affected communes fires one alert (its reason, in Vietnamese and English, and the
communes); later evaluations refresh that alert while it is unacknowledged. Once acknowledged, the
same situation (same rule, same communes: the fingerprint) does not fire again; a changed one does.
A rule that finds nothing leaves an unacknowledged alert in place: someone must have seen it.

The landslide rule reads the hazard raster's file (listed in `rasters`) with rasterio and counts,
per commune, the share of its cells at or above a hazard class.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import NotFound
from ..rows import one
from .errors import IllegalTransition, ValidationFailed
from .workflow import OPEN_STATUSES

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
NAMES_IN_REASON = 5


@dataclass(frozen=True)
class Finding:
    """What one rule found: affected communes, with a value each, and the reason in both languages."""

    communes: list[str]
    reason_vi: str
    reason_en: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(",".join(sorted(self.communes)).encode()).hexdigest()[:32]


class RuleUnavailable(Exception):
    """The rule's inputs are missing (no such indicator, no raster file): it cannot be evaluated."""


def _names(conn: psycopg.Connection, codes: list[str]) -> dict[str, str]:
    rows = conn.execute("SELECT code, name FROM admin_units WHERE code = ANY(%s)", (codes,)).fetchall()
    return dict(rows)


def _listing(conn: psycopg.Connection, values: dict[str, float], unit: str = "", digits: int = 1) -> tuple[str, str]:
    names = _names(conn, list(values))
    shown = [f"{names.get(c, c)} ({v:,.{digits}f}{unit})" for c, v in list(values.items())[:NAMES_IN_REASON]]
    more = len(values) - len(shown)
    return (", ".join(shown) + (f" và {more} xã, phường khác" if more > 0 else ""),
            ", ".join(shown) + (f" and {more} more communes" if more > 0 else ""))


# -- evaluators: (conn, rule) -> Finding | None ---------------------------------------------------

LATEST_VALUES = """
SELECT DISTINCT ON (v.unit_code) v.unit_code, v.period, v.value::float8 AS value
FROM indicator_values v JOIN admin_units u ON u.code = v.unit_code
WHERE v.indicator_code = %s AND u.level = 'commune' AND u.valid_to IS NULL
ORDER BY v.unit_code, v.period DESC
"""


def _indicator(conn: psycopg.Connection, code: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT code, name_vi, name_en, unit_vi, unit_en, higher_is_better, target::float8 AS target"
                    " FROM indicators WHERE code = %s", (code,))
        row = cur.fetchone()
    if row is None:
        raise RuleUnavailable(f"no indicator {code!r}")
    return row


def indicator_target(conn: psycopg.Connection, rule: dict[str, Any]) -> Finding | None:
    params = rule["params"]
    ind = _indicator(conn, str(params.get("indicator", "")))
    if ind["target"] is None:
        raise RuleUnavailable(f"indicator {ind['code']} has no target")
    margin = float(params.get("margin", 0))
    beyond: dict[str, float] = {}
    whens = []
    for code, when, value in conn.execute(LATEST_VALUES, (ind["code"],)).fetchall():
        worse = value < ind["target"] - margin if ind["higher_is_better"] else value > ind["target"] + margin
        if worse:
            beyond[code] = value
            whens.append(when)
    if not beyond:
        return None
    period = max(whens)
    beyond = dict(sorted(beyond.items(), key=lambda kv: kv[1], reverse=not ind["higher_is_better"]))
    vi, en = _listing(conn, beyond)
    side_vi, side_en = ("dưới", "below") if ind["higher_is_better"] else ("vượt", "above")
    return Finding(
        list(beyond),
        f"{ind['name_vi']} {side_vi} mục tiêu {ind['target']:g} {ind['unit_vi']} tại {len(beyond)} xã, phường"
        f" (kỳ {period:%m/%Y}): {vi}.",
        f"{ind['name_en']} {side_en} the target of {ind['target']:g} {ind['unit_en']} in {len(beyond)} communes"
        f" ({period:%Y-%m}): {en}.",
        {"indicator": ind["code"], "target": ind["target"], "period": period.isoformat(), "values": beyond})


OPEN_BY_COMMUNE = """
SELECT commune_code, count(*) FROM incidents WHERE status = ANY(%s)
GROUP BY 1 HAVING count(*) > %s ORDER BY 2 DESC, 1
"""


def open_incidents(conn: psycopg.Connection, rule: dict[str, Any]) -> Finding | None:
    limit = int(rule["params"].get("max_open", 25))
    rows = conn.execute(OPEN_BY_COMMUNE, (list(OPEN_STATUSES), limit)).fetchall()
    if not rows:
        return None
    counts = {code: float(n) for code, n in rows}
    vi, en = _listing(conn, counts, digits=0)
    return Finding(list(counts),
                   f"Hơn {limit} phản ánh chưa xử lý xong tại {len(counts)} xã, phường: {vi}.",
                   f"More than {limit} open incidents in {len(counts)} communes: {en}.",
                   {"max_open": limit, "open": {c: int(n) for c, n in counts.items()}})


def hazard_shares(conn: psycopg.Connection, raster: str, min_class: int) -> dict[str, float]:
    """Per commune, the share of its hazard-raster cells at class >= min_class."""
    import rasterio
    from rasterio.features import rasterize
    from shapely import wkb

    row = conn.execute("SELECT path, nodata FROM rasters WHERE name = %s AND kind = 'hazard'", (raster,)).fetchone()
    if row is None or not Path(row[0]).is_file():
        raise RuleUnavailable(f"hazard raster {raster!r} missing")
    communes = conn.execute("SELECT code, ST_AsBinary(geom) FROM admin_units WHERE level = 'commune'"
                            " AND valid_to IS NULL AND geom IS NOT NULL ORDER BY code").fetchall()
    if not communes:
        return {}
    with rasterio.open(row[0]) as src:
        data = src.read(1)
        labels = rasterize(((wkb.loads(bytes(g)), i + 1) for i, (_, g) in enumerate(communes)),
                           out_shape=data.shape, transform=src.transform, fill=0, dtype="int32")
        valid = data != src.nodata if src.nodata is not None else np.ones(data.shape, bool)
    total = np.bincount(labels[valid], minlength=len(communes) + 1)
    high = np.bincount(labels[valid & (data >= min_class)], minlength=len(communes) + 1)
    return {code: float(high[i + 1] / total[i + 1]) for i, (code, _) in enumerate(communes) if total[i + 1]}


def rainfall_hazard(conn: psycopg.Connection, rule: dict[str, Any]) -> Finding | None:
    params = rule["params"]
    ind = _indicator(conn, str(params.get("indicator", "rainfall")))
    min_mm = float(params.get("min_mm", 250))
    min_class = int(params.get("min_class", 3))
    min_share = float(params.get("min_share", 0.2))
    shares = hazard_shares(conn, str(params.get("raster", "laocai_landslide_hazard")), min_class)
    hit: dict[str, float] = {}
    whens = []
    for code, when, value in conn.execute(LATEST_VALUES, (ind["code"],)).fetchall():
        if value > min_mm and shares.get(code, 0.0) >= min_share:
            hit[code] = value
            whens.append(when)
    if not hit:
        return None
    period = max(whens)
    hit = dict(sorted(hit.items(), key=lambda kv: kv[1], reverse=True))
    vi, en = _listing(conn, hit, " mm")
    return Finding(
        list(hit),
        f"Mưa trên {min_mm:g} mm (kỳ {period:%m/%Y}) tại {len(hit)} xã, phường có từ {min_share:.0%} diện tích"
        f" nguy cơ sạt lở cấp {min_class} trở lên: {vi}.",
        f"Rain above {min_mm:g} mm ({period:%Y-%m}) in {len(hit)} communes with at least {min_share:.0%} of their"
        f" area at landslide hazard class {min_class} or higher: {en}.",
        {"min_mm": min_mm, "min_class": min_class, "min_share": min_share, "period": period.isoformat(),
         "rain_mm": hit, "hazard_share": {c: round(shares[c], 3) for c in hit}})


EVALUATORS: dict[str, Callable[[psycopg.Connection, dict[str, Any]], Finding | None]] = {
    "indicator_target": indicator_target,
    "open_incidents": open_incidents,
    "rainfall_hazard": rainfall_hazard,
}


# -- evaluation ----------------------------------------------------------------------------------

INSERT_ALERT = """
INSERT INTO alerts (rule_code, severity, reason_vi, reason_en, communes, details, fingerprint)
VALUES (%(rule)s, %(severity)s, %(reason_vi)s, %(reason_en)s, %(communes)s, %(details)s, %(fingerprint)s)
RETURNING id
"""

REFRESH_ALERT = """
UPDATE alerts SET last_seen_at = now(), severity = %(severity)s, reason_vi = %(reason_vi)s,
  reason_en = %(reason_en)s, communes = %(communes)s, details = %(details)s, fingerprint = %(fingerprint)s
WHERE id = %(id)s
"""


def evaluate_rule(conn: psycopg.Connection, rule: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one rule and record what it found; returns {rule, state, alert_id, communes}.
    state: fired (a new alert), refreshed (the shown alert updated), acknowledged (this situation was
    already acknowledged), clear (nothing found), unavailable (inputs missing)."""
    out: dict[str, Any] = {"rule": rule["code"], "alert_id": None, "communes": []}
    try:
        finding = EVALUATORS[rule["kind"]](conn, rule)
    except RuleUnavailable as exc:
        return {**out, "state": "unavailable", "why": str(exc)}
    if finding is None:
        return {**out, "state": "clear"}
    values = {"rule": rule["code"], "severity": rule["severity"], "reason_vi": finding.reason_vi,
              "reason_en": finding.reason_en, "communes": finding.communes,
              "details": Jsonb(json.loads(json.dumps(finding.details, default=str))),
              "fingerprint": finding.fingerprint}
    out["communes"] = finding.communes
    with conn.transaction():
        # One evaluator at a time per rule: the row lock orders concurrent `alerts evaluate` runs.
        conn.execute("SELECT 1 FROM alert_rules WHERE code = %s FOR UPDATE", (rule["code"],))
        active = conn.execute("SELECT id FROM alerts WHERE rule_code = %s AND acknowledged_at IS NULL",
                              (rule["code"],)).fetchone()
        if active is not None:
            conn.execute(REFRESH_ALERT, {**values, "id": active[0]})
            return {**out, "state": "refreshed", "alert_id": active[0]}
        seen = conn.execute("SELECT id FROM alerts WHERE rule_code = %s AND fingerprint = %s"
                            " ORDER BY id DESC LIMIT 1", (rule["code"], finding.fingerprint)).fetchone()
        if seen is not None:
            return {**out, "state": "acknowledged", "alert_id": seen[0]}
        alert_id = one(conn.execute(INSERT_ALERT, values))[0]
    return {**out, "state": "fired", "alert_id": alert_id}


def rules(conn: psycopg.Connection, enabled_only: bool = True) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT code, kind, name_vi, name_en, severity, params, enabled FROM alert_rules"
                    " WHERE enabled OR NOT %s ORDER BY code", (enabled_only,))
        return cur.fetchall()


def evaluate(conn: psycopg.Connection, only: str | None = None) -> list[dict[str, Any]]:
    found = [r for r in rules(conn) if only is None or r["code"] == only]
    if only is not None and not found:
        raise NotFound(f"Không có quy tắc cảnh báo {only!r} (hoặc đã tắt).", f"No enabled alert rule {only!r}.")
    results = [evaluate_rule(conn, rule) for rule in found]
    conn.commit()
    return results


ACTIVE = """
SELECT a.id, a.rule_code, r.name_vi, r.name_en, a.severity, a.fired_at, a.last_seen_at, a.reason_vi,
       a.reason_en, a.communes,
       (SELECT array_agg(u.name ORDER BY u.name) FROM admin_units u WHERE u.code = ANY(a.communes)) AS commune_names
FROM alerts a JOIN alert_rules r ON r.code = a.rule_code
WHERE a.acknowledged_at IS NULL
ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, a.fired_at DESC
"""

# The affected communes of each shown alert as one (simplified) feature, for the wall and the map.
ACTIVE_GEOJSON = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f ORDER BY f.id), '[]'))::text
FROM (
  SELECT a.id, 'Feature' AS type,
         ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Union(u.geom), 0.001), 5)::json AS geometry,
         json_build_object('id', a.id, 'rule', a.rule_code, 'severity', a.severity, 'reason_vi', a.reason_vi,
                           'reason_en', a.reason_en, 'fired_at', a.fired_at, 'communes', a.communes) AS properties
  FROM alerts a JOIN admin_units u ON u.code = ANY(a.communes)
  WHERE a.acknowledged_at IS NULL
  GROUP BY a.id
) f
"""


def active(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(ACTIVE)
        return cur.fetchall()


def active_geojson(conn: psycopg.Connection) -> str:
    return one(conn.execute(ACTIVE_GEOJSON))[0]


def acknowledge(conn: psycopg.Connection, alert_id: int, actor: str) -> dict[str, Any]:
    actor = (actor or "").strip()
    if not actor or len(actor) > 200:
        raise ValidationFailed({"actor": ("Cần ghi người xác nhận.", "Who acknowledges is required.")})
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("UPDATE alerts SET acknowledged_at = now(), acknowledged_by = %s"
                    " WHERE id = %s AND acknowledged_at IS NULL RETURNING id, rule_code, acknowledged_at",
                    (actor, alert_id))
        row = cur.fetchone()
        if row is None:
            cur.execute("SELECT acknowledged_at FROM alerts WHERE id = %s", (alert_id,))
            if cur.fetchone() is None:
                raise NotFound(f"Không có cảnh báo {alert_id}.", f"No alert {alert_id}.")
            raise IllegalTransition(f"Cảnh báo {alert_id} đã được xác nhận trước đó.",
                                    f"Alert {alert_id} was already acknowledged.")
    return row
