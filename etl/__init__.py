"""IOC-GIS ETL: keep the published layers current from files and upstream systems.

extract (readers, upstream) -> validate -> transform (CRS, geometry repair, commune, text) -> load
(COPY into staging, one transaction upserting by natural key). Every run is recorded in `etl_runs`,
every rejected row in `etl_rejects`; past states of the layers live in the `history` schema.
"""
