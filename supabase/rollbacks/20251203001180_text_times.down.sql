drop function if exists hubspot_sync.time_text(timestamptz);
drop function if exists hubspot_sync.text_time(text);
