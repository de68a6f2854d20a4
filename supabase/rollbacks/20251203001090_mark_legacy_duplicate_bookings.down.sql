-- The marks go with the column: the baseline had neither.
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_bookings drop column if exists legacy_duplicate;
