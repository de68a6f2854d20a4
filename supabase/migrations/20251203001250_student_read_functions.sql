-- What the student endpoints read, each one call (product.md §6). Same contract as
-- the booking functions: named parameters, jsonb answer {"ok": true, ...} or a
-- rejection {"ok": false, "code", "message", "field"?}; nothing here takes a lock.
-- "Started" means start_time has passed, or, without a start time, the exam's
-- America/Toronto date has begun.

create or replace function hubspot_sync._exam_start(e hubspot_sync.hubspot_mock_exams)
returns timestamptz language sql immutable as $$
  select coalesce(hubspot_sync.text_time(e.start_time), e.exam_date::timestamp at time zone 'America/Toronto')
$$;

create or replace function hubspot_sync._exam_json(e hubspot_sync.hubspot_mock_exams)
returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'id', e.id, 'hubspot_id', e.hubspot_id, 'mock_exam_name', e.mock_exam_name,
    'mock_type', e.mock_type, 'mock_set', e.mock_set, 'exam_date', e.exam_date,
    'start_time', hubspot_sync.text_time(e.start_time), 'end_time', hubspot_sync.text_time(e.end_time), 'location', e.location,
    'capacity', coalesce(e.capacity, 0), 'booked', coalesce(e.total_bookings, 0),
    'seats_version', e.seats_version,
    'prerequisite_exam_ids', coalesce(to_jsonb(e.prerequisite_exam_ids), '[]'::jsonb))
$$;

create or replace function hubspot_sync._mock_type_ok(p_mock_type text)
returns boolean language sql immutable as $$
  select p_mock_type in ('Situational Judgment', 'Clinical Skills', 'Mini-mock', 'Mock Discussion')
$$;

-- available_exams: upcoming bookable sessions of one type, full ones included (the
-- caller decides whether to show them), soonest first.
create or replace function hubspot_sync.available_exams(p_mock_type text)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if not coalesce(_mock_type_ok(p_mock_type), false) then
    return _reject('INVALID_INPUT', 'mock_type must be one of Situational Judgment, Clinical Skills, Mini-mock, Mock Discussion', 'mock_type');
  end if;
  return jsonb_build_object('ok', true, 'exams', coalesce((
    select jsonb_agg(_exam_json(e) order by e.exam_date, hubspot_sync.text_time(e.start_time), e.id)
      from hubspot_mock_exams e
     where e.mock_type = p_mock_type and e.is_active = 'true'
       and e.exam_date >= (now() at time zone 'America/Toronto')::date
       and _exam_start(e) > now()), '[]'::jsonb));
end
$$;

-- exam_seats: seat counts of the named exams (UUIDs or HubSpot ids; unknown ones are
-- left out), for the availability read path and the capacity endpoint.
create or replace function hubspot_sync.exam_seats(p_exam_ids text[])
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if p_exam_ids is null or cardinality(p_exam_ids) > 500 then
    return _reject('INVALID_INPUT', 'between 0 and 500 exam ids', 'exam_ids');
  end if;
  return jsonb_build_object('ok', true, 'exams', coalesce((
    select jsonb_agg(_exam_json(e) order by e.exam_date, e.id)
      from hubspot_mock_exams e
     where e.hubspot_id = any (p_exam_ids)
        or e.id = any (array(select x::uuid from unnest(p_exam_ids) x where _is_uuid(x)))),
    '[]'::jsonb));
end
$$;

-- validate_credits: can this student pay for one exam of this type, and with what.
-- Specific credits first; shared credits count for Situational Judgment and Clinical
-- Skills only (the same rule _credit_kind applies when booking).
create or replace function hubspot_sync.validate_credits(p_student_id text, p_email text, p_mock_type text)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_contact hubspot_contact_credits;
  v_specific int;
  v_shared int;
begin
  if _student_id(p_student_id) is null then
    return _reject('INVALID_INPUT', 'student_id must be 1-32 letters and digits', 'student_id');
  elsif _email(p_email) is null then
    return _reject('INVALID_INPUT', 'email is not a valid address', 'email');
  elsif not coalesce(_mock_type_ok(p_mock_type), false) then
    return _reject('INVALID_INPUT', 'mock_type must be one of Situational Judgment, Clinical Skills, Mini-mock, Mock Discussion', 'mock_type');
  end if;
  select * into v_contact from hubspot_contact_credits
   where student_id = _student_id(p_student_id) and email = _email(p_email);
  if not found then
    return _reject('CONTACT_NOT_FOUND', 'No student with this student_id and email');
  end if;
  v_specific := case p_mock_type
    when 'Situational Judgment' then coalesce(v_contact.sj_credits, 0)
    when 'Clinical Skills' then coalesce(v_contact.cs_credits, 0)
    when 'Mini-mock' then coalesce(v_contact.sjmini_credits, 0)
    when 'Mock Discussion' then coalesce(v_contact.mock_discussion_token, 0)
  end;
  v_shared := case when p_mock_type in ('Situational Judgment', 'Clinical Skills')
                   then coalesce(v_contact.shared_mock_credits, 0) else 0 end;
  return jsonb_build_object('ok', true,
    'eligible', v_specific + v_shared > 0,
    'available_credits', v_specific + v_shared,
    'credit_breakdown', jsonb_build_object('specific_credits', v_specific, 'shared_credits', v_shared),
    'contact', _contact_json(v_contact));
end
$$;

-- list_bookings: one student's bookings, one page, with current credits.
-- Filters are disjoint: upcoming (not cancelled, not started), past (not cancelled,
-- started), cancelled; all = every booking. Upcoming lists soonest first, the others
-- most recent first.
create or replace function hubspot_sync.list_bookings(
  p_student_id text,
  p_email text,
  p_filter text default 'all',
  p_page int default 1,
  p_limit int default 20
) returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_contact hubspot_contact_credits;
  v_total int;
  v_items jsonb;
begin
  if _student_id(p_student_id) is null then
    return _reject('INVALID_INPUT', 'student_id must be 1-32 letters and digits', 'student_id');
  elsif _email(p_email) is null then
    return _reject('INVALID_INPUT', 'email is not a valid address', 'email');
  elsif p_filter is null or p_filter not in ('all', 'upcoming', 'past', 'cancelled') then
    return _reject('INVALID_INPUT', 'filter must be all, upcoming, past or cancelled', 'filter');
  elsif p_page is null or p_page < 1 or p_page > 10000 then
    return _reject('INVALID_INPUT', 'page must be between 1 and 10000', 'page');
  elsif p_limit is null or p_limit < 1 or p_limit > 100 then
    return _reject('INVALID_INPUT', 'limit must be between 1 and 100', 'limit');
  end if;
  select * into v_contact from hubspot_contact_credits
   where student_id = _student_id(p_student_id) and email = _email(p_email);
  if not found then
    return _reject('CONTACT_NOT_FOUND', 'No student with this student_id and email');
  end if;

  with mine as (
    select b, e, coalesce(_exam_start(e), hubspot_sync.text_time(b.start_time),
                          b.exam_date::timestamp at time zone 'America/Toronto') as starts
      from hubspot_bookings b
      left join hubspot_mock_exams e on e.hubspot_id = b.associated_mock_exam
     where b.student_id = v_contact.student_id and b.student_email = v_contact.email
  ), chosen as (
    select * from mine m
     where case p_filter
             when 'upcoming' then (m.b).is_active not in ('Cancelled', 'cancelled') and m.starts > now()
             when 'past' then (m.b).is_active not in ('Cancelled', 'cancelled') and m.starts <= now()
             when 'cancelled' then (m.b).is_active in ('Cancelled', 'cancelled')
             else true
           end
  ), page as (
    select c.*, count(*) over () as total from chosen c
     order by case when p_filter = 'upcoming' then c.starts end asc,
              c.starts desc, (c.b).created_at desc
     limit p_limit offset (p_page - 1) * p_limit
  )
  select coalesce(jsonb_agg(_booking_json(p.b, p.e)), '[]'::jsonb), max(p.total)
    into v_items, v_total
    from page p;

  if v_total is null then
    -- The page is past the end (or empty): count without it.
    select count(*) into v_total
      from hubspot_bookings b
      left join hubspot_mock_exams e on e.hubspot_id = b.associated_mock_exam
     where b.student_id = v_contact.student_id and b.student_email = v_contact.email
       and case p_filter
             when 'upcoming' then b.is_active not in ('Cancelled', 'cancelled')
                                  and coalesce(_exam_start(e), hubspot_sync.text_time(b.start_time)) > now()
             when 'past' then b.is_active not in ('Cancelled', 'cancelled')
                              and coalesce(_exam_start(e), hubspot_sync.text_time(b.start_time)) <= now()
             when 'cancelled' then b.is_active in ('Cancelled', 'cancelled')
             else true
           end;
  end if;

  return jsonb_build_object('ok', true,
    'bookings', v_items,
    'pagination', jsonb_build_object(
      'current_page', p_page,
      'total_pages', greatest(1, ceil(v_total::numeric / p_limit)::int),
      'total_bookings', v_total,
      'has_next', p_page * p_limit < v_total,
      'has_previous', p_page > 1),
    'credits', _credits_json(v_contact));
end
$$;

-- store_hubspot_contact: a student PostgreSQL did not know, found in HubSpot at first
-- login, is stored with its HubSpot id. Never overwrites what PostgreSQL already holds:
-- if the HubSpot id is already here (the student's email changed in HubSpot), only the
-- identity fields follow HubSpot; balances stay PostgreSQL's, which owns spending.
-- Concurrent first logins of one student store one row (unique keys + on conflict).
create or replace function hubspot_sync.store_hubspot_contact(
  p_hubspot_id text,
  p_student_id text,
  p_email text,
  p_firstname text default null,
  p_lastname text default null,
  p_ndecc_exam_date text default null,
  p_sj_credits int default 0,
  p_cs_credits int default 0,
  p_sjmini_credits int default 0,
  p_mock_discussion_token int default 0,
  p_shared_mock_credits int default 0
) returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_contact hubspot_contact_credits;
begin
  if p_hubspot_id is null or p_hubspot_id !~ '^[0-9]{1,20}$' then
    return _reject('INVALID_INPUT', 'hubspot_id must be a HubSpot record id', 'hubspot_id');
  elsif _student_id(p_student_id) is null then
    return _reject('INVALID_INPUT', 'student_id must be 1-32 letters and digits', 'student_id');
  elsif _email(p_email) is null then
    return _reject('INVALID_INPUT', 'email is not a valid address', 'email');
  elsif least(p_sj_credits, p_cs_credits, p_sjmini_credits, p_mock_discussion_token,
              p_shared_mock_credits) < 0 then
    return _reject('INVALID_INPUT', 'credits cannot be negative', 'credits');
  end if;
  perform set_config('app.actor', 'hubspot:first-login', true);

  insert into hubspot_contact_credits (
    hubspot_id, student_id, email, firstname, lastname, ndecc_exam_date,
    sj_credits, cs_credits, sjmini_credits, mock_discussion_token, shared_mock_credits,
    synced_at, hubspot_last_sync_at)
  values (
    p_hubspot_id, _student_id(p_student_id), _email(p_email), left(p_firstname, 200),
    left(p_lastname, 200), left(p_ndecc_exam_date, 40),
    coalesce(p_sj_credits, 0), coalesce(p_cs_credits, 0), coalesce(p_sjmini_credits, 0),
    coalesce(p_mock_discussion_token, 0), coalesce(p_shared_mock_credits, 0), now(), now())
  on conflict do nothing
  returning * into v_contact;

  if not found then
    update hubspot_contact_credits
       set student_id = _student_id(p_student_id), email = _email(p_email),
           firstname = coalesce(left(p_firstname, 200), firstname),
           lastname = coalesce(left(p_lastname, 200), lastname), updated_at = now()
     where hubspot_id = p_hubspot_id
       and not exists (select 1 from hubspot_contact_credits o
                        where o.student_id = _student_id(p_student_id)
                          and o.email = _email(p_email) and o.hubspot_id is distinct from p_hubspot_id)
    returning * into v_contact;
  end if;
  if not found then
    select * into v_contact from hubspot_contact_credits
     where student_id = _student_id(p_student_id) and email = _email(p_email);
  end if;
  return jsonb_build_object('ok', true, 'contact', _contact_json(v_contact));
end
$$;

-- health: the cheapest call that proves the function path works end to end
-- (connection, schema, privileges).
create or replace function hubspot_sync.health()
returns jsonb language sql stable as $$
  select jsonb_build_object('ok', true, 'database_time', now())
$$;
