-- The replaced system made created_at, updated_at and synced_at of hubspot_bookings
-- `timestamp` without time zone. What it stored there is UTC wall-clock time: its
-- code writes JavaScript ISO strings ending in Z (PostgreSQL drops the offset for a
-- naive column) and Supabase runs with TimeZone UTC, so now() is UTC too. Every later
-- migration and the API compare these with now() and send them with an offset, so
-- they become timestamptz, read as UTC.
--
-- Online: with TimeZone UTC for the transaction, PostgreSQL (12+) changes timestamp to
-- timestamptz in the catalogue only, with no table rewrite (tests/sql/
-- test_legacy_baseline.py checks the table's file node is unchanged); the indexes on
-- these columns are rebuilt, which on tables of this size takes milliseconds. The old
-- app keeps writing ISO strings, which a timestamptz column reads at least as well.
-- The ACCESS EXCLUSIVE lock is bounded by lock_timeout, retried by the runner.
-- New rows get now() by default, as the booking functions expect.
set local timezone = 'UTC';
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_bookings
  alter column created_at set default now(),
  alter column updated_at set default now(),
  alter column created_at type timestamptz,
  alter column updated_at type timestamptz,
  alter column synced_at type timestamptz;
