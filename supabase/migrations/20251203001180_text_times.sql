-- Exam and booking start_time/end_time are text in production: the replaced system made
-- them text and its app still writes them, as JavaScript ISO strings
-- (2026-03-01T14:00:00.000Z), or whatever HubSpot handed it (an ISO string, or epoch
-- milliseconds where a path forgot to convert). Decision: read them right, do not
-- convert. A change of type would rewrite both tables under an exclusive lock, would
-- fail on the first value that is not a time, and would change what the old app reads
-- back while it still runs. Instead every reader goes through text_time(), and what
-- this system writes is the old app's own format, time_text().
--
-- text_time: the instant a stored start/end time means, or NULL when it means none
-- (an unreadable value is unknown, not an error that would fail a booking). Strings
-- without an offset are UTC, as the old app's are. Immutable: no branch depends on the
-- session's TimeZone.
create or replace function hubspot_sync.text_time(p_value text)
returns timestamptz language plpgsql immutable strict as $$
declare
  v text := btrim(p_value);
begin
  if v ~ '^\d{13}$' then
    return to_timestamp(v::numeric / 1000);
  elsif v ~ '^\d{10}$' then
    return to_timestamp(v::numeric);
  elsif v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)? ?(Z|z|[+-]\d{2}(:?\d{2})?)$' then
    return v::timestamptz;
  elsif v ~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$' then
    return v::timestamp at time zone 'UTC';
  end if;
  return null;
exception when datetime_field_overflow or invalid_datetime_format then
  return null;
end
$$;

-- time_text: an instant as the old app writes it (UTC, milliseconds, Z).
create or replace function hubspot_sync.time_text(p_value timestamptz)
returns text language sql immutable strict as $$
  select to_char(p_value at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
