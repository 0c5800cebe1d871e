"""Socio-economic indicators by commune: definitions, a choropleth for one period, a unit's series.

Every statement is a named template with its values as parameters. Classes come from mapclassify
(Fisher-Jenks natural breaks, or quantiles) and colours say whether a class is good or bad: the
same red-yellow-green ramp, turned around when lower is better (poverty, dengue, rainfall).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass

import mapclassify
import numpy as np
import psycopg

from .errors import InvalidParameter, NotFound

METHODS = ("natural_breaks", "quantiles")
MIN_CLASSES, MAX_CLASSES = 3, 7
# ColorBrewer RdYlGn, bad -> good; index by the number of classes.
RDYLGN: dict[int, tuple[str, ...]] = {
    3: ("#fc8d59", "#ffffbf", "#91cf60"),
    4: ("#d7191c", "#fdae61", "#a6d96a", "#1a9641"),
    5: ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641"),
    6: ("#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850"),
    7: ("#d73027", "#fc8d59", "#fee08b", "#ffffbf", "#d9ef8b", "#91cf60", "#1a9850"),
}
NO_DATA_COLOR = "#bdbdbd"
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")

DEFINITIONS_SQL = """
SELECT i.code, i.name_vi, i.name_en, i.unit_vi, i.unit_en, i.higher_is_better, i.theme,
       i.description_vi, i.description_en, i.target::float8,
       coalesce(array_agg(DISTINCT v.period ORDER BY v.period) FILTER (WHERE v.period IS NOT NULL), '{}')
FROM indicators i LEFT JOIN indicator_values v ON v.indicator_code = i.code
GROUP BY i.code ORDER BY i.code
"""

# This period's value and the previous period's (the latest earlier month, usually the one before)
# for every current commune, plus the province.
VALUES_SQL = """
SELECT u.code, u.level, u.name, v.value::float8, p.value::float8
FROM admin_units u
LEFT JOIN indicator_values v ON v.unit_code = u.code AND v.indicator_code = %(code)s AND v.period = %(period)s
LEFT JOIN indicator_values p ON p.unit_code = u.code AND p.indicator_code = %(code)s AND p.period = %(previous)s
WHERE u.valid_to IS NULL AND u.level IN ('commune', 'province')
ORDER BY u.code
"""

SERIES_SQL = """
SELECT v.period, v.value::float8, pv.value::float8
FROM indicator_values v
LEFT JOIN admin_units u ON u.code = v.unit_code
LEFT JOIN indicator_values pv ON pv.indicator_code = v.indicator_code AND pv.period = v.period
     AND pv.unit_code = (SELECT code FROM admin_units WHERE level = 'province' AND valid_to IS NULL LIMIT 1)
WHERE v.indicator_code = %(code)s AND v.unit_code = %(unit)s
ORDER BY v.period
"""

UNIT_SQL = "SELECT code, level, name, full_name FROM admin_units WHERE code = %(unit)s AND valid_to IS NULL"

# Latest value and the one before of every indicator in one unit (the drill-down panel).
LATEST_FOR_UNIT_SQL = """
SELECT i.code, cur.period, cur.value::float8, prev.value::float8
FROM indicators i
JOIN LATERAL (SELECT period, value FROM indicator_values
              WHERE indicator_code = i.code AND unit_code = %(unit)s ORDER BY period DESC LIMIT 1) cur ON true
LEFT JOIN LATERAL (SELECT value FROM indicator_values
                   WHERE indicator_code = i.code AND unit_code = %(unit)s AND period < cur.period
                   ORDER BY period DESC LIMIT 1) prev ON true
ORDER BY i.code
"""

# Indicators with a target, their latest province value, and how many communes miss the target.
OFF_TARGET_SQL = """
WITH latest AS (
  SELECT indicator_code, max(period) AS period FROM indicator_values GROUP BY indicator_code
)
SELECT i.code, i.name_vi, i.name_en, i.higher_is_better, i.target::float8, l.period,
       max(v.value::float8) FILTER (WHERE u.level = 'province'),
       count(*) FILTER (WHERE u.level = 'commune' AND CASE WHEN i.higher_is_better
                          THEN v.value < i.target ELSE v.value > i.target END),
       count(*) FILTER (WHERE u.level = 'commune')
FROM indicators i
JOIN latest l ON l.indicator_code = i.code
JOIN indicator_values v ON v.indicator_code = i.code AND v.period = l.period
JOIN admin_units u ON u.code = v.unit_code AND u.valid_to IS NULL
WHERE i.target IS NOT NULL
GROUP BY i.code, l.period
ORDER BY i.code
"""


@dataclass(frozen=True)
class Indicator:
    code: str
    name_vi: str
    name_en: str
    unit_vi: str
    unit_en: str
    higher_is_better: bool
    theme: str
    description_vi: str | None
    description_en: str | None
    target: float | None
    periods: tuple[dt.date, ...]

    def to_dict(self) -> dict:
        return {
            "code": self.code, "name": {"vi": self.name_vi, "en": self.name_en},
            "unit": {"vi": self.unit_vi, "en": self.unit_en}, "higher_is_better": self.higher_is_better,
            "theme": self.theme, "description": {"vi": self.description_vi, "en": self.description_en},
            "target": self.target, "periods": [period_text(p) for p in self.periods],
        }


def period_text(period: dt.date) -> str:
    return f"{period.year:04d}-{period.month:02d}"


def parse_period(text: str) -> dt.date:
    match = _PERIOD.match(text or "")
    if not match or not 1 <= int(match[2]) <= 12:
        raise InvalidParameter(f"Kỳ số liệu phải có dạng YYYY-MM, không phải {text!r}.",
                               f"period must look like YYYY-MM, not {text!r}.")
    return dt.date(int(match[1]), int(match[2]), 1)


def definitions(conn: psycopg.Connection) -> list[Indicator]:
    rows = conn.execute(DEFINITIONS_SQL).fetchall()
    return [Indicator(code, name_vi, name_en, unit_vi, unit_en, higher, theme, about_vi, about_en, target,
                      tuple(periods))
            for code, name_vi, name_en, unit_vi, unit_en, higher, theme, about_vi, about_en, target, periods in rows]


def definition(conn: psycopg.Connection, code: str) -> Indicator:
    for indicator in definitions(conn):
        if indicator.code == code:
            return indicator
    raise NotFound(f"Không có chỉ số {code!r}.", f"No indicator {code!r}.")


def palette(n: int, higher_is_better: bool) -> list[str]:
    """n colours from the lowest class to the highest: red means bad, green good."""
    ramp = list(RDYLGN[max(MIN_CLASSES, min(MAX_CLASSES, n))])
    if n < MIN_CLASSES:  # one or two classes (nearly constant data): the ends of the ramp
        ramp = [ramp[0], ramp[-1]][-n:] if n else []
    return ramp if higher_is_better else ramp[::-1]


def classify(values: np.ndarray, method: str, k: int) -> list[float]:
    """Upper bounds of the classes (the last one is the maximum). Fewer than k when the data
    has fewer distinct values; mapclassify's warnings about that are expected, not errors."""
    if method not in METHODS:
        raise InvalidParameter(f"Phương pháp phân lớp phải là một trong {METHODS}.",
                               f"method must be one of {METHODS}.")
    if not MIN_CLASSES <= k <= MAX_CLASSES:
        raise InvalidParameter(f"Số lớp phải từ {MIN_CLASSES} đến {MAX_CLASSES}.",
                               f"k must be between {MIN_CLASSES} and {MAX_CLASSES}.")
    distinct = np.unique(values)
    if len(distinct) == 0:
        return []
    if len(distinct) <= k:
        return [float(v) for v in distinct]
    with warnings.catch_warnings():
        # mapclassify's pure-Python Fisher-Jenks is fast enough for a hundred communes.
        warnings.filterwarnings("ignore", message="Numba not installed")
        warnings.filterwarnings("ignore", message="Not enough unique values")
        if method == "natural_breaks":
            scheme = mapclassify.FisherJenks(values, k=k)
        else:
            scheme = mapclassify.Quantiles(values, k=k)
    return [float(b) for b in np.unique(scheme.bins)]


def _change(value: float | None, previous: float | None) -> float | None:
    if value is None or previous is None:
        return None
    return round(value - previous, 4)


def _off_target(indicator: Indicator, value: float | None) -> bool | None:
    if value is None or indicator.target is None:
        return None
    return value < indicator.target if indicator.higher_is_better else value > indicator.target


def choropleth(conn: psycopg.Connection, code: str, period: dt.date | None = None,
               method: str = "natural_breaks", k: int = 5) -> dict:
    """Every commune's value for one period, its change from the period before, its class and
    colour; the classes for the legend; the province's own value."""
    indicator = definition(conn, code)
    if not indicator.periods:
        raise NotFound(f"Chỉ số {code!r} chưa có số liệu.", f"Indicator {code!r} has no values yet.")
    period = period or indicator.periods[-1]
    if period not in indicator.periods:
        raise NotFound(f"Chỉ số {code!r} không có số liệu kỳ {period_text(period)}.",
                       f"Indicator {code!r} has no values for {period_text(period)}.")
    index = indicator.periods.index(period)
    previous = indicator.periods[index - 1] if index else None
    rows = conn.execute(VALUES_SQL, {"code": code, "period": period, "previous": previous}).fetchall()
    communes = [r for r in rows if r[1] == "commune"]
    values = np.array([r[3] for r in communes if r[3] is not None], dtype=float)
    bounds = classify(values, method, k)
    colors = palette(len(bounds), indicator.higher_is_better)
    counts = (np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds)) if bounds
              else np.zeros(0, dtype=int))
    units: dict[str, dict] = {}
    for unit_code, _level, name, value, prev in communes:
        cls = int(np.searchsorted(bounds, value, side="left")) if value is not None and bounds else None
        units[unit_code] = {
            "name": name, "value": value, "previous": prev, "change": _change(value, prev), "class": cls,
            "color": colors[cls] if cls is not None else NO_DATA_COLOR,
            "off_target": _off_target(indicator, value),
        }
    province = next((r for r in rows if r[1] == "province"), None)
    lows = [float(values.min()) if len(values) else None, *bounds[:-1]]
    return {
        "indicator": indicator.to_dict(),
        "period": period_text(period),
        "previous_period": period_text(previous) if previous else None,
        "method": method,
        "classes": [{"min": lo, "max": hi, "color": c, "count": int(n)}
                    for lo, hi, c, n in zip(lows, bounds, colors, counts, strict=True)],
        "no_data_color": NO_DATA_COLOR,
        "units": units,
        "province": None if province is None else {
            "code": province[0], "name": province[2], "value": province[3], "previous": province[4],
            "change": _change(province[3], province[4]), "off_target": _off_target(indicator, province[3])},
    }


def series(conn: psycopg.Connection, code: str, unit: str) -> dict:
    """One unit's monthly values of one indicator, with the province's beside them."""
    indicator = definition(conn, code)
    found = conn.execute(UNIT_SQL, {"unit": unit}).fetchone()
    if found is None:
        raise NotFound(f"Không có đơn vị hành chính {unit!r}.", f"No administrative unit {unit!r}.")
    rows = conn.execute(SERIES_SQL, {"code": code, "unit": unit}).fetchall()
    return {
        "indicator": indicator.to_dict(),
        "unit": {"code": found[0], "level": found[1], "name": found[2], "full_name": found[3]},
        "periods": [period_text(r[0]) for r in rows],
        "values": [r[1] for r in rows],
        "province": [r[2] for r in rows],
    }


def latest_for_unit(conn: psycopg.Connection, unit: str) -> list[dict]:
    """Every indicator's latest value in one unit, its change, and whether it misses the target."""
    by_code = {i.code: i for i in definitions(conn)}
    out = []
    for code, period, value, prev in conn.execute(LATEST_FOR_UNIT_SQL, {"unit": unit}).fetchall():
        indicator = by_code[code]
        out.append({"code": code, "name": {"vi": indicator.name_vi, "en": indicator.name_en},
                    "unit": {"vi": indicator.unit_vi, "en": indicator.unit_en},
                    "higher_is_better": indicator.higher_is_better, "target": indicator.target,
                    "period": period_text(period), "value": value, "change": _change(value, prev),
                    "off_target": _off_target(indicator, value)})
    return out


def off_target(conn: psycopg.Connection) -> list[dict]:
    """Indicators that have a target: the province's latest value against it, and how many
    communes miss it."""
    out = []
    for code, name_vi, name_en, better_up, target, period, value, missed, total in conn.execute(
            OFF_TARGET_SQL).fetchall():
        off = None if value is None else (value < target if better_up else value > target)
        out.append({"code": code, "name": {"vi": name_vi, "en": name_en}, "target": target,
                    "period": period_text(period), "province_value": value, "province_off_target": off,
                    "communes_off_target": missed, "communes": total})
    return out
