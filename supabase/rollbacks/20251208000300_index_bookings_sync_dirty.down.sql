-- migrate: no-transaction
-- Drops what 20251208000300_index_bookings_sync_dirty built, without blocking writers.
drop index concurrently if exists hubspot_sync.idx_bookings_sync_dirty;
