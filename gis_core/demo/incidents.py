"""A year of incidents ending now: citizen reports, camera events, sensor alarms.

Generated column-wise with numpy so that scale 100 (a million rows) stays a matter of seconds:
the only per-row Python is string formatting. Volumes follow the seasons (landslides and floods in
the rainy season June-September, forest fires in the dry months January-April) and the hour of
day; deadlines follow the category; about 85 % are resolved on time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import shapely

from . import vocab
from .boundaries import Commune
from .geo import sample_points

LOCAL_OFFSET_S = 7 * 3600          # Asia/Ho_Chi_Minh, UTC+7, no daylight saving
SOURCES = ("citizen", "camera", "sensor")
SOURCE_P = np.array([0.68, 0.2, 0.12])
CITIZEN_BASE = {"traffic": 0.16, "environment": 0.12, "urban_order": 0.2, "landslide": 0.05, "flood": 0.04,
                "fire": 0.03, "infrastructure": 0.22, "security": 0.1, "other": 0.08}
SENSOR_BASE = {"flood": 0.4, "landslide": 0.35, "environment": 0.25}
CAMERA_CATEGORIES = {"traffic": (("traffic", 0.75), ("urban_order", 0.25)),
                     "security": (("security", 0.6), ("urban_order", 0.3), ("fire", 0.1)),
                     "flood": (("flood", 1.0),), "forest_fire": (("fire", 1.0),),
                     "border": (("security", 0.8), ("other", 0.2))}
CAMERA_WEIGHT = {"traffic": 3.0, "security": 2.0, "flood": 1.0, "forest_fire": 1.0, "border": 1.0}
# Reports by local hour: few at night, peaks mid-morning and late afternoon.
HOUR_W = np.array([1, 0.6, 0.4, 0.4, 0.6, 1.2, 2.5, 4, 5, 5.5, 5.5, 5, 4, 4, 4.5, 5, 5.5, 5.5, 5, 4, 3.5, 3,
                   2, 1.4])
# Overall volume by month (rainy season busier).
MONTH_W = np.array([0.8, 0.8, 0.85, 0.9, 1.0, 1.25, 1.4, 1.45, 1.3, 1.05, 0.9, 0.85])


def _season(category: str, month: int) -> float:
    if category in ("landslide", "flood"):
        return 4.0 if 6 <= month <= 9 else (2.0 if month in (5, 10) else 0.6)
    if category == "fire":
        return 3.0 if month <= 4 else (0.5 if 6 <= month <= 9 else 1.0)
    return 1.0


def _pick(rng: np.random.Generator, weights: dict[str, float], month: int, n: int) -> np.ndarray:
    names = list(weights)
    w = np.array([weights[c] * _season(c, month) for c in names])
    chosen = rng.choice(len(names), n, p=w / w.sum())
    return np.array([vocab.CATEGORIES.index(names[i]) for i in chosen.tolist()], dtype=np.int64)


def _places(rng: np.random.Generator, c: Commune, n: int) -> list[str]:
    if c.cls == "rural":
        idx = rng.integers(0, len(vocab.VILLAGES), n)
        return [f"thôn {vocab.VILLAGES[i]}, xã {c.name}" for i in idx.tolist()]
    idx = rng.integers(0, len(vocab.STREETS), n)
    return [f"đường {vocab.STREETS[i]}, {c.lower_kind} {c.name}" for i in idx.tolist()]


def generate_incidents(rng: np.random.Generator, communes: list[Commune], cameras: list[tuple], n: int,
                       now: dt.datetime, chunk: int = 0) -> list[tuple]:
    now_s = now.timestamp()
    source = rng.choice(3, n, p=SOURCE_P)

    # When: a day of the past year weighted by its month, an hour weighted by the daily rhythm.
    midnight_local = np.floor((now_s + LOCAL_OFFSET_S) / 86400.0) * 86400.0 - LOCAL_OFFSET_S
    days_back = np.arange(366)
    day_month = np.array([(dt.datetime.fromtimestamp(midnight_local - d * 86400.0 + LOCAL_OFFSET_S, dt.UTC)).month
                          for d in days_back.tolist()])
    day_w = MONTH_W[day_month - 1]
    day = rng.choice(366, n, p=day_w / day_w.sum())
    hour = rng.choice(24, n, p=HOUR_W / HOUR_W.sum())
    reported = midnight_local - day * 86400.0 + hour * 3600.0 + rng.uniform(0, 3600, n)
    reported = np.where(reported > now_s, reported - 86400.0, reported)   # today's hours not yet come
    reported = np.round(reported)
    month = day_month[day]

    category = np.empty(n, dtype=np.int64)
    commune_idx = np.empty(n, dtype=np.int64)
    camera_idx = np.full(n, -1, dtype=np.int64)
    lon = np.empty(n)
    lat = np.empty(n)
    for s, base in ((0, CITIZEN_BASE), (2, SENSOR_BASE)):
        for m in range(1, 13):
            sel = np.flatnonzero((source == s) & (month == m))
            category[sel] = _pick(rng, base, m, len(sel))
    # Citizens report where people are; sensors sit in the mountains and along rivers.
    w_cit = np.array([c.weight for c in communes])
    w_sen = np.array([1.0 + (1.5 if c.cls == "rural" else 0.0) for c in communes])
    for s, w in ((0, w_cit), (2, w_sen)):
        sel = np.flatnonzero(source == s)
        commune_idx[sel] = rng.choice(len(communes), len(sel), p=w / w.sum())

    # Camera events: at (or within a few tens of metres of) a camera, of a category it can see.
    cam_sel = np.flatnonzero(source == 1)
    cam_kind = [r[2] for r in cameras]
    cw = np.array([CAMERA_WEIGHT[k] for k in cam_kind])
    camera_idx[cam_sel] = rng.choice(len(cameras), len(cam_sel), p=cw / cw.sum())
    code_to_idx = {c.code: i for i, c in enumerate(communes)}
    cam_commune = np.array([code_to_idx[r[8]] for r in cameras])
    cam_lon = np.array([r[9] for r in cameras])
    cam_lat = np.array([r[10] for r in cameras])
    commune_idx[cam_sel] = cam_commune[camera_idx[cam_sel]]
    for kind, options in CAMERA_CATEGORIES.items():
        sel = cam_sel[np.isin(camera_idx[cam_sel], [i for i, k in enumerate(cam_kind) if k == kind])]
        p = np.array([o[1] for o in options])
        chosen = rng.choice(len(options), len(sel), p=p / p.sum())
        category[sel] = np.array([vocab.CATEGORIES.index(o[0]) for o in options])[chosen]
    jitter_lon = np.round(cam_lon[camera_idx[cam_sel]] + rng.normal(0, 0.0003, len(cam_sel)), 6)
    jitter_lat = np.round(cam_lat[camera_idx[cam_sel]] + rng.normal(0, 0.0003, len(cam_sel)), 6)

    # Where: per commune, a cloud around the centre plus a uniform share across the commune.
    for ci, c in enumerate(communes):
        sel = np.flatnonzero((commune_idx == ci) & (source != 1))
        if len(sel):
            near = rng.random(len(sel)) < (0.7 if c.cls != "rural" else 0.45)
            sigma = {"urban": 1500.0, "town": 1800.0, "rural": 3000.0}[c.cls]
            x1, y1 = sample_points(c.geom, int(near.sum()), rng, centre=(c.centre.x, c.centre.y), sigma_m=sigma)
            x2, y2 = sample_points(c.geom, int((~near).sum()), rng)
            lon[sel[near]], lat[sel[near]] = x1, y1
            lon[sel[~near]], lat[sel[~near]] = x2, y2
        own = np.flatnonzero(commune_idx[cam_sel] == ci)
        if len(own):
            inside = shapely.contains_xy(c.geom, jitter_lon[own], jitter_lat[own])
            near_camera = cam_sel[own]
            lon[near_camera] = np.where(inside, jitter_lon[own], cam_lon[camera_idx[near_camera]])
            lat[near_camera] = np.where(inside, jitter_lat[own], cam_lat[camera_idx[near_camera]])

    # Workflow: deadline by category; resolution time log-normal around half the deadline.
    sla = np.array([vocab.SLA_HOURS[c] * 3600.0 for c in vocab.CATEGORIES])[category]
    due = reported + sla
    duration = np.round(sla * np.exp(rng.normal(np.log(0.5), 0.7, n)))
    resolved = reported + duration
    age = now_s - reported
    status = np.full(n, "closed", dtype=object)
    done = resolved <= now_s
    status[done & ((now_s - resolved < 3 * 86400) | (rng.random(n) < 0.08))] = "resolved"
    # Still open: not resolved yet, plus a backlog that was never closed (heavier in the last weeks,
    # which is what an operator's queue looks like).
    backlog = rng.random(n) < np.where(age < 14 * 86400, 0.12, 0.008)
    open_ = ~done | backlog
    status[open_] = "in_progress"
    fresh = rng.random(n)
    status[open_ & (age < 2 * 86400) & (fresh < 0.55)] = "assigned"
    status[open_ & (age < 8 * 3600) & (fresh < 0.45)] = "new"
    rejected = (source == 0) & (rng.random(n) < 0.05)   # duplicates and reports out of scope
    status[rejected] = "rejected"
    has_resolved = np.isin(status, ["resolved", "closed"])

    # Who: citizens leave a name and a phone number, except the anonymous ones.
    classes = np.array([communes[i].cls for i in commune_idx.tolist()])
    names, _female = vocab.personal_names(rng, n, classes)
    phones = vocab.phone_numbers(rng, n)
    named = (source == 0) & (rng.random(n) < 0.85)

    # What: a sentence from the category's templates, at a street or village of the commune.
    places: list[str] = [""] * n
    for ci, c in enumerate(communes):
        sel = np.flatnonzero(commune_idx == ci)
        for k, place in zip(sel.tolist(), _places(rng, c, len(sel)), strict=True):
            places[k] = place
    template_draw = rng.random(n)

    # Ticket numbers run per year in order of reporting across all chunks: PostgreSQL numbers them.
    order = np.argsort(reported, kind="stable")
    # Per-row work on plain lists: indexing numpy arrays element by element is ten times slower.
    cats = vocab.CATEGORIES
    cam_codes = [r[0] for r in cameras]
    commune_codes = [c.code for c in communes]
    o = order.tolist()
    category_l, source_l, status_l = category[o].tolist(), source[o].tolist(), status[o].tolist()
    reported_l, due_l, resolved_l = reported[o].tolist(), due[o].tolist(), resolved[o].tolist()
    has_resolved_l, named_l = has_resolved[o].tolist(), named[o].tolist()
    commune_l, camera_l = commune_idx[o].tolist(), camera_idx[o].tolist()
    draw_l, lon_l, lat_l = template_draw[o].tolist(), lon[o].tolist(), lat[o].tolist()
    rows = []
    for r, k in enumerate(o):
        cat = cats[category_l[r]]
        src = SOURCES[source_l[r]]
        table = (vocab.CAMERA_DESCRIPTIONS if src == "camera" else
                 vocab.SENSOR_DESCRIPTIONS if src == "sensor" else vocab.DESCRIPTIONS)[cat]
        text = table[int(draw_l[r] * len(table))].format(p=places[k])
        rows.append((
            chunk, r + 1, cat, src, status_l[r], reported_l[r], due_l[r],
            resolved_l[r] if has_resolved_l[r] else None, commune_codes[commune_l[r]],
            cam_codes[camera_l[r]] if src == "camera" else None, text,
            names[k] if named_l[r] else None, phones[k] if named_l[r] else None, lon_l[r], lat_l[r],
        ))
    return rows
