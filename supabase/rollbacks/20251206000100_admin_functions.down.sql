drop function if exists hubspot_sync.student_detail(text);
drop function if exists hubspot_sync.find_students(text);
drop function if exists hubspot_sync.adjust_credits(text, jsonb, text, text, text);
