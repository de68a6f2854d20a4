-- The booking rules (product.md §4), each operation one call and one transaction.
--
-- Contract shared by every function here:
--   * Called by name with named parameters; no parameter is ever spliced into SQL.
--   * Returns jsonb: {"ok": true, ...} or, for a business rejection,
--     {"ok": false, "code": "<CODE>", "message": "...", "field": "<param>"?}.
--     Rejections are returned, not raised, so nothing is written and the caller gets
--     a stable code. Infrastructure failures (lock timeout, deadlock, serialization,
--     a bug tripping a constraint) raise with their SQLSTATE and roll everything back.
--   * Lock order, in every function that takes more than one: the exam row, then the
--     contact row, then the booking row. Nothing else is locked. No deadlock between
--     book and cancel is possible as long as this holds.
--   * Who did it (app.actor) and why (app.reason) are set transaction-locally for the
--     audit trigger (hubspot_sync.record_change).
--
-- Seats are held by Active bookings: hubspot_mock_exams.total_bookings is kept equal
-- to their count in the same transaction as every change (the original's meaning,
-- 20251203000900). A Completed booking holds no seat but still counts for rule 4.

set local lock_timeout = '1s';

-- ---------------------------------------------------------------- small helpers

create or replace function hubspot_sync._reject(p_code text, p_message text, p_field text default null)
returns jsonb language sql immutable as $$
  select jsonb_build_object('ok', false, 'code', p_code, 'message', p_message)
         || case when p_field is null then '{}'::jsonb else jsonb_build_object('field', p_field) end
$$;

create or replace function hubspot_sync._is_uuid(p_text text)
returns boolean language sql immutable as $$
  select p_text ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
$$;

-- Student ids are upper-case letters and digits; students often type them in lower case.
create or replace function hubspot_sync._student_id(p_text text)
returns text language sql immutable as $$
  select case when upper(btrim(p_text)) ~ '^[A-Z0-9]{1,32}$' then upper(btrim(p_text)) end
$$;

-- Emails are stored lower-case. The shape check is deliberately loose: the API layer
-- validates properly; this only keeps garbage and oversized strings out.
create or replace function hubspot_sync._email(p_text text)
returns text language sql immutable as $$
  select case when length(btrim(p_text)) <= 254 and lower(btrim(p_text)) ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'
              then lower(btrim(p_text)) end
$$;

-- Attending locations: slugs or their display names → the slug that is stored.
create or replace function hubspot_sync._location_slug(p_text text)
returns text language sql immutable as $$
  select case lower(regexp_replace(btrim(p_text), '[\s_-]+', ' ', 'g'))
           when 'mississauga' then 'mississauga'
           when 'calgary' then 'calgary'
           when 'vancouver' then 'vancouver'
           when 'montreal' then 'montreal'
           when 'richmond hill' then 'richmond_hill'
           when 'online' then 'online'
         end
$$;

-- Dominant hand: stored as 'right' / 'left'. HubSpot's boolean (true = right) and the
-- old frontend's 'Right'/'Left' are accepted.
create or replace function hubspot_sync._dominant_hand(p_text text)
returns text language sql immutable as $$
  select case lower(btrim(p_text))
           when 'right' then 'right' when 'true' then 'right'
           when 'left' then 'left' when 'false' then 'left'
         end
$$;

-- Which credit column pays for a booking, given the balances: specific first, then
-- shared (Situational Judgment and Clinical Skills only). NULL when none can pay.
create or replace function hubspot_sync._credit_kind(p_mock_type text, c hubspot_sync.hubspot_contact_credits)
returns text language sql immutable as $$
  select case p_mock_type
    when 'Situational Judgment' then case when coalesce(c.sj_credits, 0) > 0 then 'sj_credits'
                                          when coalesce(c.shared_mock_credits, 0) > 0 then 'shared_mock_credits' end
    when 'Clinical Skills'      then case when coalesce(c.cs_credits, 0) > 0 then 'cs_credits'
                                          when coalesce(c.shared_mock_credits, 0) > 0 then 'shared_mock_credits' end
    when 'Mini-mock'            then case when coalesce(c.sjmini_credits, 0) > 0 then 'sjmini_credits' end
    when 'Mock Discussion'      then case when coalesce(c.mock_discussion_token, 0) > 0 then 'mock_discussion_token' end
  end
$$;

-- token_used ↔ credit column. 'Admin Override' (and anything unknown) maps to NULL:
-- it spent nothing and refunds nothing.
create or replace function hubspot_sync._token_for_kind(p_kind text)
returns text language sql immutable as $$
  select case p_kind
    when 'sj_credits' then 'Situational Judgment Token'
    when 'cs_credits' then 'Clinical Skills Token'
    when 'sjmini_credits' then 'Mini-mock Token'
    when 'mock_discussion_token' then 'Mock Discussion Token'
    when 'shared_mock_credits' then 'Shared Token'
  end
$$;

create or replace function hubspot_sync._kind_for_token(p_token text)
returns text language sql immutable as $$
  select case p_token
    when 'Situational Judgment Token' then 'sj_credits'
    when 'Clinical Skills Token' then 'cs_credits'
    when 'Mini-mock Token' then 'sjmini_credits'
    when 'Mock Discussion Token' then 'mock_discussion_token'
    when 'Shared Token' then 'shared_mock_credits'
  end
$$;

create or replace function hubspot_sync._credits_json(c hubspot_sync.hubspot_contact_credits)
returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'sj_credits', coalesce(c.sj_credits, 0),
    'cs_credits', coalesce(c.cs_credits, 0),
    'sjmini_credits', coalesce(c.sjmini_credits, 0),
    'mock_discussion_token', coalesce(c.mock_discussion_token, 0),
    'shared_mock_credits', coalesce(c.shared_mock_credits, 0))
$$;

create or replace function hubspot_sync._contact_json(c hubspot_sync.hubspot_contact_credits)
returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'id', c.id, 'hubspot_id', c.hubspot_id, 'student_id', c.student_id, 'email', c.email,
    'firstname', c.firstname, 'lastname', c.lastname, 'ndecc_exam_date', c.ndecc_exam_date,
    'credits', hubspot_sync._credits_json(c))
$$;

create or replace function hubspot_sync._booking_json(b hubspot_sync.hubspot_bookings, e hubspot_sync.hubspot_mock_exams)
returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'id', b.id, 'booking_id', b.booking_id, 'hubspot_id', b.hubspot_id,
    'mock_exam_id', e.id, 'mock_exam_hubspot_id', b.associated_mock_exam,
    'student_id', b.student_id, 'email', b.student_email, 'name', b.name,
    'mock_type', b.mock_type, 'mock_set', b.mock_set, 'exam_date', b.exam_date::date,
    'start_time', hubspot_sync.text_time(b.start_time), 'end_time', hubspot_sync.text_time(b.end_time), 'location', e.location,
    'attending_location', b.attending_location, 'dominant_hand', b.dominant_hand,
    'token_used', b.token_used, 'token_refunded', b.token_refunded = 'true',
    'is_active', b.is_active, 'attendance', b.attendance,
    'created_at', b.created_at at time zone 'UTC', 'updated_at', b.updated_at at time zone 'UTC')
$$;

-- Seat count of one exam as the API and Redis see it. `version` orders the copies
-- (see 20251203001150_mock_exams_seats_version.sql).
create or replace function hubspot_sync._seats_json(e hubspot_sync.hubspot_mock_exams)
returns jsonb language sql immutable as $$
  select case when e.id is null then null else jsonb_build_object(
    'exam_id', e.id, 'capacity', coalesce(e.capacity, 0), 'booked', coalesce(e.total_bookings, 0),
    'version', e.seats_version) end
$$;

-- New booking codes: BK-<exam date>-<6 characters>. The alphabet leaves out 0/O, 1/I/L
-- so a code read over the phone is unambiguous. Uniqueness is enforced by
-- uq_bookings_booking_code; 31^6 codes per exam date make a clash a non-event, and
-- book() retries one if it ever happens.
create or replace function hubspot_sync._new_booking_code(p_exam_date date)
returns text language sql volatile as $$
  select 'BK-' || to_char(p_exam_date, 'YYYYMMDD') || '-'
         || string_agg(substr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', 1 + floor(random() * 31)::int, 1), '')
    from generate_series(1, 6)
$$;

-- Cascading booking look-up: UUID, then HubSpot id, then booking code. Legacy codes are
-- not unique, so a code look-up is narrowed to the owner when one is given and refuses
-- to guess between several bookings otherwise. Returns NULL when nothing matches.
create or replace function hubspot_sync._find_booking(p_ref text, p_student_id text, p_email text)
returns setof hubspot_sync.hubspot_bookings language plpgsql stable
set search_path = hubspot_sync, pg_temp as $$
begin
  if p_ref is null or length(p_ref) > 200 then
    return;
  end if;
  if _is_uuid(p_ref) then
    return query select * from hubspot_bookings where id = p_ref::uuid;
    return;
  end if;
  return query select * from hubspot_bookings where hubspot_id = p_ref;
  if found then
    return;
  end if;
  return query
    select * from hubspot_bookings
     where booking_id = p_ref
       and (p_student_id is null or (student_id = p_student_id and student_email = p_email))
     order by created_at desc
     limit 2;
end
$$;

-- ---------------------------------------------------------------- book

-- book: one student takes one seat and pays one credit.
-- Locks: exam row, then contact row (FOR NO KEY UPDATE: foreign-key checks elsewhere
-- are not blocked). Checks every rule before writing anything; writes the booking,
-- the debit and the seat count together.
-- Idempotent: the same p_idempotency_key (or, without one, the same student and exam
-- within 5 minutes while the booking is active) returns the original booking with
-- "replayed": true and writes nothing. A key already used with any other value (student,
-- exam, attending location, dominant hand) is rejected (IDEMPOTENCY_KEY_REUSED).
-- p_admin: an admin booking on the student's behalf: token 'Admin Override', no credit
-- spent. Capacity and every other rule still apply: nothing is ever oversold.
-- Returns {"ok", "replayed", "booking", "credits", "seats": {"exam_id", "capacity", "booked", "version"}}.
create or replace function hubspot_sync.book(
  p_student_id text,
  p_email text,
  p_exam_id text,
  p_attending_location text default null,
  p_dominant_hand text default null,
  p_idempotency_key text default null,
  p_admin text default null
) returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
-- A booking waits at most 3 s for its locks (pretix's figure): past that the exam is
-- in a stampede and the caller gets a retryable 503 instead of a hung request.
set lock_timeout = '3s'
as $$
declare
  v_student_id text := _student_id(p_student_id);
  v_email text := _email(p_email);
  v_key text := nullif(btrim(p_idempotency_key), '');
  v_exam hubspot_mock_exams;
  v_contact hubspot_contact_credits;
  v_booking hubspot_bookings;
  v_location text := _location_slug(p_attending_location);
  v_hand text := _dominant_hand(p_dominant_hand);
  v_kind text;
  v_token text;
  v_constraint text;
  v_attempt int := 0;
begin
  -- Input shape. Each rejection names the parameter at fault.
  if v_student_id is null then
    return _reject('INVALID_INPUT', 'student_id must be 1-32 letters and digits', 'student_id');
  elsif v_email is null then
    return _reject('INVALID_INPUT', 'email is not a valid address', 'email');
  elsif p_exam_id is null or length(p_exam_id) > 64 or btrim(p_exam_id) = '' then
    return _reject('INVALID_INPUT', 'mock_exam_id is required', 'mock_exam_id');
  elsif v_key is not null and (length(v_key) > 255 or v_key !~ '^[!-~]+$') then
    return _reject('INVALID_INPUT', 'Idempotency-Key must be 1-255 printable ASCII characters', 'idempotency_key');
  elsif p_attending_location is not null and btrim(p_attending_location) <> '' and v_location is null then
    return _reject('INVALID_INPUT', 'attending_location is not a known location', 'attending_location');
  elsif p_dominant_hand is not null and btrim(p_dominant_hand) <> '' and v_hand is null then
    return _reject('INVALID_INPUT', 'dominant_hand must be right or left', 'dominant_hand');
  end if;

  perform set_config('app.actor', coalesce('admin:' || p_admin, 'student:' || v_student_id), true);

  if _is_uuid(p_exam_id) then
    select * into v_exam from hubspot_mock_exams where id = p_exam_id::uuid for no key update;
  else
    select * into v_exam from hubspot_mock_exams where hubspot_id = btrim(p_exam_id) for no key update;
  end if;
  if not found then
    return _reject('EXAM_NOT_FOUND', 'Mock exam not found', 'mock_exam_id');
  end if;

  select * into v_contact from hubspot_contact_credits
   where student_id = v_student_id and email = v_email
   for no key update;
  if not found then
    return _reject('CONTACT_NOT_FOUND', 'No student with this student_id and email');
  end if;

  -- Replays come before any rule: the original answer stands even if the exam has
  -- since filled up or the credits run out.
  if v_key is not null then
    select * into v_booking from hubspot_bookings where idempotency_key = v_key;
    if found then
      -- The whole request is the key's fingerprint (as Stripe compares a replay's
      -- parameters): the same key with any other value is a different request, refused
      -- rather than answered with a booking that is not what was asked for.
      if v_booking.student_id is distinct from v_contact.student_id
         or v_booking.student_email is distinct from v_contact.email
         or v_booking.associated_mock_exam is distinct from v_exam.hubspot_id
         or v_booking.attending_location is distinct from v_location
         or _dominant_hand(v_booking.dominant_hand) is distinct from v_hand then
        return _reject('IDEMPOTENCY_KEY_REUSED',
                       'This Idempotency-Key was already used for a different request', 'idempotency_key');
      end if;
      return jsonb_build_object('ok', true, 'replayed', true,
        'booking', _booking_json(v_booking, v_exam), 'credits', _credits_json(v_contact),
        'seats', _seats_json(v_exam));
    end if;
  else
    select * into v_booking from hubspot_bookings
     where student_id = v_contact.student_id and student_email = v_contact.email
       and associated_mock_exam = v_exam.hubspot_id and is_active = 'Active'
       and created_at > now() - interval '5 minutes'
     order by created_at desc
     limit 1;
    if found then
      return jsonb_build_object('ok', true, 'replayed', true,
        'booking', _booking_json(v_booking, v_exam), 'credits', _credits_json(v_contact),
        'seats', _seats_json(v_exam));
    end if;
  end if;

  -- Rule 2: the exam is open and has not started (America/Toronto when only a date is known).
  if v_exam.is_active is distinct from 'true'
     or v_exam.exam_date is null
     or v_exam.mock_type not in ('Situational Judgment', 'Clinical Skills', 'Mini-mock', 'Mock Discussion') then
    return _reject('EXAM_NOT_ACTIVE', 'This mock exam is not open for booking');
  end if;
  if coalesce(hubspot_sync.text_time(v_exam.start_time), v_exam.exam_date::timestamp at time zone 'America/Toronto') <= now() then
    return _reject('EXAM_STARTED', 'This mock exam has already started');
  end if;

  -- Rule 7: what each type needs from the form.
  if v_exam.mock_type = 'Clinical Skills' and v_hand is null then
    return _reject('INVALID_INPUT', 'dominant_hand is required for Clinical Skills', 'dominant_hand');
  end if;
  if v_exam.mock_type in ('Situational Judgment', 'Mini-mock') and v_location is null then
    return _reject('INVALID_INPUT', 'attending_location is required for ' || v_exam.mock_type, 'attending_location');
  end if;

  -- Rule 3: a free seat.
  if coalesce(v_exam.total_bookings, 0) >= coalesce(v_exam.capacity, 0) then
    -- The seat count rides along so the caller can refresh its cached copy.
    return _reject('EXAM_FULL', 'This mock exam is fully booked')
           || jsonb_build_object('seats', _seats_json(v_exam));
  end if;

  -- Rule 4: one seat-holding booking per date and type.
  if exists (select 1 from hubspot_bookings
              where student_id = v_contact.student_id and student_email = v_contact.email
                and exam_date = v_exam.exam_date and mock_type = v_exam.mock_type
                and is_active in ('Active', 'Completed')) then
    return _reject('DUPLICATE_BOOKING',
                   'You already have a ' || v_exam.mock_type || ' booking on ' || v_exam.exam_date);
  end if;

  -- Rule 6: Mock Discussion prerequisites: attended at least one of them.
  if v_exam.mock_type = 'Mock Discussion' and cardinality(coalesce(v_exam.prerequisite_exam_ids, '{}')) > 0
     and not exists (select 1 from hubspot_bookings
                      where student_id = v_contact.student_id and student_email = v_contact.email
                        and associated_mock_exam = any (v_exam.prerequisite_exam_ids)
                        and attendance = 'Yes') then
    return _reject('PREREQUISITE_NOT_MET', 'Attend one of the prerequisite mock exams before booking this discussion');
  end if;

  -- Rule 5: a credit of an allowed kind.
  if p_admin is not null then
    v_token := 'Admin Override';
  else
    v_kind := _credit_kind(v_exam.mock_type, v_contact);
    if v_kind is null then
      return _reject('INSUFFICIENT_CREDITS', 'You have no credits left for ' || v_exam.mock_type || ' exams');
    end if;
    v_token := _token_for_kind(v_kind);
  end if;

  -- Every check passed: write. The insert goes first so that a unique-index violation
  -- (the safety nets behind rules 4 and idempotency) leaves nothing else written.
  loop
    begin
      insert into hubspot_bookings (
        booking_id, associated_mock_exam, associated_contact_id, student_id, name, student_email,
        is_active, booking_status, attending_location, exam_date, dominant_hand, token_used,
        start_time, end_time, idempotency_key, mock_type, mock_set)
      values (
        _new_booking_code(v_exam.exam_date), v_exam.hubspot_id, v_contact.hubspot_id,
        v_contact.student_id, nullif(btrim(concat_ws(' ', v_contact.firstname, v_contact.lastname)), ''),
        v_contact.email, 'Active', 'Active', v_location, v_exam.exam_date, v_hand, v_token,
        v_exam.start_time, v_exam.end_time, coalesce(v_key, 'auto-' || gen_random_uuid()),
        v_exam.mock_type, v_exam.mock_set)
      returning * into v_booking;
      exit;
    exception when unique_violation then
      get stacked diagnostics v_constraint = constraint_name;
      if v_constraint = 'uq_bookings_one_per_student_day_type' then
        return _reject('DUPLICATE_BOOKING',
                       'You already have a ' || v_exam.mock_type || ' booking on ' || v_exam.exam_date);
      elsif v_constraint = 'hubspot_bookings_idempotency_key_key' then
        return _reject('IDEMPOTENCY_KEY_REUSED',
                       'This Idempotency-Key was already used for a different booking', 'idempotency_key');
      elsif v_constraint = 'uq_bookings_booking_code' and v_attempt < 3 then
        v_attempt := v_attempt + 1;
      else
        raise;
      end if;
    end;
  end loop;

  if v_kind is not null then
    update hubspot_contact_credits
       set sj_credits = sj_credits - (v_kind = 'sj_credits')::int,
           cs_credits = cs_credits - (v_kind = 'cs_credits')::int,
           sjmini_credits = sjmini_credits - (v_kind = 'sjmini_credits')::int,
           mock_discussion_token = mock_discussion_token - (v_kind = 'mock_discussion_token')::int,
           shared_mock_credits = shared_mock_credits - (v_kind = 'shared_mock_credits')::int,
           updated_at = now()
     where id = v_contact.id
       and case v_kind
             when 'sj_credits' then sj_credits when 'cs_credits' then cs_credits
             when 'sjmini_credits' then sjmini_credits
             when 'mock_discussion_token' then mock_discussion_token
             when 'shared_mock_credits' then shared_mock_credits
           end > 0
    returning * into v_contact;
    if not found then
      -- Unreachable while the contact row is locked; if it ever happens, undo all.
      raise exception 'credit guard failed for contact %', v_contact.id using errcode = 'XX000';
    end if;
  end if;

  update hubspot_mock_exams
     set total_bookings = coalesce(total_bookings, 0) + 1, seats_version = seats_version + 1,
         updated_at = now()
   where id = v_exam.id
  returning * into v_exam;

  return jsonb_build_object('ok', true, 'replayed', false,
    'booking', _booking_json(v_booking, v_exam), 'credits', _credits_json(v_contact),
    'seats', _seats_json(v_exam));
end
$$;

-- ---------------------------------------------------------------- cancel_booking

-- cancel_booking: the inverse of book. The owner (p_student_id + p_email) or an admin
-- (p_admin) cancels an Active booking; the credit recorded in token_used comes back
-- (none for 'Admin Override', none when an admin passes p_refund => false), the seat
-- is freed. Idempotent: cancelling a cancelled booking changes nothing and answers
-- "already_cancelled": true. A booking someone else owns is reported as not found.
-- Locks: exam row, then contact row, then booking row.
-- Returns {"ok", "already_cancelled", "credits_restored", "booking", "credits", "seats"}.
create or replace function hubspot_sync.cancel_booking(
  p_booking_ref text,
  p_student_id text default null,
  p_email text default null,
  p_admin text default null,
  p_refund boolean default true,
  p_reason text default null
) returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
set lock_timeout = '3s'  -- as book()
as $$
declare
  v_student_id text := _student_id(p_student_id);
  v_email text := _email(p_email);
  v_booking hubspot_bookings;
  v_exam hubspot_mock_exams;
  v_contact hubspot_contact_credits;
  v_kind text;
  v_matches int;
begin
  if p_booking_ref is null or btrim(p_booking_ref) = '' or length(p_booking_ref) > 200 then
    return _reject('INVALID_INPUT', 'booking id is required', 'id');
  elsif p_admin is null and v_student_id is null then
    return _reject('INVALID_INPUT', 'student_id must be 1-32 letters and digits', 'student_id');
  elsif p_admin is null and v_email is null then
    return _reject('INVALID_INPUT', 'email is not a valid address', 'email');
  elsif p_reason is not null and length(p_reason) > 500 then
    return _reject('INVALID_INPUT', 'reason is limited to 500 characters', 'reason');
  end if;

  perform set_config('app.actor', coalesce('admin:' || p_admin, 'student:' || v_student_id), true);
  perform set_config('app.reason', coalesce(p_reason, ''), true);

  select count(*) into v_matches from _find_booking(btrim(p_booking_ref), v_student_id, v_email);
  if v_matches > 1 then
    return _reject('INVALID_INPUT', 'This booking code matches several bookings; use the booking UUID', 'id');
  end if;
  select * into v_booking from _find_booking(btrim(p_booking_ref), v_student_id, v_email);
  if not found or (p_admin is null and (v_booking.student_id is distinct from v_student_id
                                        or v_booking.student_email is distinct from v_email)) then
    return _reject('BOOKING_NOT_FOUND', 'Booking not found');
  end if;

  select * into v_exam from hubspot_mock_exams
   where hubspot_id = v_booking.associated_mock_exam for no key update;
  select * into v_contact from hubspot_contact_credits
   where student_id = v_booking.student_id and email = v_booking.student_email for no key update;
  select * into v_booking from hubspot_bookings where id = v_booking.id for update;

  if v_booking.is_active in ('Cancelled', 'cancelled') then
    return jsonb_build_object('ok', true, 'already_cancelled', true, 'credits_restored', 0,
      'booking', _booking_json(v_booking, v_exam),
      'credits', case when v_contact.id is null then null else _credits_json(v_contact) end,
      'seats', _seats_json(v_exam));
  end if;
  if v_booking.is_active is distinct from 'Active' then
    return _reject('BOOKING_NOT_CANCELLABLE', 'Only an active booking can be cancelled');
  end if;
  if p_admin is null and v_exam.id is not null
     and coalesce(hubspot_sync.text_time(v_exam.start_time), v_exam.exam_date::timestamp at time zone 'America/Toronto') <= now() then
    return _reject('EXAM_STARTED', 'This mock exam has already started; ask the school to cancel it');
  end if;

  v_kind := case when p_refund and v_contact.id is not null then _kind_for_token(v_booking.token_used) end;

  update hubspot_bookings
     set is_active = 'Cancelled', booking_status = 'Cancelled', updated_at = now(),
         token_refunded = case when v_kind is not null then 'true' else token_refunded end,
         token_refunded_at = case when v_kind is not null then now() else token_refunded_at end,
         token_refund_admin = case when v_kind is not null then p_admin else token_refund_admin end
   where id = v_booking.id
  returning * into v_booking;

  if v_kind is not null then
    update hubspot_contact_credits
       set sj_credits = coalesce(sj_credits, 0) + (v_kind = 'sj_credits')::int,
           cs_credits = coalesce(cs_credits, 0) + (v_kind = 'cs_credits')::int,
           sjmini_credits = coalesce(sjmini_credits, 0) + (v_kind = 'sjmini_credits')::int,
           mock_discussion_token = coalesce(mock_discussion_token, 0) + (v_kind = 'mock_discussion_token')::int,
           shared_mock_credits = coalesce(shared_mock_credits, 0) + (v_kind = 'shared_mock_credits')::int,
           updated_at = now()
     where id = v_contact.id
    returning * into v_contact;
  end if;

  if v_exam.id is not null then
    update hubspot_mock_exams
       set total_bookings = greatest(coalesce(total_bookings, 0) - 1, 0),
           seats_version = seats_version + 1, updated_at = now()
     where id = v_exam.id
    returning * into v_exam;
  end if;

  return jsonb_build_object('ok', true, 'already_cancelled', false,
    'credits_restored', case when v_kind is null then 0 else 1 end,
    'booking', _booking_json(v_booking, v_exam),
    'credits', case when v_contact.id is null then null else _credits_json(v_contact) end,
    'seats', _seats_json(v_exam));
end
$$;

-- ---------------------------------------------------------------- look-ups

-- contact_credits: one contact and its five balances, found by (student_id, email),
-- by UUID or by HubSpot id (exactly one way). Read-only.
create or replace function hubspot_sync.contact_credits(
  p_student_id text default null,
  p_email text default null,
  p_id text default null,
  p_hubspot_id text default null
) returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_contact hubspot_contact_credits;
begin
  if p_id is not null then
    if not _is_uuid(p_id) then
      return _reject('INVALID_INPUT', 'id must be a UUID', 'id');
    end if;
    select * into v_contact from hubspot_contact_credits where id = p_id::uuid;
  elsif p_hubspot_id is not null then
    if length(p_hubspot_id) > 64 then
      return _reject('INVALID_INPUT', 'hubspot_id is too long', 'hubspot_id');
    end if;
    select * into v_contact from hubspot_contact_credits where hubspot_id = p_hubspot_id;
  else
    if _student_id(p_student_id) is null then
      return _reject('INVALID_INPUT', 'student_id must be 1-32 letters and digits', 'student_id');
    elsif _email(p_email) is null then
      return _reject('INVALID_INPUT', 'email is not a valid address', 'email');
    end if;
    select * into v_contact from hubspot_contact_credits
     where student_id = _student_id(p_student_id) and email = _email(p_email);
  end if;
  if not found then
    return _reject('CONTACT_NOT_FOUND', 'No student with these details');
  end if;
  return jsonb_build_object('ok', true, 'contact', _contact_json(v_contact));
end
$$;

-- find_booking: one booking by UUID, HubSpot id or booking code (in that order).
-- With p_student_id + p_email, only that student's booking is found: anyone else's
-- answers BOOKING_NOT_FOUND, exactly as a booking that does not exist. Read-only.
create or replace function hubspot_sync.find_booking(
  p_ref text,
  p_student_id text default null,
  p_email text default null
) returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_student_id text := _student_id(p_student_id);
  v_email text := _email(p_email);
  v_booking hubspot_bookings;
  v_exam hubspot_mock_exams;
  v_matches int;
begin
  if p_ref is null or btrim(p_ref) = '' or length(p_ref) > 200 then
    return _reject('INVALID_INPUT', 'booking id is required', 'id');
  elsif (p_student_id is not null or p_email is not null) and (v_student_id is null or v_email is null) then
    return _reject('INVALID_INPUT', 'student_id and email must both be valid', 'student_id');
  end if;
  select count(*) into v_matches from _find_booking(btrim(p_ref), v_student_id, v_email);
  if v_matches > 1 then
    return _reject('INVALID_INPUT', 'This booking code matches several bookings; use the booking UUID', 'id');
  end if;
  select * into v_booking from _find_booking(btrim(p_ref), v_student_id, v_email);
  if not found or (v_student_id is not null and (v_booking.student_id is distinct from v_student_id
                                                 or v_booking.student_email is distinct from v_email)) then
    return _reject('BOOKING_NOT_FOUND', 'Booking not found');
  end if;
  select * into v_exam from hubspot_mock_exams where hubspot_id = v_booking.associated_mock_exam;
  return jsonb_build_object('ok', true, 'booking', _booking_json(v_booking, v_exam));
end
$$;

-- booking_for_key: whether a create with this key already produced a booking.
-- Read-only; book() performs the same check itself under its locks, so this is for
-- callers that want to answer a replay without taking any lock. Not named
-- check_idempotency_key: production may hold the original team's function of that
-- name (its PRD 02, parameter p_idempotency_key, another answer), which is left alone.
create or replace function hubspot_sync.booking_for_key(p_key text)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_booking hubspot_bookings;
  v_exam hubspot_mock_exams;
begin
  if p_key is null or length(p_key) > 255 or btrim(p_key) = '' then
    return _reject('INVALID_INPUT', 'Idempotency-Key must be 1-255 characters', 'idempotency_key');
  end if;
  select * into v_booking from hubspot_bookings where idempotency_key = btrim(p_key);
  if not found then
    return jsonb_build_object('ok', true, 'found', false);
  end if;
  select * into v_exam from hubspot_mock_exams where hubspot_id = v_booking.associated_mock_exam;
  return jsonb_build_object('ok', true, 'found', true, 'booking', _booking_json(v_booking, v_exam));
end
$$;
