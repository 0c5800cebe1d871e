"""Who may do what: the one place for the role rules.

Roles, weakest first. `anonymous` is whoever is not logged in and shows no token (citizens, public
GIS clients); the others are people (web sessions) or machine clients (API tokens) with that role.

Pages: PAGES below, as data (also in the README). Layers: who may see a restricted field
(`restricted_to` of the field) and who may write a layer through OGC API Features transactions
(`writable_by`), and who may read a layer that is not public (`readable_by`), are declared per
layer in layers/*.yml and read here. `admin` is named in those lists like any other role: nothing
is implied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..registry import Field, Layer

ANONYMOUS = "anonymous"
ROLES = ("viewer", "planner", "operator", "steward", "admin")
ALL_ROLES = (ANONYMOUS, *ROLES)

ROLE_LABELS = {
    "anonymous": ("Công chúng", "Public"),
    "viewer": ("Cán bộ xem", "Staff viewer"),
    "planner": ("Cán bộ quy hoạch", "Planner"),
    "operator": ("Điều hành viên", "Operator"),
    "steward": ("Quản trị dữ liệu", "Data steward"),
    "admin": ("Quản trị hệ thống", "Administrator"),
}

# Each guarded area of the web app: the roles that may read it (GET) and the roles that may change
# something through it (POST and other unsafe methods). Everything else (/, /wall, /track, citizen
# reports, device endpoints with their own device tokens, public OGC collections) is open.
PAGES: dict[str, dict[str, frozenset[str]]] = {
    # /permits and its JSON: planners check permits; viewers (staff) may look, the page only reads.
    "permits": {"read": frozenset({"viewer", "planner", "admin"}), "write": frozenset({"planner", "admin"})},
    # /incidents board, its JSON and alerts: operators work there (reporter contacts are shown).
    "incidents": {"read": frozenset({"operator", "admin"}), "write": frozenset({"operator", "admin"})},
    # /admin/etl: data stewards see runs and rejects and re-run sources.
    "admin_etl": {"read": frozenset({"steward", "admin"}), "write": frozenset({"steward", "admin"})},
    # /admin/audit: the audit trail (who changed what, before and after values): administrators only.
    "admin_audit": {"read": frozenset({"admin"}), "write": frozenset({"admin"})},
}


def may_use(role: str, area: str, write: bool = False) -> bool:
    return role in PAGES[area]["write" if write else "read"]


def may_see_field(role: str, field: Field) -> bool:
    return not field.restricted or role in field.restricted_to


def visible_fields(role: str, layer: Layer) -> tuple[Field, ...]:
    return tuple(f for f in layer.fields if may_see_field(role, f))


def may_read_layer(role: str, layer: Layer) -> bool:
    return layer.public or role in layer.readable_by


def may_write_layer(role: str, layer: Layer) -> bool:
    return role in layer.writable_by and may_read_layer(role, layer)

