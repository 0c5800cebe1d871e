"""Operators and citizens: reports, the incident workflow, camera heartbeats and events, alerts.

- `workflow`: the state machine (the one place that changes an incident's status), creation of
  incidents with routing to an agency and a due time from the category's SLA, the operators' list.
- `reports`: citizen reports validated field by field, photos sniffed, public tracking data.
- `cameras`: heartbeats, the offline sweep, AI events turned into de-duplicated incidents.
- `alerts`: threshold rules held as data, evaluated into alerts shown until acknowledged.
- `ratelimit`: the in-process token bucket the web layer puts in front of public reports.

Nothing here knows Flask; every function takes a psycopg connection (or the Database) from its caller.
"""
