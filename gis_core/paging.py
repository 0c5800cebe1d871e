"""Paging and vendor parameters of OGC API Features items, beyond what pygeoapi hands a provider.

pygeoapi calls a provider's `query` with parsed parameters only: no URL, no parameter it does not
know. The web layer therefore publishes the items request as the client sent it (`ItemsRequest`,
a context variable set around pygeoapi's handler, see webmap/ogc.py), and the provider reads from it
its two vendor parameters and the base of its `next`/`prev` links:

- `cursor`: an opaque position (the sort keys of a page's last row, or first row going back) that
  `next` and `prev` links carry, so that page N+1 is an index range scan rather than an OFFSET.
  Plain `offset` keeps working (ArcGIS Pro pages by offset) and gives the same rows.
- `asOf`: the layer as it was at a date or instant, read from history.<table> (migration 0008). It
  is not `datetime`, which in OGC API Features filters on the features' own time field.

A GeoJSON page goes out with its features as PostgreSQL wrote them (`RawFeatures`): pygeoapi
still builds the rest of the document (links, timeStamp, headers), around a placeholder that the
web layer swaps for the features' JSON text, instead of decoding 100 features and encoding them again.

A cursor carries a checksum so that an altered or truncated one is refused with a 400. It is not a
secret: a cursor made by hand can only name a position in the same order, which `offset` already can.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from .errors import InvalidParameter

CURSOR_FORMAT = 1
_CHECKSUM_KEY = b"iocgis-cursor"
_TAG = 6                  # bytes of checksum
MAX_CURSOR = 4096         # characters: a cursor holds a few sort keys, never a document
VIETNAM = dt.timezone(dt.timedelta(hours=7))


@dataclass(frozen=True)
class ItemsRequest:
    """An items request as the client wrote it: the items URL and its query arguments, in order."""

    url: str
    args: tuple[tuple[str, str], ...]

    def arg(self, name: str) -> str | None:
        return next((value for key, value in self.args if key == name), None)

    def link(self, rel: str, title: str, **replace: str | int) -> dict:
        """A link to this same query with `offset` and `cursor` replaced by `replace`."""
        args = [(k, v) for k, v in self.args if k not in ("offset", "cursor")]
        args += [(k, str(v)) for k, v in replace.items()]
        href = self.url + ("?" + urlencode(args, quote_via=quote, safe=",") if args else "")
        return {"rel": rel, "type": "application/geo+json", "title": title, "href": href}


ITEMS_REQUEST: ContextVar[ItemsRequest | None] = ContextVar("iocgis_items_request", default=None)


@contextlib.contextmanager
def items_request(url: str, args: Sequence[tuple[str, str]]) -> Iterator[ItemsRequest]:
    """Publish the items request to the provider for the duration of pygeoapi's handler."""
    request = ItemsRequest(url, tuple(args))
    token = ITEMS_REQUEST.set(request)
    try:
        yield request
    finally:
        ITEMS_REQUEST.reset(token)


class RawFeatures:
    """The features of one GeoJSON page as JSON text, held while pygeoapi serialises the page
    around a placeholder: a list of as many copies of a random token as there are features, so
    that pygeoapi counts them right, and that no link or title of the page can contain."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(12)
        self.text: str | None = None
        self.count = 0

    def hold(self, text: str, count: int) -> list[str]:
        self.text, self.count = text, count
        return [self.token] * count

    def splice(self, body: str) -> str:
        """`body`, pygeoapi's compact JSON of the page, with the features' text in place of the
        placeholder; escaped as pygeoapi escapes its whole document (< and > as &lt; and &gt;)."""
        if self.text is None:
            return body
        placeholder = "[" + ",".join([f'"{self.token}"'] * self.count) + "]"
        head, found, tail = body.partition(placeholder)
        if not found:
            raise RuntimeError("the page's features placeholder is missing from pygeoapi's document")
        return head + self.text.replace("<", "&lt;").replace(">", "&gt;") + tail


RAW_FEATURES: ContextVar[RawFeatures | None] = ContextVar("iocgis_raw_features", default=None)


@contextlib.contextmanager
def raw_features() -> Iterator[RawFeatures]:
    """Let the provider hand over the page's features as text, for the duration of pygeoapi's handler."""
    raw = RawFeatures()
    token = RAW_FEATURES.set(raw)
    try:
        yield raw
    finally:
        RAW_FEATURES.reset(token)


# How the two vendor parameters appear in the OpenAPI document (webmap/ogc.py adds them to every
# items operation), so that clients and schemathesis know them.
OPENAPI_PARAMETERS = {
    "cursor": {
        "name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
        "description": "Vị trí trang (keyset), lấy từ liên kết next/prev; không dùng cùng offset. / "
                       "A page position (keyset) taken from a next/prev link; not used with offset.",
    },
    "asOf": {
        "name": "asOf", "in": "query", "required": False, "schema": {"type": "string"},
        "example": "2026-01-01",
        "description": "Lớp như tại một ngày (cuối ngày, giờ Việt Nam) hoặc thời điểm ISO 8601, từ lịch sử "
                       "của lớp; khác với datetime (lọc theo trường thời gian). / The layer as it was at a date "
                       "(its end, Việt Nam time) or ISO 8601 instant, from the layer's history; unlike "
                       "datetime, which filters on the features' time field.",
    },
}


def _bad_cursor() -> InvalidParameter:
    return InvalidParameter(
        "cursor không hợp lệ (bị sửa hoặc bị cắt); hãy đi theo liên kết next/prev của trang trước.",
        "invalid cursor (altered or truncated); follow the previous page's next/prev link.")


@dataclass(frozen=True)
class Cursor:
    sort: str                        # the sortby it was made for ('' for the id order), e.g. '-reported_at'
    values: tuple[str | None, ...]   # the sort keys of the row to start after (or before), id last, as text
    backward: bool = False           # a prev page: the rows before that row

    def encode(self) -> str:
        payload = json.dumps([CURSOR_FORMAT, "p" if self.backward else "n", self.sort, list(self.values)],
                             ensure_ascii=False, separators=(",", ":")).encode()
        tag = hashlib.blake2b(payload, key=_CHECKSUM_KEY, digest_size=_TAG).digest()
        return base64.urlsafe_b64encode(tag + payload).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        if not text or len(text) > MAX_CURSOR:
            raise _bad_cursor()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise _bad_cursor() from None
        tag, payload = raw[:_TAG], raw[_TAG:]
        if hashlib.blake2b(payload, key=_CHECKSUM_KEY, digest_size=_TAG).digest() != tag:
            raise _bad_cursor()
        try:
            version, direction, sort, values = json.loads(payload)
        except (ValueError, TypeError):
            raise _bad_cursor() from None
        if (version != CURSOR_FORMAT or direction not in ("n", "p") or not isinstance(sort, str)
                or not isinstance(values, list) or not values
                or not all(v is None or isinstance(v, str) for v in values)):
            raise _bad_cursor()
        return cls(sort, tuple(values), direction == "p")

    def check_sort(self, sort: str) -> None:
        if sort != self.sort:
            raise InvalidParameter(
                f"cursor được tạo cho sortby={self.sort!r}, không dùng được với sortby={sort!r}.",
                f"this cursor was made for sortby={self.sort!r}, not sortby={sort!r}.")


def parse_as_of(text: str) -> dt.datetime:
    """`asOf`: a date is the end of that day in Việt Nam (the layer as the day closed, as
    `iocgis etl as-of` reads it); a date-time without an offset is Việt Nam time."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), VIETNAM) - dt.timedelta(microseconds=1)
        instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError):
        raise InvalidParameter(
            f"asOf phải là một ngày hoặc thời điểm ISO 8601 (vd 2026-01-01), không phải {text[:40]!r}.",
            f"asOf must be an ISO 8601 date or date-time (e.g. 2026-01-01), not {text[:40]!r}.") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=VIETNAM)
