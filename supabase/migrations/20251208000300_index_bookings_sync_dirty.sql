-- migrate: no-transaction
-- The sync's work list: bookings HubSpot has not heard of, or not since they last changed. Rows leave it as the sync marks them, so its size is the backlog, not the table; the sync walks it in id order. Built CONCURRENTLY so writers are never blocked; one statement per file because CREATE INDEX CONCURRENTLY cannot run inside the transaction each file gets.
-- updated_at is the replaced system's naive UTC timestamp, hubspot_last_sync_at ours
-- (timestamptz): the explicit conversion keeps the predicate immutable.
create index concurrently if not exists idx_bookings_sync_dirty on hubspot_sync.hubspot_bookings (id) where hubspot_id is null or hubspot_last_sync_at is null or updated_at > (hubspot_last_sync_at at time zone 'UTC');
