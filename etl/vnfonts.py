"""The two legacy Vietnamese font encodings as Python codecs: "tcvn3" and "vni".

Before Unicode, Vietnamese text was typed in 8-bit fonts; shapefiles from departments still carry
it. Neither has a codec in Python or GDAL:

- TCVN3 (TCVN 5712:1993, the "ABC" fonts .VnTime, .VnArial): one byte per letter. The lower-case
  letters and the plain capitals Ă Â Ê Ô Ơ Ư Đ sit in 0xA1-0xFE; the toned capitals fill the gaps
  between them, 0x80-0x9F and a few C0 control positions. (The ABC "H" fonts such as .VnTimeH show
  the lower-case bytes as capitals: a file typed in one of them decodes to lower case, as every
  converter does; nothing in the bytes says which font was meant.)
- VNI-Windows (the VNI fonts, VNI-Times): a letter is its base letter followed by one byte for its
  marks, a Windows-1252 letter (lower case after a lower-case base, upper case after a capital);
  ơ ư đ, the toned i's and ỵ are bytes of their own.

The tables below are the layouts of those standards; decoding gives Unicode NFC. Importing this
module registers the codecs, so `b"L\\xb5o Cai".decode("tcvn3")` is "Lào Cai" anywhere after it.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Buffer

# The five tones, in the order both tables list them: huyền, hỏi, ngã, sắc, nặng.
TONES = ("\u0300", "\u0309", "\u0303", "\u0301", "\u0323")

# -- TCVN3 ----------------------------------------------------------------------------------------

# Each vowel: the bytes of its five toned forms (in TONES order), lower case then capitals.
TCVN3_TONED = {
    "a": ("B5 B6 B7 B8 B9", "80 81 82 83 84"),
    "ă": ("BB BC BD BE C6", "AF BA BF C0 85"),
    "â": ("C7 C8 C9 CA CB", "C1 C2 C3 C4 86"),
    "e": ("CC CE CF D0 D1", "87 88 89 8A 8B"),
    "ê": ("D2 D3 D4 D5 D6", "C5 CD D9 DA 8C"),
    "i": ("D7 D8 DC DD DE", "8D 8E 8F 90 91"),
    "o": ("DF E1 E2 E3 E4", "92 93 94 95 96"),
    "ô": ("E5 E6 E7 E8 E9", "DB E0 F0 FF 97"),
    "ơ": ("EA EB EC ED EE", "98 99 9A 9B 9C"),
    "u": ("EF F1 F2 F3 F4", "9D 9E 9F 01 02"),
    "ư": ("F5 F6 F7 F8 F9", "04 05 06 11 12"),
    "y": ("FA FB FC FD FE", "13 14 15 16 17"),
}
# The letters without a tone that ASCII lacks, capitals first; then the tones alone (combining).
TCVN3_PLAIN = {"Ă": 0xA1, "Â": 0xA2, "Ê": 0xA3, "Ô": 0xA4, "Ơ": 0xA5, "Ư": 0xA6, "Đ": 0xA7,
               "ă": 0xA8, "â": 0xA9, "ê": 0xAA, "ô": 0xAB, "ơ": 0xAC, "ư": 0xAD, "đ": 0xAE, "\u00a0": 0xA0}
TCVN3_MARKS = dict(zip(TONES, (0xB0, 0xB1, 0xB2, 0xB3, 0xB4), strict=True))


def _tcvn3() -> dict[str, int]:
    table: dict[str, int] = {**TCVN3_PLAIN, **TCVN3_MARKS}
    for base, (lower, upper) in TCVN3_TONED.items():
        for tone, lo, up in zip(TONES, lower.split(), upper.split(), strict=True):
            letter = unicodedata.normalize("NFC", base + tone)
            table[letter], table[letter.upper()] = int(lo, 16), int(up, 16)
    return table


TCVN3 = _tcvn3()                                   # character -> byte
_TCVN3_DECODE = {byte: ch for ch, byte in TCVN3.items()}        # as a latin-1 code point -> character

# -- VNI ------------------------------------------------------------------------------------------

# The byte after a base letter, lower case (a capital's is 0x20 lower: ù 0xF9 -> Ù 0xD9), for:
VNI_TONE = (0xF8, 0xFB, 0xF5, 0xF9, 0xEF)                       # the tone alone        ø û õ ù ï
VNI_CIRCUMFLEX = (0xE2, (0xE0, 0xE5, 0xE3, 0xE1, 0xE4))         # â ê ô, then toned     â; à å ã á ä
VNI_BREVE = (0xEA, (0xE8, 0xFA, 0xFC, 0xE9, 0xEB))              # ă, then toned         ê; è ú ü é ë
# Letters that are one byte of their own (their tones follow ơ and ư as above).
VNI_OWN = {"ơ": 0xF4, "ư": 0xF6, "đ": 0xF1, "ì": 0xEC, "ỉ": 0xE6, "ĩ": 0xF3, "í": 0xED, "ị": 0xF2, "ỵ": 0xEE}


def _vni() -> dict[str, bytes]:
    lower: dict[str, bytes] = {ch: bytes([b]) for ch, b in VNI_OWN.items()}
    for base in ("a", "e", "o", "u", "y", "ơ", "ư"):
        head = lower[base] if base in lower else base.encode("ascii")
        for tone, b in zip(TONES, VNI_TONE, strict=True):
            lower.setdefault(unicodedata.normalize("NFC", base + tone), head + bytes([b]))
    for bases, mark, (alone, toned) in (("aeo", "\u0302", VNI_CIRCUMFLEX), ("a", "\u0306", VNI_BREVE)):
        for base in bases:
            lower[unicodedata.normalize("NFC", base + mark)] = base.encode("ascii") + bytes([alone])
            for tone, b in zip(TONES, toned, strict=True):
                lower[unicodedata.normalize("NFC", base + mark + tone)] = base.encode("ascii") + bytes([b])
    # A capital: the base letter in capitals, each mark byte 0x20 lower (Windows-1252 capitals).
    return {**lower, **{ch.upper(): bytes(b - 0x20 if b >= 0xE0 else ord(chr(b).upper()) for b in code)
                        for ch, code in lower.items()}}


VNI = _vni()                                       # character -> bytes
# Decoding: the longest sequence first, so "ôù" is ớ before "ô" alone is ơ.
_VNI_DECODE = {code.decode("latin-1"): ch for ch, code in VNI.items()}
_VNI_PATTERN = re.compile("|".join(re.escape(k) for k in sorted(_VNI_DECODE, key=len, reverse=True)))

# -- codecs ---------------------------------------------------------------------------------------


def decode_tcvn3(data: Buffer, errors: str = "strict") -> tuple[str, int]:
    raw = bytes(data)
    return unicodedata.normalize("NFC", raw.decode("latin-1").translate(_TCVN3_DECODE)), len(raw)


def decode_vni(data: Buffer, errors: str = "strict") -> tuple[str, int]:
    raw = bytes(data)
    text = _VNI_PATTERN.sub(lambda m: _VNI_DECODE[m.group()], raw.decode("latin-1"))
    return unicodedata.normalize("NFC", text), len(raw)


def _encoder(name: str, table: dict):
    def encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
        out = bytearray()
        nfc = unicodedata.normalize("NFC", text)
        for i, ch in enumerate(nfc):
            code = table.get(ch)
            if code is not None:
                out += bytes([code]) if isinstance(code, int) else code
            elif ch.isascii():
                out.append(ord(ch))
            elif errors == "replace":
                out += b"?"
            elif errors != "ignore":
                raise UnicodeEncodeError(name, nfc, i, i + 1, f"{ch!r} has no {name} code")
        return bytes(out), len(text)

    return encode


CODECS = {
    "tcvn3": codecs.CodecInfo(_encoder("tcvn3", TCVN3), decode_tcvn3, name="tcvn3"),
    "vni": codecs.CodecInfo(_encoder("vni", VNI), decode_vni, name="vni"),
}
# How .cpg files and source declarations name them (compared upper-case, '-', '_' and ' ' ignored).
ALIASES = {"TCVN3": "tcvn3", "TCVN": "tcvn3", "TCVN5712": "tcvn3", "ABC": "tcvn3", "VN3": "tcvn3",
           "VNI": "vni", "VNIWIN": "vni", "VNIWINDOWS": "vni"}


def codec_name(name: str) -> str | None:
    """'tcvn3' or 'vni' for any of their usual names, else None."""
    return ALIASES.get(re.sub(r"[-_ ]", "", name.strip().upper()))


def _search(name: str) -> codecs.CodecInfo | None:
    found = codec_name(name)
    return CODECS[found] if found else None


codecs.register(_search)
