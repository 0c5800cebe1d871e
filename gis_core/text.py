"""Vietnamese text: NFC for storage, an unaccented lower-case copy for search."""

from __future__ import annotations

import unicodedata

# đ/Đ is a letter of its own, not d plus a combining mark, so NFD leaves it alone.
_EXTRA = str.maketrans({"đ": "d", "Đ": "D"})


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def unaccent(text: str) -> str:
    """'Lào Cai' -> 'lao cai', 'Đặc khu' -> 'dac khu'."""
    decomposed = unicodedata.normalize("NFD", text.translate(_EXTRA))
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return " ".join(stripped.lower().split())
