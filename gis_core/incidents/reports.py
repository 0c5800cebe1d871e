"""Citizen reports: validation field by field (Vietnamese and English), photos checked by their
bytes, the report stored with its ticket, and the public tracking data (no personal data).

Text is stored as the citizen typed it (NFC) and escaped wherever it is shown; markup in a report's
description is refused outright, since no legitimate report needs it and a stored-XSS attempt is
better answered at the door than trusted to every future page that shows the text.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ..errors import NotFound
from ..text import nfc
from .errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from .workflow import OPEN_STATUSES, STATUS_LABELS, NewIncident, create_incident

DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 2000
NAME_MAX = 100
CONTACT_MAX = 200
MAX_PHOTO_BYTES = 5 * 1024 * 1024
MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")
TICKET = re.compile(r"^[A-Z]{2,6}-[0-9]{4}-[0-9]{6,12}$")
# An HTML tag, comment or declaration opening: "<script", "< /b", "<!--", "<?php". "a < b" passes.
MARKUP = re.compile(r"<\s*[/!?]?\s*[A-Za-z!-]")
# Control characters other than tab and newlines: PostgreSQL cannot store NUL, the rest is noise.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PHONE = re.compile(r"^\+?[0-9][0-9 .-]{7,18}$")
EMAIL = re.compile(r"^[^@\s<>]{1,64}@[^@\s<>]+\.[^@\s<>]{2,}$")


@dataclass(frozen=True)
class Photo:
    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class ReportInput:
    category: str
    description: str
    lon: float
    lat: float
    reporter_name: str | None = None
    contact: str | None = None
    photo: Photo | None = None


def sniff_image(data: bytes) -> str | None:
    """The media type from the file's first bytes (what it is, not what it claims to be)."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_photo(data: bytes, max_bytes: int = MAX_PHOTO_BYTES) -> Photo:
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"Ảnh quá lớn: tối đa {max_bytes // (1024 * 1024)} MB.",
                              f"Photo too large: at most {max_bytes // (1024 * 1024)} MB.")
    if not data:
        raise ValidationFailed({"photo": ("Tệp ảnh rỗng.", "The photo file is empty.")})
    media_type = sniff_image(data)
    if media_type is None:
        raise UnsupportedMediaType("Ảnh phải là JPEG, PNG hoặc WebP.", "The photo must be JPEG, PNG or WebP.")
    return Photo(media_type, data)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return nfc(value).strip()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _location(data: Mapping[str, Any]) -> tuple[float | None, float | None]:
    location = data.get("location")
    if isinstance(location, Mapping):
        coords = location.get("coordinates")
        if location.get("type") == "Point" and isinstance(coords, list) and len(coords) == 2:
            return _number(coords[0]), _number(coords[1])
        return _number(location.get("lon")), _number(location.get("lat"))
    return _number(data.get("lon")), _number(data.get("lat"))


def parse_report(data: Mapping[str, Any], categories: Collection[str], photo: Photo | None = None) -> ReportInput:
    """Check every field and report all problems at once (ValidationFailed, 400)."""
    errors: dict[str, tuple[str, str]] = {}

    category = _text(data.get("category"))
    if not category:
        errors["category"] = ("Chưa chọn lĩnh vực phản ánh.", "The category is missing.")
    elif category not in categories:
        errors["category"] = (f"Lĩnh vực không hợp lệ; chọn một trong: {', '.join(categories)}.",
                              f"Unknown category; choose one of: {', '.join(categories)}.")

    description = _text(data.get("description"))
    if not description:
        errors["description"] = ("Chưa nhập nội dung phản ánh.", "The description is missing.")
    elif len(description) < DESCRIPTION_MIN:
        errors["description"] = (f"Nội dung quá ngắn: tối thiểu {DESCRIPTION_MIN} ký tự.",
                                 f"The description is too short: at least {DESCRIPTION_MIN} characters.")
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = (f"Nội dung quá dài: tối đa {DESCRIPTION_MAX} ký tự.",
                                 f"The description is too long: at most {DESCRIPTION_MAX} characters.")
    elif MARKUP.search(description):
        errors["description"] = ("Nội dung không được chứa thẻ HTML hay mã lệnh.",
                                 "The description must not contain HTML tags or script.")
    elif CONTROL.search(description):
        errors["description"] = ("Nội dung chứa ký tự điều khiển không hợp lệ.",
                                 "The description contains invalid control characters.")

    lon, lat = _location(data)
    if lon is None or lat is None:
        errors["location"] = ("Thiếu vị trí (kinh độ lon, vĩ độ lat).", "The location (lon, lat) is missing.")
    elif not (-180 <= lon <= 180 and -90 <= lat <= 90):
        errors["location"] = ("Tọa độ không hợp lệ (kinh độ -180..180, vĩ độ -90..90).",
                              "Invalid coordinates (lon -180..180, lat -90..90).")

    name = _text(data.get("name"))
    if name and (len(name) > NAME_MAX or MARKUP.search(name) or CONTROL.search(name)):
        errors["name"] = (f"Họ tên không hợp lệ (tối đa {NAME_MAX} ký tự, không chứa thẻ HTML).",
                          f"Invalid name (at most {NAME_MAX} characters, no HTML).")

    contact = _text(data.get("contact"))
    if contact and (len(contact) > CONTACT_MAX or not (PHONE.match(contact) or EMAIL.match(contact))):
        errors["contact"] = ("Liên hệ phải là số điện thoại hoặc địa chỉ email.",
                             "The contact must be a phone number or an email address.")

    if errors:
        raise ValidationFailed(errors)
    assert category and description and lon is not None and lat is not None
    return ReportInput(category, description, lon, lat, name or None, contact or None, photo)


# -- storing -------------------------------------------------------------------------------------

# The commune that covers the point (index), else, for a point inside the province that falls in a
# gap of the simplified communes, the nearest commune of that province; NULL: outside the province.
LOCATE = """
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g)
SELECT coalesce(
  (SELECT c.code FROM admin_units c, pt
   WHERE c.level = 'commune' AND c.valid_to IS NULL AND ST_Covers(c.geom, pt.g) ORDER BY c.code LIMIT 1),
  (SELECT c.code FROM admin_units p JOIN admin_units c ON c.parent_code = p.code, pt
   WHERE p.level = 'province' AND p.valid_to IS NULL AND ST_Covers(p.geom, pt.g)
     AND c.level = 'commune' AND c.valid_to IS NULL
   ORDER BY c.geom <-> pt.g LIMIT 1))
"""

INSERT_PHOTO = """
INSERT INTO incident_photos (incident_id, media_type, sha256, bytes) VALUES (%s, %s, %s, %s)
"""


def locate_commune(conn: psycopg.Connection, lon: float, lat: float) -> str | None:
    row = conn.execute(LOCATE, {"lon": lon, "lat": lat}).fetchone()
    return row[0] if row else None


def citizen_categories(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT code FROM incident_categories WHERE citizen ORDER BY sort_order")]


def submit_report(conn: psycopg.Connection, report: ReportInput, data_source: str = "api:reports") -> dict[str, Any]:
    """Store one report (and its photo) in one transaction; return the public receipt."""
    with conn.transaction():
        commune = locate_commune(conn, report.lon, report.lat)
        if commune is None:
            raise ValidationFailed({"location": ("Vị trí nằm ngoài địa bàn tỉnh.",
                                                 "The location is outside the province.")})
        row = create_incident(conn, NewIncident(
            category=report.category, source="citizen", description=report.description, lon=report.lon,
            lat=report.lat, commune_code=commune, data_source=data_source, actor="citizen",
            reporter_name=report.reporter_name, reporter_contact=report.contact))
        if report.photo is not None:
            conn.execute(INSERT_PHOTO, (row["id"], report.photo.media_type, report.photo.sha256,
                                        report.photo.data))
    return {"ticket_code": row["ticket_code"], "status": row["status"], "reported_at": row["reported_at"],
            "due_at": row["due_at"], "commune_code": row["commune_code"], "agency_code": row["agency_code"]}


# -- public tracking -----------------------------------------------------------------------------

# Only what anyone may read: no reporter name or contact, no operator names or internal comments.
TRACK = """
SELECT i.id, i.ticket_code, i.category, cat.name_vi AS category_vi, cat.name_en AS category_en, i.source,
       i.status, i.reported_at, i.due_at, i.resolved_at, u.name AS commune_name, i.description,
       a.name_vi AS agency_vi, a.name_en AS agency_en, w.answer, w.reject_reason,
       (i.status IN ('new', 'assigned', 'in_progress') AND i.due_at < now()) AS overdue
FROM incidents i
LEFT JOIN incident_workflow w ON w.incident_id = i.id
LEFT JOIN agencies a ON a.code = coalesce(w.agency_code, incident_route(i.category, i.commune_code))
LEFT JOIN incident_categories cat ON cat.code = i.category
LEFT JOIN admin_units u ON u.code = i.commune_code
WHERE i.ticket_code = %s
"""

PUBLIC_HISTORY = "SELECT to_status, at FROM incident_transitions WHERE incident_id = %s ORDER BY at, id"


def track(conn: psycopg.Connection, ticket_code: str) -> dict[str, Any]:
    """The public view of one ticket (NotFound for an unknown or malformed code)."""
    if not TICKET.match(ticket_code or ""):
        raise NotFound("Mã phiếu không đúng dạng (ví dụ PA-2026-000123).",
                       "Malformed ticket code (e.g. PA-2026-000123).")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(TRACK, (ticket_code,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"Không tìm thấy phiếu {ticket_code}.", f"No ticket {ticket_code}.")
        cur.execute(PUBLIC_HISTORY, (row.pop("id"),))
        history = cur.fetchall()
    if not history:   # rows imported without a recorded history: at least when it arrived
        history = [{"to_status": "new", "at": row["reported_at"]}]
    row["status_vi"], row["status_en"] = STATUS_LABELS[row["status"]]
    row["open"] = row["status"] in OPEN_STATUSES
    row["history"] = [{"status": h["to_status"], "status_vi": STATUS_LABELS[h["to_status"]][0],
                       "status_en": STATUS_LABELS[h["to_status"]][1], "at": h["at"]} for h in history]
    return row
