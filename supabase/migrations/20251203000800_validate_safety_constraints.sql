-- VALIDATE takes SHARE UPDATE EXCLUSIVE: bookings keep flowing while it scans.
alter table hubspot_sync.hubspot_contact_credits validate constraint contact_credits_non_negative;
alter table hubspot_sync.hubspot_mock_exams validate constraint mock_exams_seats_non_negative;
