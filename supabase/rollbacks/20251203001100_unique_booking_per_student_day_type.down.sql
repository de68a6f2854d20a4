-- migrate: no-transaction
-- Drops what 20251203001100_unique_booking_per_student_day_type built, without blocking writers.
drop index concurrently if exists hubspot_sync.uq_bookings_one_per_student_day_type;
