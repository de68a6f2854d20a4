set local lock_timeout = '1s';
drop trigger if exists mock_exams_seats_non_negative on hubspot_sync.hubspot_mock_exams;
drop function if exists hubspot_sync._refuse_new_negative_seats();
