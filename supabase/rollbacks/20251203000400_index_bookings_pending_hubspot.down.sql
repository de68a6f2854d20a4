-- migrate: no-transaction
-- Drops what 20251203000400_index_bookings_pending_hubspot built, without blocking writers.
drop index concurrently if exists hubspot_sync.idx_bookings_pending_hubspot;
