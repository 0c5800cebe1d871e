-- The incident workflow as data: categories with their deadline (SLA), the agencies that answer,
-- routing rules (category x commune -> agency), every status change, the agency's public answer,
-- report photos and per-year ticket counters. The state machine itself lives in one place,
-- gis_core/incidents/workflow.py; these tables hold what it decides.
--
-- `incidents` itself is not altered: its columns are mirrored by gis_core/models.py and published
-- by the layer registry, so workflow details sit in a 1:1 side table instead.

CREATE TABLE incident_categories (
  code       text PRIMARY KEY CHECK (code IN
               ('traffic', 'environment', 'urban_order', 'landslide', 'flood', 'fire',
                'infrastructure', 'security', 'other')),   -- the same list as incidents.category
  name_vi    text NOT NULL CHECK (name_vi <> ''),
  name_en    text NOT NULL CHECK (name_en <> ''),
  sla_hours  integer NOT NULL CHECK (sla_hours > 0),
  citizen    boolean NOT NULL DEFAULT true,               -- offered on the public report form
  sort_order integer NOT NULL DEFAULT 100
);

-- Deadlines as the demo generator uses them (gis_core/demo/vocab.py SLA_HOURS): fires within hours,
-- paperwork-type matters within a week.
INSERT INTO incident_categories (code, name_vi, name_en, sla_hours, sort_order) VALUES
  ('traffic',        'Giao thông',                   'Traffic',                 24, 10),
  ('environment',    'Môi trường',                   'Environment',            120, 20),
  ('urban_order',    'Trật tự đô thị',               'Urban order',             72, 30),
  ('infrastructure', 'Hạ tầng, điện, nước',          'Infrastructure',         168, 40),
  ('landslide',      'Sạt lở đất',                   'Landslide',               48, 50),
  ('flood',          'Ngập lụt, lũ quét',            'Flood, flash flood',      24, 60),
  ('fire',           'Cháy, nổ',                     'Fire',                     6, 70),
  ('security',       'An ninh, trật tự',             'Security',                24, 80),
  ('other',          'Khác',                         'Other',                  168, 90);

CREATE TABLE agencies (
  code    text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
  name_vi text NOT NULL CHECK (name_vi <> ''),
  name_en text NOT NULL CHECK (name_en <> ''),
  active  boolean NOT NULL DEFAULT true
);

INSERT INTO agencies (code, name_vi, name_en) VALUES
  ('ubnd_xa',       'Ủy ban nhân dân xã, phường sở tại',           'People''s Committee of the commune'),
  ('so_xay_dung',   'Sở Xây dựng',                                 'Department of Construction'),
  ('so_nn_mt',      'Sở Nông nghiệp và Môi trường',                'Department of Agriculture and Environment'),
  ('cong_an_tinh',  'Công an tỉnh',                                'Provincial Police'),
  ('pccc',          'Phòng Cảnh sát PCCC và CNCH, Công an tỉnh',   'Fire and Rescue Police'),
  ('ban_chi_huy_pctt', 'Ban Chỉ huy Phòng thủ dân sự tỉnh',        'Provincial Civil Defence Command');

-- The most specific rule wins: commune + category, then commune, then category, then the default.
CREATE TABLE routing_rules (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  category     text REFERENCES incident_categories (code) ON DELETE CASCADE,   -- NULL: any category
  commune_code text REFERENCES admin_units (code) ON DELETE CASCADE,          -- NULL: any commune
  agency_code  text NOT NULL REFERENCES agencies (code),
  note         text,
  UNIQUE NULLS NOT DISTINCT (category, commune_code)
);

-- Province-wide rules only: commune-specific ones name communes, which arrive with the boundaries.
INSERT INTO routing_rules (category, commune_code, agency_code) VALUES
  (NULL,             NULL, 'ubnd_xa'),
  ('traffic',        NULL, 'cong_an_tinh'),
  ('security',       NULL, 'cong_an_tinh'),
  ('fire',           NULL, 'pccc'),
  ('environment',    NULL, 'so_nn_mt'),
  ('landslide',      NULL, 'ban_chi_huy_pctt'),
  ('flood',          NULL, 'ban_chi_huy_pctt'),
  ('infrastructure', NULL, 'so_xay_dung'),
  ('urban_order',    NULL, 'ubnd_xa');

CREATE FUNCTION incident_route(p_category text, p_commune text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT agency_code FROM routing_rules
  WHERE (category = p_category OR category IS NULL)
    AND (commune_code = p_commune OR commune_code IS NULL)
  ORDER BY (commune_code IS NOT NULL) DESC, (category IS NOT NULL) DESC
  LIMIT 1
$$;

-- Workflow details of one incident. Rows of the demo (and of older data) may have none: readers
-- LEFT JOIN and fall back on incident_route().
CREATE TABLE incident_workflow (
  incident_id   bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
  agency_code   text REFERENCES agencies (code),
  answer        text CHECK (length(answer) <= 4000),          -- the agency's public answer
  reject_reason text CHECK (length(reject_reason) <= 2000),   -- public too: why it was refused
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_workflow_agency_idx ON incident_workflow (agency_code);

-- Every status change: who, when, from what to what, and the operator's (internal) comment.
-- from_status NULL is the creation of the incident.
CREATE TABLE incident_transitions (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
  from_status text CHECK (from_status IN ('new', 'assigned', 'in_progress', 'resolved', 'closed', 'rejected')),
  to_status   text NOT NULL CHECK (to_status IN ('new', 'assigned', 'in_progress', 'resolved', 'closed', 'rejected')),
  actor       text NOT NULL CHECK (actor <> '' AND length(actor) <= 200),
  at          timestamptz NOT NULL DEFAULT now(),
  comment     text CHECK (length(comment) <= 4000),
  CHECK (from_status IS DISTINCT FROM to_status)
);
CREATE INDEX incident_transitions_incident_idx ON incident_transitions (incident_id, at);

-- Photos sent with citizen reports. Kept in the database so that a report and its photo commit
-- together; the web layer caps the size and sniffs the type before anything reaches here.
CREATE TABLE incident_photos (
  incident_id bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
  media_type  text NOT NULL CHECK (media_type IN ('image/jpeg', 'image/png', 'image/webp')),
  sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  bytes       bytea NOT NULL CHECK (octet_length(bytes) BETWEEN 1 AND 5242880)
);

-- Ticket numbers run per (local) year: PA-2026-000123. The demo numbers its own rows from 1, so
-- the counters start from the highest number already present; the allocator also re-syncs from
-- the table if it ever meets a code that exists (a demo reloaded after real reports).
CREATE TABLE ticket_counters (
  prefix text NOT NULL CHECK (prefix ~ '^[A-Z]{2,6}$'),
  year   integer NOT NULL CHECK (year BETWEEN 2000 AND 2999),
  last   bigint NOT NULL CHECK (last >= 0),
  PRIMARY KEY (prefix, year)
);
INSERT INTO ticket_counters (prefix, year, last)
SELECT 'PA', substring(ticket_code FROM 4 FOR 4)::int, max(substring(ticket_code FROM 9)::bigint)
FROM incidents WHERE ticket_code ~ '^PA-[0-9]{4}-[0-9]+$'
GROUP BY 2;

GRANT SELECT ON incident_categories, agencies, routing_rules TO iocgis_read;
GRANT INSERT, UPDATE, DELETE ON incident_categories, agencies, routing_rules, incident_workflow,
  incident_transitions, incident_photos, ticket_counters TO iocgis_ingest;
GRANT SELECT ON incident_workflow, incident_transitions, incident_photos, ticket_counters TO iocgis_ingest;
GRANT ALL ON ALL TABLES IN SCHEMA public TO iocgis_owner;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO iocgis_owner;
