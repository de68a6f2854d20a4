-- migrate: no-transaction
-- Bookings still without a HubSpot id: the sync's work list and the dashboard's pending count.
-- Built CONCURRENTLY so writers are never blocked; one statement per file because
-- CREATE INDEX CONCURRENTLY cannot run inside the transaction each file gets.
create index concurrently if not exists idx_bookings_pending_hubspot on hubspot_sync.hubspot_bookings (created_at) where hubspot_id is null;
