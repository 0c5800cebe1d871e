"""Land-use zones of invented but plausible plans, and building permits placed in them.

Zones: around each commune's centre, a ring of Voronoi blocks (dense in the wards, a few in the
mountain communes) clipped to the commune and to what neighbouring communes already zoned, typed
by distance from the centre (commerce and public uses inside, housing around, then industry,
farmland and forest), with the limits of Vietnamese planning practice (QCVN 01:2021 ranges).

Permits: footprints of 60-600 m² placed inside a zone, respecting its setback, with uses, floors,
heights and parcel coverage inside the zone's limits -- except for a deliberate ~12 % that break
one rule (too tall, too many floors, a use the zone does not allow, coverage above the limit, or a
footprint straddling two zones) so that the zoning check has something to find.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point

from ..text import nfc, unaccent
from . import vocab
from .boundaries import Commune
from .geo import Metric, polygonal, rectangles, sample_points

# zone type -> limits (low, high) drawn per zone, allowed and conditional uses.
ZONE_RULES: dict[str, dict] = {
    "residential": dict(height=(15, 25), floors=(4, 7), coverage=(60, 80), setback=(0, 3),
                        allowed=("residential",), conditional=("commercial", "office")),
    "commercial": dict(height=(24, 45), floors=(6, 12), coverage=(50, 70), setback=(3, 6),
                       allowed=("commercial", "office", "hotel"), conditional=("residential",)),
    "mixed": dict(height=(20, 40), floors=(5, 10), coverage=(50, 70), setback=(2, 5),
                  allowed=("residential", "commercial", "office", "hotel"), conditional=()),
    "public": dict(height=(12, 20), floors=(3, 5), coverage=(30, 45), setback=(6, 10),
                   allowed=("school", "clinic", "office", "public"), conditional=("commercial",)),
    "industrial": dict(height=(12, 24), floors=(1, 4), coverage=(50, 70), setback=(6, 10),
                       allowed=("industry", "warehouse"), conditional=("office",)),
    "green": dict(height=(4, 8), floors=(1, 2), coverage=(2, 10), setback=(5, 10),
                  allowed=("park",), conditional=("commercial",)),
    "agriculture": dict(height=(6, 9), floors=(1, 2), coverage=(5, 15), setback=(3, 6),
                        allowed=("agriculture",), conditional=("residential", "warehouse")),
    "forest": dict(height=(4, 6), floors=(1, 1), coverage=(1, 3), setback=(10, 20),
                   allowed=("forestry",), conditional=()),
    "heritage": dict(height=(6, 10), floors=(1, 2), coverage=(20, 35), setback=(5, 10),
                     allowed=("religious", "public"), conditional=("commercial",)),
    # Water and transport land carries no building limits: nothing is to be built there.
    "water": dict(height=None, floors=None, coverage=None, setback=None, allowed=(), conditional=()),
    "transport": dict(height=None, floors=None, coverage=None, setback=None,
                      allowed=("transport",), conditional=()),
}
# Where zones of each type fall, by commune class and ring (inner, middle, outer): (type, weight).
RINGS = {
    "urban": (
        (("commercial", 3), ("mixed", 3.5), ("public", 2), ("green", 1), ("heritage", 0.5)),
        (("residential", 6.5), ("mixed", 1), ("public", 1), ("green", 1), ("commercial", 0.5),
         ("transport", 0.3)),
        (("residential", 3.5), ("industrial", 1.5), ("green", 1.5), ("agriculture", 2), ("forest", 1),
         ("water", 0.5)),
    ),
    "town": (
        (("mixed", 3.5), ("public", 3), ("commercial", 2), ("residential", 1.5)),
        (("residential", 6), ("public", 1), ("green", 1), ("industrial", 0.5)),
        (("residential", 3), ("agriculture", 3), ("forest", 1.5), ("green", 1), ("industrial", 0.5)),
    ),
}
RURAL_SEQUENCE = ("residential", "public", "agriculture", "forest")
BUILDABLE = ("residential", "mixed", "commercial", "public", "industrial", "agriculture")
BUILD_WEIGHT = {"residential": 1.0, "mixed": 0.8, "commercial": 0.5, "public": 0.25, "industrial": 0.3,
                "agriculture": 0.12}
CLASS_WEIGHT = {"urban": 1.0, "town": 0.5, "rural": 0.25}
SPACING_M = {"urban": 380.0, "town": 350.0, "rural": 420.0}

# Permit roles: compliant, then the ways of breaking the zone's rules.
ROLES = ("ok", "too_tall", "too_many_floors", "use_not_allowed", "coverage", "two_zones")
ROLE_P = (0.875, 0.035, 0.025, 0.03, 0.01, 0.025)
STATUS = ("approved", "submitted", "rejected", "revoked", "expired")
STATUS_P_OK = (0.74, 0.08, 0.04, 0.02, 0.12)
STATUS_P_BAD = (0.35, 0.2, 0.35, 0.08, 0.02)   # some breakers were approved anyway: what audits find
USE_AREA_M2 = {"residential": (60, 200), "commercial": (150, 600), "office": (150, 600), "hotel": (200, 600),
               "school": (300, 600), "clinic": (200, 600), "public": (200, 600), "industry": (300, 600),
               "warehouse": (250, 600), "agriculture": (60, 250), "park": (60, 150), "forestry": (60, 120),
               "religious": (80, 300), "transport": (100, 400)}


@dataclass
class Zone:
    commune: Commune
    plan: int
    zone_code: str
    zone_type: str
    allowed: tuple[str, ...]
    conditional: tuple[str, ...]
    max_height_m: float | None
    max_floors: int | None
    max_coverage_pct: float | None
    min_setback_m: float | None
    geom: MultiPolygon          # EPSG:4326, inside the commune
    geom_m: MultiPolygon        # the same in metres


@dataclass
class Plan:
    name: str
    decision_no: str
    decision_date: dt.date


def _limits(rng: np.random.Generator, zone_type: str) -> tuple:
    r = ZONE_RULES[zone_type]
    if r["height"] is None:
        return None, None, None, None
    floors = int(rng.integers(r["floors"][0], r["floors"][1] + 1))
    # A height limit lower than the floors allow would make the floor limit meaningless.
    height = max(round(float(rng.uniform(*r["height"])) * 2) / 2, floors * 3.4 + 1.0)
    coverage = float(rng.integers(r["coverage"][0], r["coverage"][1] + 1))
    setback = round(float(rng.uniform(*r["setback"])) * 2) / 2
    return round(height, 1), floors, coverage, setback


def _seeds(rng: np.random.Generator, n: int, spacing: float) -> np.ndarray:
    """n block seeds around (0, 0): the n nearest nodes of a jittered hexagonal grid."""
    k = int(np.ceil(np.sqrt(n))) + 3
    ii, jj = np.meshgrid(np.arange(-k, k + 1), np.arange(-k, k + 1))
    x = (ii + 0.5 * (jj % 2)) * spacing
    y = jj * spacing * np.sqrt(3) / 2
    pts = np.column_stack([x.ravel(), y.ravel()])
    order = np.lexsort((pts[:, 1], pts[:, 0], np.hypot(pts[:, 0], pts[:, 1])))
    pts = pts[order[:n]]
    return pts + rng.uniform(-0.25, 0.25, pts.shape) * spacing


def _zone_type(rng: np.random.Generator, cls: str, rank: int, n: int) -> str:
    if cls == "rural":
        return RURAL_SEQUENCE[min(rank, len(RURAL_SEQUENCE) - 1)]
    ring = 0 if rank < 0.25 * n else (1 if rank < 0.7 * n else 2)
    options = RINGS[cls][ring]
    w = np.array([o[1] for o in options], dtype=float)
    return options[int(rng.choice(len(options), p=w / w.sum()))][0]


def _plan_name(c: Commune) -> str:
    if c.cls == "urban":
        return nfc(f"Quy hoạch phân khu tỷ lệ 1/2000 phường {c.name}")
    if c.cls == "town":
        return nfc(f"Quy hoạch chung đô thị {c.name} đến năm 2040")
    return nfc(f"Quy hoạch chung xây dựng xã {c.name} giai đoạn 2021-2030")


def generate_zones(rng: np.random.Generator, communes: list[Commune],
                   metric: Metric) -> tuple[list[Plan], list[Zone]]:
    numbers = rng.choice(np.arange(100, 4000), len(communes), replace=False)
    plans: list[Plan] = []
    zones: list[Zone] = []
    for ci, c in enumerate(communes):
        n = {"urban": int(round(24 + 8 * (c.weight / 6.0))), "town": 12, "rural": 3}[c.cls]
        spacing = SPACING_M[c.cls]
        # What neighbours zoned already is not ours: communes overlap a little along borders.
        taken = [z.geom for z in zones if z.geom.intersects(c.geom)]
        available = c.geom.difference(shapely.union_all(taken)) if taken else c.geom
        cx, cy = metric.xy_to_m(np.array([c.centre.x]), np.array([c.centre.y]))
        seeds = _seeds(rng, n, spacing) + np.array([cx[0], cy[0]])
        radius = float(np.max(np.hypot(seeds[:, 0] - cx[0], seeds[:, 1] - cy[0]))) + 0.6 * spacing
        disc = Point(cx[0], cy[0]).buffer(radius, quad_segs=16)
        cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=disc,
                                                           ordered=True))
        decision_date = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 6 * 365)))
        plans.append(Plan(_plan_name(c), f"{numbers[ci]}/QĐ-UBND", decision_date))
        counters: dict[str, int] = {}
        for rank, cell in enumerate(cells):
            zone_type = _zone_type(rng, c.cls, rank, n)
            limits = _limits(rng, zone_type)
            block = metric.to_deg(cell.intersection(disc))
            geom = polygonal(block.intersection(available), min_area=2.5e-7)   # about 3,000 m²
            if geom is None:
                continue
            counters[zone_type] = counters.get(zone_type, 0) + 1
            rules = ZONE_RULES[zone_type]
            zones.append(Zone(
                commune=c, plan=len(plans) - 1,
                zone_code=f"{vocab.ZONE_PREFIX[zone_type]}-{counters[zone_type]:02d}",
                zone_type=zone_type, allowed=rules["allowed"], conditional=rules["conditional"],
                max_height_m=limits[0], max_floors=limits[1], max_coverage_pct=limits[2],
                min_setback_m=limits[3], geom=geom, geom_m=metric.to_m(geom),
            ))
    return plans, zones


def zone_rows(plans: list[Plan], zones: list[Zone]) -> list[tuple]:
    rows = []
    for i, z in enumerate(zones):
        p = plans[z.plan]
        rows.append((i, p.name, p.decision_no, p.decision_date, z.zone_code, z.zone_type, list(z.allowed),
                     list(z.conditional), z.max_height_m, z.max_floors, z.max_coverage_pct, z.min_setback_m,
                     z.commune.code, p.decision_date, shapely.to_wkb(z.geom, hex=True)))
    return rows


# -- permits -------------------------------------------------------------------------------------


def _pairs(zones: list[Zone], candidates: list[int]) -> list[tuple[int, int, object]]:
    """Adjacent buildable zones of one commune and the line they share (at least 60 m)."""
    geoms = np.array([zones[i].geom_m for i in candidates])
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = []
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        za, zb = zones[candidates[a]], zones[candidates[b]]
        if a >= b or za.commune.code != zb.commune.code:
            continue
        shared = shapely.line_merge(shapely.intersection(za.geom_m.boundary, zb.geom_m.boundary))
        parts = [p for p in shapely.get_parts(shared) if p.geom_type == "LineString"]
        if parts:
            longest = max(parts, key=lambda p: p.length)
            if longest.length >= 60:
                pairs.append((candidates[a], candidates[b], longest))
    return pairs


def _dims(rng: np.random.Generator, uses: list[str]) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([USE_AREA_M2[u][0] for u in uses], dtype=float)
    hi = np.array([USE_AREA_M2[u][1] for u in uses], dtype=float)
    area = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    aspect = rng.uniform(1.0, 2.4, len(uses))
    return np.sqrt(area / aspect), np.sqrt(area * aspect)


def _place_in_zone(rng: np.random.Generator, zone: Zone, width: np.ndarray, length: np.ndarray,
                   angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Footprints (metres) inside the zone shrunk by its setback; returns polygons and a placed mask."""
    n = len(width)
    out = np.empty(n, dtype=object)
    placed = np.zeros(n, dtype=bool)
    inner = zone.geom_m.buffer(-max(zone.min_setback_m or 0.0, 1.0))
    if inner.is_empty or inner.area < 200:
        return out, placed
    shapely.prepare(inner)
    for attempt in range(8):
        todo = np.flatnonzero(~placed)
        if not len(todo):
            break
        scale = 0.85 ** max(attempt - 3, 0)   # cramped zones get smaller buildings, not none
        x, y = sample_points(inner, len(todo), rng, decimals=2)
        rects = rectangles(x, y, width[todo] * scale, length[todo] * scale, angle[todo])
        ok = shapely.contains(inner, rects)
        out[todo[ok]] = rects[ok]
        placed[todo[ok]] = True
    return out, placed


def _place_across(rng: np.random.Generator, zones: list[Zone], pair: tuple, width: float,
                  length: float) -> object | None:
    a, b, line = pair
    both = shapely.union(zones[a].geom_m, zones[b].geom_m)
    for _ in range(12):
        p = line.interpolate(float(rng.uniform(0.2, 0.8)), normalized=True)
        rect = rectangles(np.array([p.x]), np.array([p.y]), np.array([width]), np.array([length]),
                          np.array([rng.uniform(0, np.pi)]))[0]
        if not both.contains(rect):
            continue
        share = rect.intersection(zones[a].geom_m).area / rect.area
        if 0.2 <= share <= 0.8:
            return rect
    return None


def generate_permits(rng: np.random.Generator, zones: list[Zone], n: int, metric: Metric,
                     today: dt.date, chunk: int = 0) -> list[tuple]:
    buildable = [i for i, z in enumerate(zones) if z.zone_type in BUILDABLE]
    protected = [i for i, z in enumerate(zones) if z.zone_type in ("green", "forest", "heritage")]
    w = np.array([BUILD_WEIGHT[zones[i].zone_type] * CLASS_WEIGHT[zones[i].commune.cls]
                  * np.sqrt(zones[i].geom_m.area) for i in buildable])
    role = rng.choice(len(ROLES), n, p=np.array(ROLE_P))
    zone_of = np.array(buildable)[rng.choice(len(buildable), n, p=w / w.sum())]
    # A third of the wrong-use permits sit in green, forest or heritage land: building in protected
    # areas is the classic case.
    wrong_use = np.flatnonzero(role == ROLES.index("use_not_allowed"))
    into_protected = wrong_use[rng.random(len(wrong_use)) < 0.35]
    if protected:
        zone_of[into_protected] = np.array(protected)[rng.integers(0, len(protected), len(into_protected))]

    # Intended use: allowed by the zone, or for the wrong-use role one it neither allows nor tolerates.
    uses = []
    u = rng.random(n)
    for k in range(n):
        z = zones[zone_of[k]]
        if role[k] == ROLES.index("use_not_allowed"):
            pool = [x for x in vocab.ALL_USES if x not in z.allowed and x not in z.conditional
                    and x not in ("transport", "forestry", "park")]
        else:
            pool = list(z.allowed)
        uses.append(pool[int(u[k] * len(pool))])
    width, length = _dims(rng, uses)

    # Buildings of one zone share a street grid: one orientation per zone, a little noise each.
    zone_angle = rng.uniform(0, np.pi, len(zones))
    angle = zone_angle[zone_of] + rng.normal(0, 0.06, n)
    rects_m = np.empty(n, dtype=object)
    crossing = np.flatnonzero(role == ROLES.index("two_zones"))
    pairs = _pairs(zones, buildable)
    for k in crossing.tolist():
        for _ in range(20):
            pair = pairs[int(rng.integers(0, len(pairs)))]
            rect = _place_across(rng, zones, pair, width[k], length[k])
            if rect is not None:
                zone_of[k] = pair[0]
                rects_m[k] = rect
                break
        else:
            role[k] = 0   # could not straddle anywhere: let it be an ordinary permit
    pending = np.flatnonzero(rects_m == None)  # noqa: E711 - elementwise test on an object array
    big = sorted(buildable, key=lambda i: -zones[i].geom_m.area)[:60]
    for _ in range(10):
        if not len(pending):
            break
        for zi in np.unique(zone_of[pending]).tolist():
            idx = pending[zone_of[pending] == zi]
            rects, ok = _place_in_zone(rng, zones[zi], width[idx], length[idx], angle[idx])
            rects_m[idx[ok]] = rects[ok]
        pending = np.flatnonzero(rects_m == None)  # noqa: E711
        # Those that did not fit move to one of the largest zones (the same rules apply there).
        zone_of[pending] = np.array(big)[rng.integers(0, len(big), len(pending))]
        for k in pending.tolist():
            if role[k] == ROLES.index("use_not_allowed"):
                z = zones[zone_of[k]]
                pool = [x for x in vocab.ALL_USES if x not in z.allowed and x not in z.conditional
                        and x not in ("transport", "forestry", "park")]
                uses[k] = pool[int(rng.integers(0, len(pool)))]
            elif uses[k] not in zones[zone_of[k]].allowed:
                uses[k] = zones[zone_of[k]].allowed[0]
    keep = np.flatnonzero(rects_m != None)  # noqa: E711
    footprints_m = rects_m[keep]
    footprints = metric.to_deg(footprints_m)
    return _permit_rows(rng, zones, keep, zone_of[keep], role[keep], [uses[k] for k in keep.tolist()],
                        footprints, shapely.area(footprints_m), today, chunk)


# Addresses repeat their parts (streets, communes) thousands of times: unaccent each part once.
_ua = functools.lru_cache(maxsize=4096)(unaccent)


def _permit_rows(rng, zones, keep, zone_of, role, uses, footprints, area_m2, today, chunk) -> list[tuple]:
    n = len(keep)
    max_h = np.array([zones[z].max_height_m for z in zone_of.tolist()], dtype=float)
    max_f = np.array([zones[z].max_floors for z in zone_of.tolist()], dtype=np.int64)
    max_c = np.array([zones[z].max_coverage_pct for z in zone_of.tolist()], dtype=float) / 100.0
    storey = rng.uniform(3.2, 3.8, n)
    roof = rng.uniform(0.3, 1.5, n)
    # Compliant: floors within the limit and within what the height limit leaves room for.
    cap = np.maximum(np.minimum(max_f, np.floor((max_h - 1.5) / 3.8).astype(np.int64)), 1)
    floors = np.minimum(1 + rng.binomial(np.maximum(cap - 1, 0), 0.45), cap)
    height = np.round(floors * storey + roof, 1)
    tall = role == ROLES.index("too_tall")
    height[tall] = np.round(max_h[tall] * rng.uniform(1.15, 1.6, int(tall.sum())), 1)
    floors[tall] = np.minimum(np.maximum(floors[tall], np.floor(height[tall] / 3.8).astype(np.int64)), max_f[tall])
    many = role == ROLES.index("too_many_floors")
    floors[many] = max_f[many] + rng.integers(1, 4, int(many.sum()))
    height[many] = np.round(floors[many] * rng.uniform(3.0, 3.3, int(many.sum())) + 0.5, 1)
    cover = max_c * rng.uniform(0.55, 0.97, n)
    over = role == ROLES.index("coverage")
    cover[over] = np.minimum(max_c[over] * rng.uniform(1.2, 1.6, int(over.sum())), 1.0)
    # A footprint cannot cover more than the whole parcel; a 100 % limit leaves nothing to break.
    parcel = np.round(area_m2 / np.maximum(cover, 1e-3), 2)

    bad = role != 0
    status_idx = np.where(bad, rng.choice(5, n, p=np.array(STATUS_P_BAD)),
                          rng.choice(5, n, p=np.array(STATUS_P_OK)))
    age = rng.integers(0, 730, n)
    submitted = status_idx == STATUS.index("submitted")
    age[submitted] = rng.integers(0, 60, int(submitted.sum()))
    wait = rng.integers(7, 46, n)
    # Not yet decided if the decision date would fall in the future.
    status_idx[(age < wait) & np.isin(status_idx, [0, 3, 4])] = STATUS.index("submitted")
    expired = status_idx == STATUS.index("expired")
    status_idx[expired & (age - wait < 366)] = STATUS.index("approved")
    # Ids and permit numbers follow the application date (PostgreSQL numbers them across chunks).
    order = np.argsort(-age, kind="stable")

    communes = [zones[z].commune for z in zone_of.tolist()]
    classes = np.array([c.cls for c in communes])
    names, female = vocab.personal_names(rng, n, classes)
    ids = vocab.citizen_ids(rng, female)
    house_no = rng.integers(1, 400, n)
    street_i = rng.integers(0, len(vocab.STREETS), n)
    village_i = rng.integers(0, len(vocab.VILLAGES) + len(vocab.UNNAMED_VILLAGES), n)
    org_draw = rng.random(n)
    company_i = rng.integers(0, len(vocab.COMPANY_NAMES), n)
    footprints_hex = shapely.to_wkb(footprints, hex=True)
    rows = []
    for seq, k in enumerate(order.tolist(), start=1):
        c = communes[k]
        applied = today - dt.timedelta(days=int(age[k]))
        status = STATUS[status_idx[k]]
        issued = expires = None
        if status in ("approved", "revoked", "expired"):
            issued = applied + dt.timedelta(days=int(wait[k]))
            expires = issued + dt.timedelta(days=365)
        if c.cls == "rural":
            v = int(village_i[k])
            village = (vocab.VILLAGES[v] if v < len(vocab.VILLAGES)
                       else vocab.UNNAMED_VILLAGES[v - len(vocab.VILLAGES)])
            address = nfc(f"Thôn {village}, xã {c.name}")
            address_ua = f"thon {_ua(village)}, xa {_ua(c.name)}"
        else:
            street = vocab.STREETS[street_i[k]]
            address = nfc(f"Số {house_no[k]}, đường {street}, {c.lower_kind} {c.name}")
            address_ua = f"so {house_no[k]}, duong {_ua(street)}, {_ua(c.lower_kind)} {_ua(c.name)}"
        use = uses[k]
        if use in ("commercial", "hotel", "office", "industry", "warehouse") and org_draw[k] < 0.6:
            form = "Công ty Cổ phần" if org_draw[k] < 0.25 else "Công ty TNHH"
            applicant, id_no = nfc(f"{form} {vocab.COMPANY_NAMES[company_i[k]]}"), None
        elif use in ("school", "clinic", "public"):
            applicant, id_no = nfc("Ban Quản lý dự án đầu tư xây dựng tỉnh Lào Cai"), None
        else:
            applicant, id_no = nfc(names[k]), ids[k]
        rows.append((
            chunk, seq, applicant, id_no, address, address_ua, c.code,
            use, int(floors[k]), float(height[k]), round(float(area_m2[k]), 2), float(parcel[k]),
            status, applied, issued, expires, footprints_hex[k],
        ))
    return rows
