"""Typed table models (SQLAlchemy 2 + GeoAlchemy2) for application queries.

The schema itself is owned by the SQL migrations in postgis/; these models mirror it, and a test
compares them column by column with the migrated database so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import ARRAY, ForeignKey, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AdminUnit(Base):
    __tablename__ = "admin_units"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("admin_units.code"))
    level: Mapped[str]
    kind: Mapped[str]
    name: Mapped[str]
    name_en: Mapped[str | None]
    full_name: Mapped[str]
    full_name_en: Mapped[str | None]
    name_unaccent: Mapped[str]
    area_km2: Mapped[Decimal | None]
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]
    source: Mapped[str]
    geom: Mapped[WKBElement | None] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))


class LanduseZone(Base):
    __tablename__ = "landuse_zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_name: Mapped[str]
    decision_no: Mapped[str]
    decision_date: Mapped[date]
    zone_code: Mapped[str]
    zone_type: Mapped[str]
    allowed_uses: Mapped[list[str]] = mapped_column(ARRAY(Text))
    conditional_uses: Mapped[list[str]] = mapped_column(ARRAY(Text))
    max_height_m: Mapped[Decimal | None]
    max_floors: Mapped[int | None]
    max_coverage_pct: Mapped[Decimal | None]
    min_setback_m: Mapped[Decimal | None]
    commune_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code"))
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]
    source: Mapped[str]
    geom: Mapped[WKBElement] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))


class BuildingPermit(Base):
    __tablename__ = "building_permits"

    id: Mapped[int] = mapped_column(primary_key=True)
    permit_no: Mapped[str]
    applicant_name: Mapped[str]
    applicant_id_no: Mapped[str | None]
    address: Mapped[str]
    address_unaccent: Mapped[str]
    commune_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code"))
    intended_use: Mapped[str]
    floors: Mapped[int]
    height_m: Mapped[Decimal]
    footprint_area_m2: Mapped[Decimal]
    parcel_area_m2: Mapped[Decimal | None]
    status: Mapped[str]
    applied_on: Mapped[date]
    issued_on: Mapped[date | None]
    expires_on: Mapped[date | None]
    source: Mapped[str]
    geom: Mapped[WKBElement] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str]
    name: Mapped[str]
    name_unaccent: Mapped[str]
    level: Mapped[str]
    ownership: Mapped[str]
    students: Mapped[int | None]
    address: Mapped[str | None]
    commune_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code"))
    source: Mapped[str]
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str]
    name: Mapped[str]
    name_unaccent: Mapped[str]
    kind: Mapped[str]
    beds: Mapped[int | None]
    address: Mapped[str | None]
    commune_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code"))
    source: Mapped[str]
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str]
    name: Mapped[str]
    kind: Mapped[str]
    status: Mapped[str]
    last_seen: Mapped[datetime | None]
    heartbeat_interval_s: Mapped[int]
    stream_url: Mapped[str | None]
    ai_enabled: Mapped[bool]
    commune_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code"))
    source: Mapped[str]
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_code: Mapped[str]
    category: Mapped[str]
    source: Mapped[str]
    status: Mapped[str]
    reported_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    commune_code: Mapped[str] = mapped_column(ForeignKey("admin_units.code"))
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id"))
    description: Mapped[str]
    reporter_name: Mapped[str | None]
    reporter_contact: Mapped[str | None]
    data_source: Mapped[str]
    geom: Mapped[WKBElement] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
