-- migrate: no-transaction
-- New booking codes (BK-YYYYMMDD-XXXXXX) are unique. Legacy codes ('Clinical Skills-1599999-March 1, 2026') repeat when a student rebooked the same exam, so they stay outside the constraint and are found by owner.
-- Built CONCURRENTLY so writers are never blocked; one statement per file because
-- CREATE INDEX CONCURRENTLY cannot run inside the transaction each file gets.
create unique index concurrently if not exists uq_bookings_booking_code on hubspot_sync.hubspot_bookings (booking_id) where booking_id like 'BK-%';
