-- What an ad-hoc load (`iocgis etl load LAYER FILE ...`) was asked to do, so that /admin/etl can
-- run it again while its file is still there:
--   {"layer": "schools", "path": "/abs/path/truong.zip", "crs": null, "snapshot": false,
--    "tag": "etl:schools", "encoding": "tcvn3"}
-- NULL for declared sources (re-run by name from etl/sources/) and for runs made before this.
ALTER TABLE etl_runs ADD COLUMN request jsonb;
