"""pygeoapi process plugins that are not part of one domain area (zoning has its own)."""
