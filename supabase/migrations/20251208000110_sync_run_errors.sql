-- Every record a sync run could not bring across, one row each, with HubSpot's
-- correlation id when HubSpot refused it: one bad record never blocks the others, and
-- the dashboard shows which ones need a person. severity 'warning' marks a record
-- that went through but deserves a look (e.g. a credit balance HubSpot lowered below
-- what the student had left). A new table: no lock on anything bookings use.
create table if not exists hubspot_sync.sync_run_errors (
  id             bigserial   primary key,
  run_id         uuid        not null,
  phase          text        not null,
  record_id      text,
  hubspot_id     text,
  severity       text        not null default 'error' check (severity in ('error', 'warning')),
  category       text        not null,
  message        text        not null,
  correlation_id text,
  created_at     timestamptz not null default now()
);
create index if not exists idx_sync_run_errors_run on hubspot_sync.sync_run_errors (run_id, id);
create index if not exists idx_sync_run_errors_record on hubspot_sync.sync_run_errors (record_id, created_at);
alter table hubspot_sync.sync_run_errors enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_run_errors to service_role;
grant usage, select on sequence hubspot_sync.sync_run_errors_id_seq to service_role;
