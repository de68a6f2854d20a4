-- Dual-ID: Postgres may now create a booking before HubSpot does.
-- Online-safety: catalogue-only ALTERs (no rewrite, no scan), one table per file so
-- that the migration never holds a lock on one table while waiting for another: with
-- several tables in one transaction, a booking that touches them in the other order
-- deadlocks against us (tests/sql/test_migrations.py caught exactly that). The brief
-- ACCESS EXCLUSIVE lock is bounded by lock_timeout: we give up (and the runner
-- retries) rather than queue behind a long transaction while every booking queues
-- behind us. 1 s is the longest stall we accept for writers.
-- What was there already (the original team's own dual-ID attempt made the same
-- change): recorded, so that the rollback leaves it as it found it.
select supabase_migrations.keep('20251203000110', 'column', 'hubspot_sync.hubspot_bookings.hubspot_last_sync_at')
 where exists (select 1 from pg_attribute where attrelid = 'hubspot_sync.hubspot_bookings'::regclass
                and attname = 'hubspot_last_sync_at' and not attisdropped);
select supabase_migrations.keep('20251203000110', 'nullable', 'hubspot_sync.hubspot_bookings.hubspot_id')
 where exists (select 1 from pg_attribute where attrelid = 'hubspot_sync.hubspot_bookings'::regclass
                and attname = 'hubspot_id' and not attnotnull);

set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_bookings
  alter column hubspot_id drop not null,
  add column if not exists hubspot_last_sync_at timestamptz;
