-- The layer as it was on a date through OGC API Features (`asOf`, gis_core/paging.py): pages of
-- history.<layer> in id order, each the versions valid at that date after the previous page's last
-- id. Without an index on id every such page scans and sorts the whole history; with it a page is
-- an index range. (0008's partial index holds only the open versions, which an as-of date in the
-- past does not read.) One btree per history table: a bulk load pays for it once per row version.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['landuse_zones', 'building_permits', 'schools', 'clinics', 'cameras', 'incidents'] LOOP
    EXECUTE format('CREATE INDEX %I ON history.%I (id)', t || '_id_idx', t);
  END LOOP;
END $$;
