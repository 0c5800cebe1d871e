"""pygeoapi's HTML pages, made to work on a closed network.

Its templates load Leaflet, Bootstrap and friends from public CDNs. Rather than copy and edit
pygeoapi's templates, each HTML answer under /ogc is rewritten: a CDN URL we have from npm points
at /vendor, and any other external script or stylesheet is dropped (the page loses a widget, the
browser never waits on the internet). `LOCAL` is the one table to change when a package is added.
"""

from __future__ import annotations

import re

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
