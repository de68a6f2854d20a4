set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_mock_exams drop constraint if exists mock_exams_seats_non_negative;
