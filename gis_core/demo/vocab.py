"""Vietnamese words the generator draws from: people, streets, villages, facilities, incidents.

Everything here is invented for the demo or is a common noun; no list names a real person. Street
names are the usual ones of Vietnamese towns (historical figures, places, dates).
"""

from __future__ import annotations

import numpy as np

from ..text import nfc

# -- people ---------------------------------------------------------------------------------------
# Lào Cai is about two thirds ethnic minorities (H'Mông, Dao, Tày, Thái, Giáy, ...): a name drawn for
# a remote commune is more often H'Mông or Dao than for a ward of Lào Cai or Yên Bái.

KINH_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đỗ", "Bùi", "Đặng", "Ngô", "Đinh",
               "Dương", "Phan", "Lương", "Tạ", "Hà")
KINH_MIDDLE_M = ("Văn", "Đức", "Minh", "Quang", "Hữu", "Mạnh", "Xuân", "Anh")
KINH_MIDDLE_F = ("Thị", "Thị", "Thu", "Ngọc", "Thanh", "Minh", "Hồng")
KINH_GIVEN_M = ("Hùng", "Dũng", "Tuấn", "Hải", "Long", "Thắng", "Sơn", "Cường", "Trung", "Hoàng", "Khánh",
                "Phúc", "Quân", "Tiến", "Vinh", "Đạt", "Nam", "Bình", "Toàn", "Hiếu")
KINH_GIVEN_F = ("Lan", "Hương", "Mai", "Hoa", "Hạnh", "Thảo", "Trang", "Linh", "Yến", "Nga", "Huyền",
                "Phương", "Dung", "Thúy", "Hà", "Vân", "Ngân", "Oanh")

HMONG_FAMILY = ("Giàng", "Sùng", "Vàng", "Lý", "Thào", "Hầu", "Mùa", "Lầu", "Sình", "Cứ")
HMONG_MIDDLE_M = ("A", "Seo", "Văn", "Chẩn")
HMONG_MIDDLE_F = ("Thị", "Thị", "Seo")
HMONG_GIVEN_M = ("Páo", "Chứ", "Sử", "Dế", "Lử", "Chá", "Tủa", "Sình", "Vảng", "Pó", "Lềnh", "Khua")
HMONG_GIVEN_F = ("Mỷ", "Sua", "Dợ", "Pàng", "Mai", "Dung", "Chở", "Su", "Lan", "Xí")

DAO_FAMILY = ("Tẩn", "Triệu", "Phùng", "Bàn", "Lý", "Chảo", "Đặng")
DAO_MIDDLE_M = ("Láo", "Văn", "Kim", "Ông")
DAO_MIDDLE_F = ("Thị", "Tả", "Mẩy")
DAO_GIVEN_M = ("Lở", "Tài", "Quẩy", "Phin", "Vần", "Chài", "Tả", "Sơn", "Minh")
DAO_GIVEN_F = ("Mẩy", "Xeo", "Lai", "Chài", "Phấy", "Mây", "Dìn")

TAY_FAMILY = ("Hoàng", "Lò", "Lường", "Hà", "Nông", "Ma", "Lục", "Đèo", "Cầm", "Vi")
TAY_MIDDLE_M = ("Văn", "Văn", "Đình", "Công")
TAY_MIDDLE_F = ("Thị",)
TAY_GIVEN_M = ("Thoan", "Pắn", "Khiêm", "Doãn", "Tuấn", "Sơn", "Hưng", "Ngọc", "Thanh")
TAY_GIVEN_F = ("Phăn", "Ín", "Xuân", "Nguyệt", "Thơm", "Hoa", "Bích", "Lả")

# (family, middle male, middle female, given male, given female) per group.
NAME_GROUPS = (
    (KINH_FAMILY, KINH_MIDDLE_M, KINH_MIDDLE_F, KINH_GIVEN_M, KINH_GIVEN_F),
    (HMONG_FAMILY, HMONG_MIDDLE_M, HMONG_MIDDLE_F, HMONG_GIVEN_M, HMONG_GIVEN_F),
    (DAO_FAMILY, DAO_MIDDLE_M, DAO_MIDDLE_F, DAO_GIVEN_M, DAO_GIVEN_F),
    (TAY_FAMILY, TAY_MIDDLE_M, TAY_MIDDLE_F, TAY_GIVEN_M, TAY_GIVEN_F),
)
# Share of (Kinh, H'Mông, Dao, Tày/Thái/Giáy) by commune class.
GROUP_SHARES = {
    "urban": (0.78, 0.06, 0.04, 0.12),
    "town": (0.45, 0.2, 0.12, 0.23),
    "rural": (0.18, 0.42, 0.2, 0.2),
}

MOBILE_PREFIXES = ("032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098",
                   "081", "082", "083", "084", "085", "088", "091", "094", "070", "076", "077", "078",
                   "079", "089", "090", "093", "056", "058", "059")

# -- places --------------------------------------------------------------------------------------

STREETS = ("Hoàng Liên", "Trần Hưng Đạo", "Hoàng Quốc Việt", "Nguyễn Huệ", "Lê Lợi", "Điện Biên",
           "Hồng Hà", "Phan Đình Phùng", "Nhạc Sơn", "Võ Nguyên Giáp", "30 Tháng 4", "Ngô Quyền",
           "Lý Thường Kiệt", "Nguyễn Thái Học", "Đinh Tiên Hoàng", "Yên Ninh", "Trần Phú", "Hòa Bình",
           "Thành Công", "Kim Đồng", "Hùng Vương", "Quang Trung", "Lê Hồng Phong", "Nguyễn Du",
           "Cầu Mây", "Xuân Viên", "Thạch Sơn", "Mường Hoa", "Ngũ Chỉ Sơn", "Tuệ Tĩnh", "Chu Văn An",
           "Lê Quý Đôn", "Hoàng Hoa Thám", "Bế Văn Đàn", "Tô Hiệu", "Cốc Lếu", "Soi Tiền", "Phú Thịnh",
           "Mạc Đĩnh Chi", "Nguyễn Tất Thành", "Hoàng Văn Thụ", "Minh Khai", "Sơn Đạo", "Duyên Hải")

VILLAGES = ("Sín Chải", "Lao Chải", "Nậm Cang", "Séo Mý Tỷ", "Khe Lếch", "Làng Mới", "Na Lin", "Cốc Pài",
            "Pờ Hồ", "Suối Thầu", "Hầu Thào", "Bản Pho", "Khe Mụ", "Làng Cung", "Nà Hẩu", "Nậm Khắt",
            "Tả Chải", "Sủng Sán", "Ngải Thầu", "Mường Vi", "Bản Vền", "Khe Cam", "Làng Đá", "Đồng Tâm",
            "Tân Tiến", "Minh Tân", "Bản Mế", "Phìn Hồ", "Pả Cheo", "Lùng Cấu", "Cán Hồ", "Xuân Lý",
            "Bản Luốc", "Nà Ràng", "Khe Trang", "Làng Chiềng", "Km 15", "Km 22", "Thác Hoa", "Hồng Ca")

UNNAMED_VILLAGES = tuple(f"{n}" for n in range(1, 13))   # "Thôn 3": many villages are numbered

# -- planning ------------------------------------------------------------------------------------

ZONE_PREFIX = {
    "residential": "ONM", "commercial": "TMDV", "mixed": "HH", "public": "CC", "industrial": "CN",
    "green": "CX", "agriculture": "NN", "forest": "RSX", "water": "MN", "transport": "GT",
    "heritage": "DT",
}
ALL_USES = ("residential", "commercial", "office", "hotel", "school", "clinic", "public", "industry",
            "warehouse", "agriculture", "forestry", "park", "transport", "religious")

# -- facilities ----------------------------------------------------------------------------------

SCHOOL_PATRONS = ("Kim Đồng", "Lê Văn Tám", "Võ Thị Sáu", "Nguyễn Trãi", "Lê Quý Đôn", "Chu Văn An",
                  "Lý Tự Trọng", "Ngô Văn Sở", "Trần Phú", "Nguyễn Du", "Hoàng Hoa Thám", "Lê Ngọc Hân")
PRESCHOOL_NAMES = ("Hoa Hồng", "Hoa Mai", "Hoa Sen", "Hoa Ban", "Sơn Ca", "Họa Mi", "Bình Minh",
                   "Tuổi Thơ", "Hoa Phượng", "Ánh Dương")
CLINIC_NAMES = ("An Bình", "Tâm Đức", "Hồng Phúc", "Thiện Nhân", "Phúc An", "Minh Tâm", "Hà Thành",
                "Tâm An", "Bình An", "Việt Thái", "Hồng Hà", "Nhân Ái", "Sao Mai", "Thái Bình",
                "Tân Phong", "Gia An")
COMPANY_NAMES = ("Xây dựng Hoàng Liên", "Đầu tư Phát triển Hồng Hà", "Thương mại Kim Thành",
                 "Du lịch Fansipan Xanh", "Khoáng sản Tằng Loỏng", "Vận tải Bắc Hà", "Nông sản Mường Hum",
                 "Xây dựng Nghĩa Lộ", "Đầu tư Thác Bà", "Dịch vụ Cầu Mây", "Chè Suối Giàng",
                 "Vật liệu xây dựng Yên Bình")

# -- incidents -----------------------------------------------------------------------------------

CATEGORIES = ("traffic", "environment", "urban_order", "landslide", "flood", "fire", "infrastructure",
              "security", "other")

# Deadline by category, hours: fires and floods within the day, paperwork-type matters in a week.
SLA_HOURS = {"traffic": 24, "environment": 120, "urban_order": 72, "landslide": 48, "flood": 24,
             "fire": 6, "infrastructure": 168, "security": 24, "other": 168}

DESCRIPTIONS = {
    "traffic": (
        "Va chạm giữa xe máy và ô tô tại {p}, có người bị thương nhẹ",
        "Đèn tín hiệu giao thông tại {p} không hoạt động",
        "Xe tải đỗ sai quy định gây ùn tắc tại {p}",
        "Xe khách dừng đón trả khách sai nơi quy định tại {p}",
        "Tai nạn giao thông tại {p}, cần hỗ trợ phân luồng",
    ),
    "environment": (
        "Đổ trộm rác thải xây dựng tại {p}",
        "Nước thải chảy tràn ra suối, bốc mùi hôi tại {p}",
        "Đốt rác gây khói bụi cho khu dân cư tại {p}",
        "Bãi rác tự phát ven đường tại {p}",
        "Khai thác cát sỏi trái phép trên sông tại {p}",
    ),
    "urban_order": (
        "Lấn chiếm vỉa hè để kinh doanh tại {p}",
        "Xây dựng công trình không phép tại {p}",
        "Dán quảng cáo rao vặt sai quy định tại {p}",
        "Vật liệu xây dựng để tràn ra lòng đường tại {p}",
        "Karaoke gây ồn ào sau 22 giờ tại {p}",
    ),
    "landslide": (
        "Sạt lở taluy dương, đất đá tràn xuống mặt đường tại {p}",
        "Xuất hiện vết nứt đất, nguy cơ sạt lở gần nhà dân tại {p}",
        "Sạt lở làm ách tắc giao thông tại {p}",
        "Đá lăn từ sườn núi xuống đường tại {p}",
    ),
    "flood": (
        "Ngập úng cục bộ sau mưa lớn tại {p}",
        "Lũ quét làm hư hỏng ngầm tràn tại {p}",
        "Nước suối dâng cao, cần cảnh báo người dân tại {p}",
        "Nước ngập sâu, xe máy không đi qua được tại {p}",
    ),
    "fire": (
        "Cháy rừng tại {p}, đám cháy đang lan rộng",
        "Cháy nhà dân tại {p}",
        "Phát hiện khói nghi cháy thực bì tại {p}",
        "Chập điện gây cháy tại cửa hàng ở {p}",
    ),
    "infrastructure": (
        "Đèn chiếu sáng công cộng bị hỏng tại {p}",
        "Mặt đường xuống cấp, nhiều ổ gà tại {p}",
        "Cống thoát nước bị tắc tại {p}",
        "Cột điện nghiêng có nguy cơ đổ tại {p}",
        "Mất nước sinh hoạt kéo dài tại {p}",
        "Cầu treo hư hỏng lan can tại {p}",
    ),
    "security": (
        "Trộm cắp tài sản tại {p}",
        "Đánh nhau gây mất trật tự tại {p}",
        "Đối tượng khả nghi lảng vảng quanh khu dân cư tại {p}",
        "Nghi vấn xuất nhập cảnh trái phép qua đường mòn tại {p}",
    ),
    "other": (
        "Gia súc thả rông trên đường tại {p}",
        "Cây đổ chắn đường sau giông lốc tại {p}",
        "Chó thả rông không rọ mõm tại {p}",
        "Đề nghị hỗ trợ hộ gia đình khó khăn tại {p}",
    ),
}
CAMERA_DESCRIPTIONS = {
    "traffic": ("Camera AI phát hiện ùn tắc giao thông tại {p}",
                "Camera ghi nhận phương tiện đi ngược chiều tại {p}"),
    "urban_order": ("Camera phát hiện lấn chiếm lòng đường tại {p}",
                    "Camera ghi nhận đổ rác không đúng nơi quy định tại {p}"),
    "security": ("Camera ghi nhận tụ tập đông người bất thường tại {p}",
                 "Camera phát hiện người lạ trèo rào tại {p}"),
    "flood": ("Camera cảnh báo mực nước dâng nhanh tại {p}",),
    "fire": ("Camera phát hiện khói, nghi cháy rừng tại {p}", "Camera phát hiện đám cháy tại {p}"),
    "other": ("Camera ghi nhận gia súc đi vào lòng đường tại {p}",),
}
SENSOR_DESCRIPTIONS = {
    "flood": ("Cảm biến mực nước vượt ngưỡng báo động 1 tại {p}",
              "Cảm biến mực nước vượt ngưỡng báo động 2 tại {p}"),
    "landslide": ("Cảm biến chuyển dịch đất báo động tại {p}",
                  "Trạm đo mưa vượt 100 mm/24 giờ, nguy cơ sạt lở tại {p}"),
    "environment": ("Trạm quan trắc ghi nhận bụi PM2.5 vượt ngưỡng tại {p}",
                    "Trạm quan trắc nước thải vượt ngưỡng COD tại {p}"),
}


def pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> list[str]:
    """n draws from a fixed tuple, as Python strings (NFC)."""
    idx = rng.integers(0, len(options), n)
    return [nfc(options[i]) for i in idx.tolist()]


def personal_names(rng: np.random.Generator, n: int, commune_class: np.ndarray) -> tuple[list[str], np.ndarray]:
    """n full names, and whether each is a woman's, with the ethnic mix of each row's commune."""
    groups = np.empty(n, dtype=np.int64)
    for cls, shares in GROUP_SHARES.items():
        mask = commune_class == cls
        groups[mask] = rng.choice(len(shares), int(mask.sum()), p=np.array(shares))
    female = rng.random(n) < 0.48
    # Draw indices for every part from every group at once, then select: vectorised, and the
    # number of draws (hence the stream) does not depend on the mix.
    u = rng.random((n, 3))
    names = []
    for g, f, (a, b, c) in zip(groups.tolist(), female.tolist(), u.tolist(), strict=True):
        family, mid_m, mid_f, giv_m, giv_f = NAME_GROUPS[g]
        middle, given = (mid_f, giv_f) if f else (mid_m, giv_m)
        names.append(f"{family[int(a * len(family))]} {middle[int(b * len(middle))]} "
                     f"{given[int(c * len(given))]}")
    return names, female


def phone_numbers(rng: np.random.Generator, n: int) -> list[str]:
    prefix = rng.integers(0, len(MOBILE_PREFIXES), n)
    rest = rng.integers(0, 10_000_000, n)
    return [f"{MOBILE_PREFIXES[p]}{r:07d}" for p, r in zip(prefix.tolist(), rest.tolist(), strict=True)]


def citizen_ids(rng: np.random.Generator, female: np.ndarray) -> list[str]:
    """12-digit citizen identity numbers: province of birth (010 Lào Cai, 015 Yên Bái, or elsewhere),
    century-and-sex digit, two digits of the birth year, six random digits."""
    n = len(female)
    province = rng.choice(np.array([10, 15, 1, 22, 25, 36]), n, p=[0.45, 0.35, 0.06, 0.05, 0.05, 0.04])
    year = rng.integers(1955, 2006, n)
    century_sex = np.where(year >= 2000, 2, 0) + female.astype(np.int64)
    serial = rng.integers(0, 1_000_000, n)
    return [f"{p:03d}{c}{y % 100:02d}{s:06d}" for p, c, y, s in
            zip(province.tolist(), century_sex.tolist(), year.tolist(), serial.tolist(), strict=True)]
