drop function if exists hubspot_sync.health();
drop function if exists hubspot_sync.store_hubspot_contact(text, text, text, text, text, text, int, int, int, int, int);
drop function if exists hubspot_sync.list_bookings(text, text, text, int, int);
drop function if exists hubspot_sync.validate_credits(text, text, text);
drop function if exists hubspot_sync.exam_seats(text[]);
drop function if exists hubspot_sync.available_exams(text);
drop function if exists hubspot_sync._mock_type_ok(text);
drop function if exists hubspot_sync._exam_json(hubspot_sync.hubspot_mock_exams);
drop function if exists hubspot_sync._exam_start(hubspot_sync.hubspot_mock_exams);
