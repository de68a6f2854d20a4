-- Safety nets behind the booking functions: a balance or a seat count can never go
-- below zero, whatever code path writes it. Added NOT VALID (catalogue-only, brief
-- lock) and validated in the next file, which scans without blocking writers.
set local lock_timeout = '1s';

alter table hubspot_sync.hubspot_contact_credits
  add constraint contact_credits_non_negative check (
    sj_credits >= 0 and cs_credits >= 0 and sjmini_credits >= 0
    and mock_discussion_token >= 0 and shared_mock_credits >= 0) not valid;

alter table hubspot_sync.hubspot_mock_exams
  add constraint mock_exams_seats_non_negative check (total_bookings >= 0 and capacity >= 0) not valid;
