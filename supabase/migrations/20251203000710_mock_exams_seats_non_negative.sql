-- Safety net: no write may take a seat count or capacity below zero. A trigger for the
-- reason given in 20251203000700: legacy rows are kept as they are, the rule covers new
-- writes (a value may not become negative, nor more negative).
create or replace function hubspot_sync._refuse_new_negative_seats() returns trigger
language plpgsql as $$
begin
  if (new.total_bookings < 0
      and (tg_op = 'INSERT' or old.total_bookings is null or new.total_bookings < old.total_bookings))
     or (new.capacity < 0
      and (tg_op = 'INSERT' or old.capacity is null or new.capacity < old.capacity)) then
    raise exception 'exam % would have capacity % and % seats taken',
        new.hubspot_id, new.capacity, new.total_bookings
      using errcode = 'check_violation', constraint = 'mock_exams_seats_non_negative',
            table = 'hubspot_mock_exams', schema = 'hubspot_sync';
  end if;
  return new;
end
$$;

set local lock_timeout = '1s';
drop trigger if exists mock_exams_seats_non_negative on hubspot_sync.hubspot_mock_exams;
create trigger mock_exams_seats_non_negative
  before insert or update on hubspot_sync.hubspot_mock_exams
  for each row
  when (new.total_bookings < 0 or new.capacity < 0)
  execute function hubspot_sync._refuse_new_negative_seats();
