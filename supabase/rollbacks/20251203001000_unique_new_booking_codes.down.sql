-- migrate: no-transaction
-- Drops what 20251203001000_unique_new_booking_codes built, without blocking writers.
drop index concurrently if exists hubspot_sync.uq_bookings_booking_code;
