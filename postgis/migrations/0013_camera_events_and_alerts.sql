-- AI camera events (turned into incidents, de-duplicated per camera and kind within a window),
-- threshold alert rules held as data, the alerts they fire, and the public view of reports.

-- What an AI camera can report, the incident category it becomes, how long a repeat of the same
-- kind from the same camera counts as the same situation, and the confidence below which an event
-- is kept but raises nothing.
CREATE TABLE camera_event_kinds (
  kind           text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
  category       text NOT NULL REFERENCES incident_categories (code),
  name_vi        text NOT NULL CHECK (name_vi <> ''),
  name_en        text NOT NULL CHECK (name_en <> ''),
  dedup_window_s integer NOT NULL DEFAULT 900 CHECK (dedup_window_s > 0),
  min_confidence numeric(4, 3) NOT NULL DEFAULT 0.5 CHECK (min_confidence BETWEEN 0 AND 1)
);

INSERT INTO camera_event_kinds (kind, category, name_vi, name_en, dedup_window_s, min_confidence) VALUES
  ('traffic_jam',      'traffic',     'ùn tắc giao thông',               'traffic jam',              1800, 0.6),
  ('wrong_way',        'traffic',     'phương tiện đi ngược chiều',      'vehicle driving wrong way', 300, 0.7),
  ('accident',         'traffic',     'va chạm giao thông',              'traffic accident',          900, 0.6),
  ('encroachment',     'urban_order', 'lấn chiếm lòng đường, vỉa hè',    'road or pavement encroachment', 3600, 0.6),
  ('illegal_dumping',  'environment', 'đổ rác không đúng nơi quy định',  'illegal dumping',          3600, 0.6),
  ('crowd',            'security',    'tụ tập đông người bất thường',    'unusual crowd',             900, 0.6),
  ('intrusion',        'security',    'người lạ xâm nhập',               'intrusion',                 600, 0.7),
  ('smoke',            'fire',        'khói, nghi cháy',                 'smoke, possible fire',      900, 0.5),
  ('fire',             'fire',        'đám cháy',                        'fire',                      900, 0.5),
  ('water_rising',     'flood',       'mực nước dâng nhanh',             'water rising fast',        1800, 0.5),
  ('landslide',        'landslide',   'sạt lở đất đá',                   'landslide',                3600, 0.5),
  ('animal_on_road',   'other',       'gia súc đi vào lòng đường',       'livestock on the road',     900, 0.6);

CREATE TABLE camera_events (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  camera_id     bigint NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
  kind          text NOT NULL REFERENCES camera_event_kinds (kind),
  confidence    numeric(4, 3) NOT NULL CHECK (confidence BETWEEN 0 AND 1),
  observed_at   timestamptz NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  incident_id   bigint REFERENCES incidents (id) ON DELETE CASCADE,   -- part of that incident's record
  duplicate     boolean NOT NULL DEFAULT false,     -- attached to an incident an earlier event raised
  snapshot_type text CHECK (snapshot_type IN ('image/jpeg', 'image/png', 'image/webp')),
  snapshot      bytea CHECK (octet_length(snapshot) <= 2097152),
  CHECK ((snapshot IS NULL) = (snapshot_type IS NULL)),
  CHECK (NOT duplicate OR incident_id IS NOT NULL)
);
-- The de-duplication lookup: the latest event of one camera and kind.
CREATE INDEX camera_events_dedup_idx ON camera_events (camera_id, kind, observed_at DESC);
CREATE INDEX camera_events_incident_idx ON camera_events (incident_id);

-- Threshold rules. `kind` says which evaluator reads `params` (gis_core/incidents/alerts.py):
--   indicator_target  {"indicator": code, "margin": n}: latest value per commune beyond the
--                     indicator's target (above it when lower is better, below it otherwise)
--   rainfall_hazard   {"indicator": "rainfall", "min_mm": n, "raster": name, "min_class": c,
--                      "min_share": s}: rain above min_mm in communes where at least share s of
--                     the hazard raster's cells are of class >= c
--   open_incidents    {"max_open": n}: more than n incidents still open in a commune
CREATE TABLE alert_rules (
  code      text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
  kind      text NOT NULL CHECK (kind IN ('indicator_target', 'rainfall_hazard', 'open_incidents')),
  name_vi   text NOT NULL CHECK (name_vi <> ''),
  name_en   text NOT NULL CHECK (name_en <> ''),
  severity  text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
  params    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
  enabled   boolean NOT NULL DEFAULT true
);

INSERT INTO alert_rules (code, kind, name_vi, name_en, severity, params) VALUES
  ('poverty_above_target', 'indicator_target', 'Tỷ lệ hộ nghèo vượt mục tiêu',
   'Poverty rate beyond its target', 'info', '{"indicator": "poverty_rate", "margin": 0}'),
  ('reports_late', 'indicator_target', 'Tỷ lệ phản ánh giải quyết đúng hạn dưới mục tiêu',
   'Citizen reports resolved on time below target', 'warning', '{"indicator": "reports_on_time", "margin": 0}'),
  ('landslide_rain', 'rainfall_hazard', 'Mưa lớn trên vùng nguy cơ sạt lở cao',
   'Heavy rain over high landslide hazard', 'critical',
   '{"indicator": "rainfall", "min_mm": 250, "raster": "laocai_landslide_hazard", "min_class": 3, "min_share": 0.2}'),
  ('open_incident_backlog', 'open_incidents', 'Tồn đọng phản ánh chưa xử lý',
   'Backlog of open incidents', 'warning', '{"max_open": 25}');

CREATE TABLE alerts (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rule_code       text NOT NULL REFERENCES alert_rules (code) ON DELETE CASCADE,
  severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  fired_at        timestamptz NOT NULL DEFAULT now(),
  last_seen_at    timestamptz NOT NULL DEFAULT now(),   -- the last evaluation that still found it
  reason_vi       text NOT NULL,
  reason_en       text NOT NULL,
  communes        text[] NOT NULL CHECK (cardinality(communes) > 0),
  details         jsonb NOT NULL DEFAULT '{}',
  fingerprint     text NOT NULL,                        -- the situation: rule + affected communes
  acknowledged_at timestamptz,
  acknowledged_by text,
  CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
-- One alert per rule is shown at a time, until acknowledged; evaluations refresh it.
CREATE UNIQUE INDEX alerts_active_rule_idx ON alerts (rule_code) WHERE acknowledged_at IS NULL;
CREATE INDEX alerts_fingerprint_idx ON alerts (rule_code, fingerprint);

-- Reports as the public may see them: open and answered ones, without reporter details, with the
-- answering agency. Ready to be published as a layer (layers/ and the OGC config are another area).
CREATE VIEW public_reports AS
  SELECT i.id, i.ticket_code, i.category, i.source, i.status, i.reported_at, i.due_at, i.resolved_at,
         i.commune_code, i.description, coalesce(w.agency_code, incident_route(i.category, i.commune_code))
         AS agency_code, w.answer,
         (i.status IN ('new', 'assigned', 'in_progress') AND i.due_at < now()) AS overdue, i.geom
  FROM incidents i LEFT JOIN incident_workflow w ON w.incident_id = i.id
  WHERE i.status <> 'rejected';

GRANT SELECT ON camera_event_kinds, alert_rules, alerts, public_reports TO iocgis_read;
GRANT INSERT, UPDATE, DELETE ON camera_event_kinds, alert_rules, alerts, camera_events TO iocgis_ingest;
GRANT SELECT ON camera_events TO iocgis_ingest;
GRANT ALL ON ALL TABLES IN SCHEMA public TO iocgis_owner;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO iocgis_owner;
