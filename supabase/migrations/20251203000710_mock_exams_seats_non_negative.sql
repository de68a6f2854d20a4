-- Safety net: a seat count or capacity can never go below zero. See 20251203000700.
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_mock_exams
  add constraint mock_exams_seats_non_negative check (total_bookings >= 0 and capacity >= 0) not valid;
