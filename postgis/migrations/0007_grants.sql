-- read: SELECT on published data only (never the audit trail or ETL rejects, which hold raw rows).
-- ingest: write the layers and the ETL bookkeeping. owner: everything (it runs migrations).
GRANT USAGE ON SCHEMA public TO iocgis_read, iocgis_ingest;
GRANT SELECT ON admin_units, provinces, communes, landuse_zones, building_permits, schools, clinics,
  cameras, incidents, indicators, indicator_values, rasters, etl_runs TO iocgis_read;
GRANT INSERT, UPDATE, DELETE ON admin_units, landuse_zones, building_permits, schools, clinics,
  cameras, incidents, indicators, indicator_values, rasters TO iocgis_ingest;
GRANT SELECT, INSERT, UPDATE ON etl_runs, etl_rejects TO iocgis_ingest;
GRANT ALL ON ALL TABLES IN SCHEMA public TO iocgis_owner;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO iocgis_owner;
