-- permit_checks loses its index on verdict (0010): no query looks a check up by verdict (the map and
-- reports join checks to permits by permit_id, the wall counts every row with FILTER), and with three
-- values the planner would scan the table rather than use it. Every bulk check paid for it: about
-- 0.08 s of CPU per 100,000 rows written (bench/zoning_check.py).
DROP INDEX permit_checks_verdict_idx;
