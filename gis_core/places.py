"""Find administrative units by name, typed with or without diacritics ("lao cai" finds Lào Cai)."""

from __future__ import annotations

from dataclasses import dataclass

from geoalchemy2 import functions as gf
from sqlalchemy import Engine, case, func, or_, select
from sqlalchemy.orm import Session

from .errors import InvalidParameter
from .models import AdminUnit
from .text import unaccent

MAX_QUERY = 100


@dataclass(frozen=True)
class Place:
    code: str
    level: str
    name: str
    full_name: str
    bbox: tuple[float, float, float, float]


def search_places(engine: Engine, text: str, limit: int = 10) -> list[Place]:
    """Current units whose unaccented name contains the query, exact and prefix matches first."""
    query = unaccent(text or "")
    if not query:
        raise InvalidParameter("Cần nhập tên địa danh (q).", "A place name is required (q).")
    if len(query) > MAX_QUERY:
        raise InvalidParameter(f"Tên tìm kiếm dài quá {MAX_QUERY} ký tự.",
                               f"The search text is longer than {MAX_QUERY} characters.")
    if not 1 <= limit <= 50:
        raise InvalidParameter("limit phải từ 1 đến 50.", "limit must be between 1 and 50.")
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    name = AdminUnit.name_unaccent
    rank = case((name == query, 0), (name.startswith(query, autoescape=True), 1), else_=2)
    envelope = gf.ST_Envelope(AdminUnit.geom)
    statement = (
        select(AdminUnit.code, AdminUnit.level, AdminUnit.name, AdminUnit.full_name,
               gf.ST_XMin(envelope), gf.ST_YMin(envelope), gf.ST_XMax(envelope), gf.ST_YMax(envelope))
        .where(AdminUnit.valid_to.is_(None), AdminUnit.geom.is_not(None),
               or_(name.like(pattern, escape="\\"), func.similarity(name, query) > 0.45))
        .order_by(rank, func.similarity(name, query).desc(), AdminUnit.name)
        .limit(limit)
    )
    with Session(engine) as session:
        rows = session.execute(statement).all()
    return [Place(r[0], r[1], r[2], r[3], (r[4], r[5], r[6], r[7])) for r in rows]
