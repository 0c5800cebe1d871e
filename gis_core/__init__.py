"""IOC-GIS domain and database core. Knows nothing of Flask."""
