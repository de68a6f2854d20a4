-- migrate: no-transaction
-- Drops what 20251203000600_index_bookings_student_email built, without blocking writers.
drop index concurrently if exists hubspot_sync.idx_bookings_student_email;
