-- migrate: no-transaction
-- A student's bookings by email (admin look-up).
-- Built CONCURRENTLY so writers are never blocked; one statement per file because
-- CREATE INDEX CONCURRENTLY cannot run inside the transaction each file gets.
create index concurrently if not exists idx_bookings_student_email on hubspot_sync.hubspot_bookings (student_email);
