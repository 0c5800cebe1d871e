"""pygeoapi's HTML pages, made to work on a closed network and to speak Vietnamese.

Its templates load Leaflet, Bootstrap and friends from public CDNs. Rather than copy and edit
pygeoapi's templates, each HTML answer under /ogc is rewritten: a CDN URL we have from npm points
at /vendor, and any other external script or stylesheet is dropped (the page loses a widget, the
browser never waits on the internet). `LOCAL` is the one table to change when a package is added.

pygeoapi has no Vietnamese catalog: webmap/locale/vi holds one for the text of its templates, kept
as a .po file (text, reviewable) and compiled at start-up to the .mo file Babel reads.
"""

from __future__ import annotations

import os
import re
from html import escape
from pathlib import Path
from urllib.parse import urlencode

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_SOURCE = Path(__file__).parent / "locale"
# The languages offered in each page's menu: `lang` value -> its own name.
LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}
NAV = '<ul class="nav nav-pills">'

# CDN URL prefix -> our /vendor path prefix (package versions pinned in package.json).
LOCAL: dict[str, str] = {
    "https://unpkg.com/leaflet@1.3.1/dist/": "/vendor/leaflet/dist/",
    "https://cdnjs.cloudflare.com/ajax/libs/leaflet/1.3.1/": "/vendor/leaflet/dist/",
    "https://unpkg.com/bootstrap@5.1.3/dist/": "/vendor/bootstrap/dist/",
    "https://unpkg.com/leaflet.markercluster/dist/": "/vendor/leaflet.markercluster/dist/",
    "https://unpkg.com/leaflet-draw@1.0.4/dist/": "/vendor/leaflet-draw/dist/",
}

_TAG = re.compile(
    r"""<script\b[^>]*\bsrc=["'](?P<src>https?://[^"']+)["'][^>]*>\s*</script>"""
    r"""|<link\b[^>]*\bhref=["'](?P<href>https?://[^"']+)["'][^>]*/?>""",
    re.IGNORECASE)


def localise(html: str, own_origin: str) -> str:
    """Point known CDN assets at /vendor and drop the other external scripts and stylesheets."""
    for cdn, local in LOCAL.items():
        html = html.replace(cdn, local)

    def keep_or_drop(match: re.Match) -> str:
        url = match["src"] or match["href"]
        tag = match[0]
        if url.startswith(own_origin):
            return tag
        if match["href"] and not re.search(r"""rel=["']?(stylesheet|icon|shortcut icon)""", tag, re.IGNORECASE):
            return tag  # an ordinary link (rel=alternate, canonical) loads nothing
        return f"<!-- IOC-GIS: bỏ tài nguyên ngoài / external asset dropped: {url} -->"

    return _TAG.sub(keep_or_drop, html)


def compiled_catalogs(target: Path) -> Path:
    """The .po catalogs of LOCALE_SOURCE compiled under `target` (pygeoapi's `server.locale_dir`),
    each only when its .mo is missing or older; written aside and renamed, as workers start at once."""
    for po in LOCALE_SOURCE.glob("*/LC_MESSAGES/*.po"):
        mo = target / po.relative_to(LOCALE_SOURCE).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as source:
            catalog = read_po(source)
        partial = mo.with_name(f"{mo.name}.{os.getpid()}")
        with partial.open("wb") as out:
            write_mo(out, catalog)
        os.replace(partial, mo)
    return target


def language_menu(html: str, args: list[tuple[str, str]]) -> str:
    """A link to the same page in each language, first in the page's menu (pygeoapi has none);
    `args` is the request's query string, whose `lang` is replaced."""
    kept = [(key, value) for key, value in args if key != "lang"]
    items = "".join(
        f'<li class="nav-item"><a class="nav-link" hreflang="{code}" lang="{code}" '
        f'href="?{escape(urlencode([*kept, ("lang", code)]))}">{name}</a></li>'
        for code, name in LANGUAGES.items())
    return html.replace(NAV, NAV + items, 1)


def carry_language(html: str, lang: str | None, base: str) -> str:
    """A language picked with `lang` stays picked: pygeoapi's own links (breadcrumbs, collections,
    items) leave it out, so each of its pages under `base` gets it added, and a reader who chose
    English is not sent back to the browser's language one click later."""
    if lang not in LANGUAGES:
        return html

    def add(match: re.Match) -> str:
        url = match["url"]
        if "lang=" in url or url.startswith(f"{base}/static/"):
            return match[0]
        return f'href="{url}{"&amp;" if "?" in url else "?"}lang={lang}"'

    return re.sub(rf'href="(?P<url>{re.escape(base)}(?:[/?#][^"]*)?)"', add, html)

