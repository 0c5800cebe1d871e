"""Schools, health facilities and cameras, placed inside the communes they are named after."""

from __future__ import annotations

import datetime as dt

import numpy as np
from shapely.geometry import LineString, Point

from ..text import nfc, unaccent
from . import vocab
from .boundaries import Commune
from .geo import sample_points
from .terrain import RED_RIVER


def _address(rng: np.random.Generator, c: Commune) -> str:
    if c.cls == "rural":
        return nfc(f"Thôn {vocab.VILLAGES[int(rng.integers(0, len(vocab.VILLAGES)))]}, xã {c.name}")
    return nfc(f"Đường {vocab.STREETS[int(rng.integers(0, len(vocab.STREETS)))]}, {c.lower_kind} {c.name}")


def _near_centre(rng: np.random.Generator, c: Commune, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Facilities cluster where people live: around the centre, tighter in the wards."""
    sigma = {"urban": 1200.0, "town": 1500.0, "rural": 2500.0}[c.cls]
    return sample_points(c.geom, n, rng, centre=(c.centre.x, c.centre.y), sigma_m=sigma)


def _numbered(base: str, k: int) -> str:
    return base if k == 0 else f"{base} số {k + 1}"


def generate_schools(rng: np.random.Generator, communes: list[Commune]) -> list[tuple]:
    rows = []
    for c in communes:
        plan: list[tuple[str, str, str]] = []   # (level, ownership, name)
        if c.cls == "urban":
            big = c.weight / 6.0
            pre, pri, low, up = (int(rng.integers(3, 5) * big), int(rng.integers(2, 4) * big),
                                 int(rng.integers(1, 3) * big), int(rng.integers(1, 3)))
            for k in range(max(pre, 2)):
                plan.append(("preschool", "public", f"Trường Mầm non {vocab.PRESCHOOL_NAMES[k % 10]}"))
            for k in range(int(rng.integers(1, 3))):
                plan.append(("preschool", "private",
                             f"Trường Mầm non tư thục {vocab.PRESCHOOL_NAMES[(k + 5) % 10]}"))
            patrons = rng.permutation(len(vocab.SCHOOL_PATRONS)).tolist()
            for k in range(max(pri, 2)):
                plan.append(("primary", "public", f"Trường Tiểu học {vocab.SCHOOL_PATRONS[patrons[k % 12]]}"))
            for k in range(max(low, 1)):
                plan.append(("lower_secondary", "public",
                             f"Trường THCS {vocab.SCHOOL_PATRONS[patrons[(k + 6) % 12]]}"))
            for k in range(up):
                plan.append(("upper_secondary", "public", _numbered(f"Trường THPT {c.name}", k)))
            if c.code in ("02647", "04252"):
                plan.append(("upper_secondary", "public", f"Trường THPT chuyên {c.name}"))
                plan.append(("boarding_ethnic", "public", f"Trường PTDT Nội trú {c.name}"))
                plan.append(("multi_level", "private", f"Trường Phổ thông liên cấp Hoa Ban {c.name}"))
        else:
            n_pre = int(rng.integers(1, 3)) + (1 if c.cls == "town" else 0)
            for k in range(n_pre):
                plan.append(("preschool", "public", _numbered(f"Trường Mầm non {c.name}", k)))
            if c.cls == "town":
                plan.append(("primary", "public", f"Trường Tiểu học {c.name}"))
                plan.append(("primary", "public", f"Trường Tiểu học {c.name} số 2"))
                plan.append(("lower_secondary", "public", f"Trường THCS {c.name}"))
                plan.append(("upper_secondary", "public", f"Trường THPT {c.name}"))
                plan.append(("boarding_ethnic", "public", f"Trường PTDT Nội trú THCS và THPT {c.name}"))
            else:
                # Remote communes: semi-boarding ethnic schools often join primary and lower secondary.
                if rng.random() < 0.45:
                    plan.append(("boarding_ethnic", "public", f"Trường PTDTBT TH và THCS {c.name}"))
                    plan.append(("primary", "public", f"Trường Tiểu học {c.name}"))
                else:
                    for k in range(int(rng.integers(1, 3))):
                        plan.append(("primary", "public", _numbered(f"Trường Tiểu học {c.name}", k)))
                    if rng.random() < 0.5:
                        plan.append(("boarding_ethnic", "public", f"Trường PTDTBT THCS {c.name}"))
                    else:
                        plan.append(("lower_secondary", "public", f"Trường THCS {c.name}"))
                if rng.random() < 0.3:
                    plan.append(("multi_level", "public", f"Trường TH và THCS {c.name} số 2"))
                if rng.random() < 0.12:
                    plan.append(("upper_secondary", "public", f"Trường THPT {c.name}"))
        x, y = _near_centre(rng, c, len(plan))
        for k, ((level, ownership, name), lon, lat) in enumerate(zip(plan, x.tolist(), y.tolist(),
                                                                       strict=True)):
            lo, hi = {"preschool": (80, 350), "primary": (200, 900), "lower_secondary": (200, 800),
                      "upper_secondary": (500, 1400), "boarding_ethnic": (150, 550),
                      "multi_level": (250, 700)}[level]
            if c.cls == "rural":
                hi = (lo + hi) // 2
            students = int(rng.integers(lo, hi))
            name = nfc(name)
            rows.append((f"TRG-{c.code}-{k + 1:02d}", name, unaccent(name), level, ownership, students,
                         _address(rng, c), c.code, lon, lat))
    return rows


REGIONAL_HOSPITALS = {"03006": "Sa Pa", "04288": "Nghĩa Lộ", "02839": "Bắc Hà", "04303": "Lục Yên"}
PROVINCIAL_HOSPITALS = {
    "02647": (("Bệnh viện Đa khoa tỉnh Lào Cai", 800), ("Bệnh viện Sản Nhi tỉnh Lào Cai", 400),
              ("Bệnh viện Y học cổ truyền tỉnh Lào Cai", 150)),
    "02671": (("Bệnh viện Nội tiết tỉnh Lào Cai", 120), ("Bệnh viện Phục hồi chức năng tỉnh Lào Cai", 100)),
    "04252": (("Bệnh viện Đa khoa Yên Bái", 650), ("Bệnh viện Sản Nhi Yên Bái", 300)),
    "04273": (("Bệnh viện Tâm thần Yên Bái", 120), ("Bệnh viện Lao và Bệnh phổi Yên Bái", 150)),
}


def generate_clinics(rng: np.random.Generator, communes: list[Commune]) -> list[tuple]:
    rows = []
    for c in communes:
        plan: list[tuple[str, str, int]] = [
            ("commune_station", f"Trạm Y tế {c.lower_kind} {c.name}", int(rng.integers(3, 11)))]
        for name, beds in PROVINCIAL_HOSPITALS.get(c.code, ()):
            plan.append(("provincial_hospital", name, beds))
        if c.code in REGIONAL_HOSPITALS:
            plan.append(("regional_hospital", f"Bệnh viện Đa khoa khu vực {REGIONAL_HOSPITALS[c.code]}",
                         int(rng.integers(150, 351))))
        if c.cls == "town" or c.code in ("03006", "04288"):
            plan.append(("health_center", f"Trung tâm Y tế khu vực {c.name}", int(rng.integers(50, 201))))
        n_private = {"urban": int(round(4 * c.weight / 6.0)) + 3, "town": int(rng.integers(1, 3)),
                     "rural": int(rng.random() < 0.15)}[c.cls]
        names = rng.permutation(len(vocab.CLINIC_NAMES)).tolist()
        for k in range(n_private):
            kind = "Phòng khám Đa khoa" if rng.random() < 0.6 else "Phòng khám Chuyên khoa"
            plan.append(("private_clinic", f"{kind} {vocab.CLINIC_NAMES[names[k % 16]]} {c.name}",
                         int(rng.integers(0, 21))))
        x, y = _near_centre(rng, c, len(plan))
        for k, ((kind, name, beds), lon, lat) in enumerate(zip(plan, x.tolist(), y.tolist(), strict=True)):
            name = nfc(name)
            rows.append((f"YT-{c.code}-{k + 1:02d}", name, unaccent(name), kind, beds, _address(rng, c),
                         c.code, lon, lat))
    return rows


CAMERA_KINDS = ("traffic", "security", "flood", "forest_fire", "border")
CAMERA_LABEL = {"traffic": "Camera giao thông", "security": "Camera an ninh", "flood": "Camera cảnh báo lũ",
                "forest_fire": "Camera cảnh báo cháy rừng", "border": "Camera biên giới"}


def generate_cameras(rng: np.random.Generator, communes: list[Commune], province_geom,
                     now: dt.datetime) -> list[tuple]:
    """About 300 cameras: traffic and security in towns, flood along the Red River, forest-fire in
    the mountains, border along the frontier with China."""
    river = LineString(RED_RIVER)
    frontier = province_geom.boundary
    plan: list[tuple[Commune, str]] = []
    for c in communes:
        if c.cls != "rural":
            n_traffic = int(round({"urban": 5, "town": 2}[c.cls] * c.weight / {"urban": 6.0, "town": 2.5}[c.cls]))
            plan += [(c, "traffic")] * n_traffic
            plan += [(c, "security")] * max(n_traffic - 2, 1)
        if c.geom.distance(river) < 0.01:
            plan += [(c, "flood")] * int(rng.integers(1, 3))
        elif rng.random() < 0.15:
            plan += [(c, "flood")]
        if c.cls == "rural" and rng.random() < 0.45:
            plan += [(c, "forest_fire")] * int(rng.integers(1, 3))
        if c.border:
            plan += [(c, "border")] * int(rng.integers(2, 5))
    rows = []
    heartbeat = {"traffic": 60, "security": 60, "flood": 300, "forest_fire": 300, "border": 120}
    ai_p = {"traffic": 0.6, "security": 0.4, "flood": 0.2, "forest_fire": 0.5, "border": 0.3}
    for i, (c, kind) in enumerate(plan, start=1):
        if kind == "flood":
            area = c.geom.intersection(river.buffer(0.012))       # within about 1.2 km of the river
        elif kind == "border":
            area = c.geom.intersection(frontier.buffer(0.01))
        elif kind == "forest_fire":
            area = c.geom
        else:
            area = None
        if area is not None and not area.is_empty and area.area > 1e-6:
            x, y = sample_points(area, 1, rng)
        else:
            x, y = sample_points(c.geom, 1, rng, centre=(c.centre.x, c.centre.y), sigma_m=900.0)
        street = vocab.STREETS[int(rng.integers(0, len(vocab.STREETS)))]
        on_river = kind == "flood" and river.distance(Point(float(x[0]), float(y[0]))) < 0.015
        where = {"traffic": f"ngã tư {street}", "security": f"đường {street}",
                 "flood": "ven sông Hồng" if on_river else "ngầm tràn qua suối",
                 "forest_fire": "chòi quan sát trên đồi", "border": "đường tuần tra biên giới"}[kind]
        name = nfc(f"{CAMERA_LABEL[kind]} {where} - {c.lower_kind} {c.name}")
        draw = rng.random()
        status = "online" if draw < 0.86 else ("offline" if draw < 0.96 else "maintenance")
        hb = heartbeat[kind]
        if status == "online":
            last_seen = now - dt.timedelta(seconds=float(rng.uniform(0, hb)))
        elif status == "offline":
            last_seen = now - dt.timedelta(hours=float(rng.uniform(1, 240)))
        else:
            last_seen = now - dt.timedelta(days=float(rng.uniform(1, 30)))
        subnet = CAMERA_KINDS.index(kind) + 1
        # Private addresses only: this is demo data, nothing ever connects to them.
        url = f"rtsp://10.15.{subnet * 10 + i // 250}.{i % 250 + 2}:554/stream1"
        rows.append((f"CAM-{i:04d}", name, kind, status, last_seen, hb, url, bool(rng.random() < ai_p[kind]),
                     c.code, float(x[0]), float(y[0])))
    return rows


def camera_points(rows: list[tuple]) -> dict[str, tuple[str, str, float, float]]:
    """code -> (kind, commune_code, lon, lat), for the incidents the cameras raise."""
    return {r[0]: (r[2], r[8], r[9], r[10]) for r in rows}

