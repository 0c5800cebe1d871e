"""Building permits checked against the land-use plan in force on their application date.

The rules live in the database (landuse_zones, zoning_overlays, zoning_tolerances; migration 0010)
and the check is SQL (`zoning_evaluate` and `zoning_check_permits`, migrations 0011, 0017, 0020
and 0030): this package chooses what to check, hands it over in chunks, and turns the answer into
reports, pages and process outputs.
"""

from __future__ import annotations

from .check import Proposal, check_footprint, check_permits, permit_ids
from .footprint import parse_footprint

__all__ = ["Proposal", "check_footprint", "check_permits", "parse_footprint", "permit_ids"]
