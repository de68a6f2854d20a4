-- migrate: no-transaction
-- Safety net for rule 4: one seat-holding (Active or Completed) booking per student, exam date and mock type. The booking function checks first and maps a violation of this index to the same DUPLICATE_BOOKING code.
-- Built CONCURRENTLY so writers are never blocked; one statement per file because
-- CREATE INDEX CONCURRENTLY cannot run inside the transaction each file gets.
-- Rows marked legacy_duplicate (20251203001090: the replaced system's duplicates, kept)
-- are left out.
create unique index concurrently if not exists uq_bookings_one_per_student_day_type on hubspot_sync.hubspot_bookings (student_id, student_email, exam_date, mock_type) where is_active in ('Active', 'Completed') and not legacy_duplicate;
