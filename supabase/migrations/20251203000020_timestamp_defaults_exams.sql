-- The replaced system's hubspot_mock_exams has created_at and updated_at as `timestamp`
-- without time zone, nullable, with no default; they hold UTC wall-clock times (its
-- app writes ISO strings ending in Z, whose offset PostgreSQL drops for a naive
-- column). They stay that type: the old app keeps writing them while this runs, and a
-- change of type is a change of the column that no rollback undoes exactly (the
-- column's catalogue version moves; tests/sql/test_legacy_baseline.py compares
-- dumps). Every function of this system runs with TimeZone UTC and converts them
-- explicitly where it hands them out (at time zone 'UTC'), so they read as UTC.
--
-- New rows get the time of their insert, in UTC, whatever the session's time zone.
-- Catalogue only: a default is not a rewrite.
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_mock_exams
  alter column created_at set default timezone('UTC', now()),
  alter column updated_at set default timezone('UTC', now());
