-- The sync's lease: at most one run at a time, in PostgreSQL because Redis may be
-- down when the cron fires. A row per lease name ('hubspot'); a run holds it while
-- expires_at is in the future and renews it with every batch it commits. A crashed
-- run stops renewing, so it blocks the next run for at most its ttl. Times come from
-- the database's clock, never a function instance's. A new table.
create table if not exists hubspot_sync.sync_lease (
  name        text        primary key,
  run_id      uuid        not null,
  acquired_at timestamptz not null default now(),
  renewed_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  ttl_s       integer     not null check (ttl_s > 0)
);
alter table hubspot_sync.sync_lease enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_lease to service_role;
