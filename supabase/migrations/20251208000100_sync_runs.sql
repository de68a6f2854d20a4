-- One row per run of the HubSpot sync (lib/hubspot/sync.py): what it was asked to do,
-- how it ended, and what it did, for the admin dashboard. A new table: no lock on
-- anything that bookings use.
--
-- status:  running       the run holds the lease and is working (or crashed: the next
--                        run marks it abandoned once its lease has expired)
--          succeeded     every phase finished, every record went through
--          partial       every phase finished, some records failed (sync_run_errors)
--          deadline      stopped at its time budget; the next run continues
--          daily_limit   HubSpot's daily call budget is spent; the next run continues
--          rate_limited  HubSpot kept answering 429 after our waits
--          failed        HubSpot unavailable after retries, or an unexpected error
--          lease_lost    another run took the lease (this one was presumed dead)
--          refused       another run held the lease; this one did nothing
--          abandoned     crashed or killed while running (found by a later run)
-- phases:  {"exams": {"created", "updated", "unchanged", "failed", "calls",
--           "duration_ms"}, "contacts": ..., "credits": ..., "bookings": ..., "seats": ...}
create table if not exists hubspot_sync.sync_runs (
  id               uuid        primary key,
  mode             text        not null check (mode in ('delta', 'full')),
  trigger          text        not null,
  status           text        not null check (status in (
                     'running', 'succeeded', 'partial', 'deadline', 'daily_limit',
                     'rate_limited', 'failed', 'lease_lost', 'refused', 'abandoned')),
  resumed          boolean     not null default false,
  started_at       timestamptz not null default now(),
  last_progress_at timestamptz not null default now(),
  finished_at      timestamptz,
  duration_ms      integer,
  phases           jsonb       not null default '{}',
  api_calls        integer     not null default 0,
  rate_limited     integer     not null default 0,
  retries          integer     not null default 0,
  budget_wait_ms   integer     not null default 0,
  error_count      integer     not null default 0,
  -- The first errors of the run (the dashboard's summary); all of them are rows of
  -- sync_run_errors.
  errors           jsonb       not null default '[]',
  message          text
);
create index if not exists idx_sync_runs_started_at on hubspot_sync.sync_runs (started_at desc);
alter table hubspot_sync.sync_runs enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_runs to service_role;
