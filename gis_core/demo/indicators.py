"""Eight socio-economic indicators, monthly for the last 24 complete months, per commune and for the
province (sums for counts, population-weighted means for rates). Invented values with the
right orders of magnitude, trends and seasons: poverty falling fastest where it is highest, dengue
in the lowland wet months, tourists in Sa Pa in winter and at the terraces' harvest in September.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from .boundaries import PROVINCE_CODE, Commune

INDICATORS = (
    # code, name_vi, name_en, unit_vi, unit_en, higher_is_better, theme, description_vi, description_en, target
    ("poverty_rate", "Tỷ lệ hộ nghèo", "Poverty rate", "%", "%", False, "social",
     "Tỷ lệ hộ nghèo theo chuẩn nghèo đa chiều giai đoạn 2022-2025.",
     "Share of households below the 2022-2025 multidimensional poverty line.", 3),
    ("budget_revenue", "Thu ngân sách nhà nước trên địa bàn", "State budget revenue", "tỷ đồng",
     "billion VND", True, "economy", "Tổng thu ngân sách nhà nước phát sinh trên địa bàn trong tháng.",
     "State budget revenue collected in the unit during the month.", None),
    ("school_enrolment", "Tỷ lệ trẻ em trong độ tuổi đến trường", "School enrolment rate", "%", "%", True,
     "education", "Tỷ lệ trẻ em 6-14 tuổi đang đi học.", "Share of children aged 6-14 attending school.", 99),
    ("dengue_cases", "Số ca mắc sốt xuất huyết", "Dengue fever cases", "ca", "cases", False, "health",
     "Số ca sốt xuất huyết được ghi nhận trong tháng.", "Dengue fever cases reported during the month.", None),
    ("forest_cover", "Tỷ lệ che phủ rừng", "Forest cover", "%", "%", True, "environment",
     "Diện tích có rừng trên tổng diện tích tự nhiên.", "Forested area over total natural area.", 60),
    ("reports_on_time", "Tỷ lệ phản ánh được giải quyết đúng hạn", "Citizen reports resolved on time", "%", "%",
     True, "governance", "Tỷ lệ phản ánh hiện trường được xử lý xong trước hạn.",
     "Share of citizen reports resolved before their deadline.", 95),
    ("rainfall", "Lượng mưa", "Rainfall", "mm", "mm", False, "environment",
     "Tổng lượng mưa trong tháng; chỉ số theo dõi, mưa lớn làm tăng nguy cơ sạt lở và lũ quét.",
     "Total rainfall of the month; a context indicator: heavy rain raises landslide and flash-flood risk.", None),
    ("tourist_arrivals", "Lượt khách du lịch", "Tourist arrivals", "lượt khách", "visitors", True, "tourism",
     "Số lượt khách du lịch đến địa bàn trong tháng.", "Tourist visits to the unit during the month.", None),
)
SUMMED = {"budget_revenue", "dengue_cases", "tourist_arrivals"}
RAIN_MM = np.array([25, 32, 58, 110, 205, 265, 320, 330, 235, 120, 52, 26], dtype=float)
TOURISM = {"03006": 200_000, "02647": 60_000, "04252": 22_000, "04456": 18_000, "02839": 15_000,
           "02701": 8_000, "04717": 9_000, "04288": 10_000, "03037": 30_000, "03013": 12_000}


def periods(today: dt.date, n: int = 24) -> list[dt.date]:
    """The first days of the n complete months before today's month, oldest first."""
    out = []
    y, m = today.year, today.month
    for _ in range(n):
        m -= 1
        if m == 0:
            y, m = y - 1, 12
        out.append(dt.date(y, m, 1))
    return out[::-1]


def generate_indicator_values(rng: np.random.Generator, communes: list[Commune],
                              today: dt.date) -> list[tuple]:
    months = periods(today)
    t = np.arange(len(months))[None, :] / 12.0               # years since the first period
    moy = np.array([p.month for p in months])[None, :]      # month of year
    n = len(communes)
    cls = np.array([c.cls for c in communes])[:, None]
    urban, town = cls == "urban", cls == "town"
    weight = np.array([c.weight for c in communes])[:, None]
    lat = np.array([c.centre.y for c in communes])[:, None]
    lowland = lat < 22.0                                     # the old Yên Bái, warmer and wetter below
    mult = np.array([c.weight / {"urban": 6.0, "town": 2.5, "rural": 1.0}[c.cls] for c in communes])[:, None]

    def u(lo, hi):
        return rng.uniform(lo, hi, (n, 1))

    def noise(sd):
        return rng.normal(0.0, sd, (n, len(months)))

    values: dict[str, np.ndarray] = {}
    base = np.where(urban, u(0.5, 3), np.where(town, u(5, 15), u(15, 45)))
    values["poverty_rate"] = np.clip(base * (1 - u(0.1, 0.2)) ** t * (1 + noise(0.01)), 0.1, 80)
    season = np.where(moy == 12, 1.8, np.where(moy == 1, 0.7, 1.0))
    base = np.where(urban, u(15, 60) * mult, np.where(town, u(3, 10), u(0.3, 2)))
    values["budget_revenue"] = np.maximum(base * season * 1.08 ** t * (1 + noise(0.1)), 0.05)
    base = np.where(urban, u(98.5, 99.9), np.where(town, u(96, 99.5), u(88, 98)))
    values["school_enrolment"] = np.clip(base + 0.6 * t + noise(0.2), 0, 100)
    season = np.exp(-((moy - 8.5) ** 2) / 3.0)
    lam = np.where(lowland, np.where(urban, 14.0, 3.0), np.where(urban, 2.0, 0.3)) * (0.1 + season) * u(0.6, 1.4)
    values["dengue_cases"] = rng.poisson(lam).astype(float)
    base = np.where(urban, u(10, 35), np.where(town, u(40, 65), u(55, 82)))
    values["forest_cover"] = np.clip(base + 0.6 * t + noise(0.05), 0, 100)
    values["reports_on_time"] = np.clip(u(78, 93) + 2.5 * t + noise(2.5), 50, 100)
    wet = np.where(cls == "rural", 1.15, 1.0) * np.where(lowland, 0.95, 1.1)
    values["rainfall"] = RAIN_MM[moy - 1] * wet * rng.gamma(8.0, 1 / 8.0, (n, len(months)))
    season = 1 + 0.35 * np.isin(moy, [12, 1, 4, 5]) + 0.5 * np.isin(moy, [9, 10]) - 0.2 * np.isin(moy, [6, 7])
    base = np.array([TOURISM.get(c.code, {"urban": 6_000, "town": 3_000, "rural": 600}[c.cls])
                     for c in communes], dtype=float)[:, None] * u(0.8, 1.2)
    values["tourist_arrivals"] = np.round(base * season * 1.1 ** t * (1 + noise(0.08)))

    rows = []
    for code, *_rest in INDICATORS:
        v = values[code]
        for i, c in enumerate(communes):
            for j, p in enumerate(months):
                rows.append((code, c.code, p, round(float(v[i, j]), 2)))
        total = v.sum(axis=0) if code in SUMMED else (v * weight).sum(axis=0) / weight.sum()
        for j, p in enumerate(months):
            rows.append((code, PROVINCE_CODE, p, round(float(total[j]), 2)))
    return rows
