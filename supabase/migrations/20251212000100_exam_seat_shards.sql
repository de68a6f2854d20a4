-- Seats of an exam dealt into shards, so that the bookings of one exam no longer run
-- one at a time (issue 16).
--
-- Why: book() locked the exam row (FOR NO KEY UPDATE) and wrote total_bookings and
-- seats_version on it, so every booking of an exam held that one row lock through its
-- commit: on one hot exam bookings/s fell from 1,335 at 1 client to 848 at 32, against
-- 2,147-2,661 spread over 500 exams (BENCHMARKS.md, db).
--
-- What: each exam's capacity is dealt into at most SHARDS (32) rows of
-- exam_seat_shards, each with its `seats` and the `held` seats of Active bookings. A
-- booking locks one shard that has room (FOR UPDATE SKIP LOCKED, from a random start),
-- so concurrent bookings of one exam lock different rows; the exam row is only read
-- FOR SHARE, which shares with other bookings and cancels but waits for (and makes
-- wait) anything that edits the exam: a capacity change, a deactivation, a new start
-- time. So rules 2 and 3 still hold at commit, all in PostgreSQL.
--
-- Why shards rather than one row per seat: the benchmark's exams (and any large
-- online session) have capacities of 100,000+; a row per seat would mean that many
-- rows per exam and a count over all of them for every answer. 32 shards are enough
-- for the 32 clients measured (a booking finds an unlocked shard at once), and the
-- count of an exam is a sum over at most 32 rows, read from the exam's index range.
--
-- Invariants (every function here keeps them; tests/sql/test_concurrency.py proves
-- them under parallel load, with negative controls):
--   * sum(held) of an exam = its Active bookings (the meaning 20251203000900 gave
--     total_bookings); sum(seats) = its capacity.
--   * held <= seats in every shard, except that when an exam holds more Active
--     bookings than its capacity (legacy data, a capacity cut), the excess sits in
--     shard 0 and every shard is full. A cancel takes a seat from an over-full shard
--     first, so no seat frees up until the exam is back within capacity. Hence no
--     booking can bring the count above capacity.
--   * the exam's seat count version is seats_version (the exam row: the base) plus
--     the sum of its shards' `version`s, each bumped by every booking and cancel of
--     that shard. Re-dealing the shards (a capacity change, recount_seats) folds
--     their versions into the base, plus one, under the exam's exclusive row lock.
--     So the version of the committed state only grows, and a view of the exam that
--     has seen every commit has a strictly higher version than one that missed any.
--     (Two views that each miss a different in-flight commit may share a version;
--     lib/redis_scripts.py's copy is then corrected by the next write, and a wrong
--     "full" is trusted for 5 s at most.)
--
-- total_bookings on the exam row is no longer written by bookings and cancels (that
-- write was the hot spot); it keeps the count of the last re-deal and is kept for the
-- original's readers and for the rollback, which writes the live count back into it.
-- The live count is _seat_state(exam).booked: every function that answers a seat count
-- reads it (redefined below).
--
-- Lock order: exam row (FOR SHARE by book and cancel; FOR NO KEY UPDATE by whatever
-- edits the exam), contact row, booking row, then one shard. A transaction holding a
-- shard waits for no other shard, and one waiting for a shard holds none
-- (_seat_lock_if), so no deadlock is added.
--
-- Online: the table is new; the backfill locks each exam row (as a booking would) for
-- the few ms of dealing its shards, in the same transaction as the new functions, so
-- no booking sees the one without the other.
set local lock_timeout = '1s';

create table if not exists hubspot_sync.exam_seat_shards (
  exam_id uuid not null references hubspot_sync.hubspot_mock_exams (id) on delete cascade,
  shard smallint not null check (shard >= 0),
  seats int not null check (seats >= 0),
  held int not null check (held >= 0),
  version bigint not null default 0 check (version >= 0),
  primary key (exam_id, shard)
) with (fillfactor = 50);  -- room on the page for HOT updates: every booking updates a shard
alter table hubspot_sync.exam_seat_shards enable row level security;
grant select, insert, update, delete on hubspot_sync.exam_seat_shards to service_role;

-- _seat_state: the live seat count of an exam and its version. Read in the caller's
-- snapshot (one statement sees one state); an exam without shards (loaded with
-- triggers off) counts 0 held seats and has no room.
create or replace function hubspot_sync._seat_state(e hubspot_sync.hubspot_mock_exams,
                                                    out booked int, out version bigint)
language sql stable as $$
  select coalesce(sum(s.held), 0)::int, coalesce(e.seats_version, 0) + coalesce(sum(s.version), 0)
    from hubspot_sync.exam_seat_shards s
   where s.exam_id = e.id
$$;

-- _seat_shards_deal: (re)deal an exam's capacity into shards, the Active bookings naming
-- it filling them in order (the excess, if any, in shard 0). The caller must hold the
-- exam row exclusively (FOR NO KEY UPDATE or an UPDATE of it), so that no booking or
-- cancel of the exam is in flight. Returns the sum of the replaced shards' versions,
-- for the caller to fold into seats_version.
create or replace function hubspot_sync._seat_shards_deal(p_exam_id uuid, p_hubspot_id text, p_capacity int)
returns bigint
language plpgsql
set search_path = hubspot_sync, pg_temp
as $$
declare
  -- 32: the clients the benchmark measures on one exam, each then finds a shard of
  -- its own; more only lengthens the sum every seat count reads.
  c_shards constant int := 32;
  v_capacity int := greatest(coalesce(p_capacity, 0), 0);
  v_shards int := greatest(1, least(v_capacity, c_shards));
  v_held int;
  v_versions bigint;
begin
  select count(*) into v_held from hubspot_bookings
   where associated_mock_exam = p_hubspot_id and is_active = 'Active';
  with gone as (delete from exam_seat_shards where exam_id = p_exam_id returning version)
  select coalesce(sum(version), 0) into v_versions from gone;
  insert into exam_seat_shards (exam_id, shard, seats, held)
  select p_exam_id, d.shard, d.seats,
         least(d.seats, greatest(v_held - d.before, 0))
           + case when d.shard = 0 then greatest(v_held - v_capacity, 0) else 0 end
    from (select s.shard, s.seats, coalesce(sum(s.seats) over (order by s.shard rows between unbounded preceding and 1 preceding), 0) as before
            from (select i::smallint as shard, v_capacity / v_shards + (i < v_capacity % v_shards)::int as seats
                    from generate_series(0, v_shards - 1) i) s) d;
  return v_versions;
end
$$;

-- A new exam gets its shards; a changed capacity (or HubSpot id, which the bookings
-- name) re-deals them and moves the version on, within the UPDATE that holds the row.
create or replace function hubspot_sync._seat_shards_on_insert()
returns trigger language plpgsql set search_path = hubspot_sync, pg_temp as $$
begin
  perform _seat_shards_deal(new.id, new.hubspot_id, new.capacity);
  return null;
end
$$;

create or replace function hubspot_sync._seat_shards_on_update()
returns trigger language plpgsql set search_path = hubspot_sync, pg_temp as $$
begin
  new.seats_version := new.seats_version + _seat_shards_deal(new.id, new.hubspot_id, new.capacity) + 1;
  return new;
end
$$;

drop trigger if exists seat_shards_insert on hubspot_sync.hubspot_mock_exams;
create trigger seat_shards_insert after insert on hubspot_sync.hubspot_mock_exams
  for each row execute function hubspot_sync._seat_shards_on_insert();
drop trigger if exists seat_shards_update on hubspot_sync.hubspot_mock_exams;
create trigger seat_shards_update before update of capacity, hubspot_id on hubspot_sync.hubspot_mock_exams
  for each row when (old.capacity is distinct from new.capacity or old.hubspot_id is distinct from new.hubspot_id)
  execute function hubspot_sync._seat_shards_on_update();

-- recount_seats: re-deal one exam's shards from its Active bookings, for data written
-- around book() and cancel_booking() (seed data, imports, tests). Locks the exam row
-- exclusively, so it waits for the exam's bookings in flight. Returns the seat count
-- as _seats_json.
create or replace function hubspot_sync.recount_seats(p_exam_id uuid)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set lock_timeout = '3s'  -- as book()
as $$
declare
  e hubspot_mock_exams;
begin
  select * into e from hubspot_mock_exams where id = p_exam_id for no key update;
  if not found then
    return _reject('EXAM_NOT_FOUND', 'Mock exam not found', 'exam_id');
  end if;
  update hubspot_mock_exams
     set seats_version = seats_version + _seat_shards_deal(e.id, e.hubspot_id, e.capacity) + 1
   where id = e.id
  returning * into e;
  return jsonb_build_object('ok', true, 'seats', _seats_json(e));
end
$$;

-- _seat_lock_if: lock one shard if, once its holder (if any) is gone, it still has
-- room ('room'), is over-full ('over') or holds a seat ('held'). False otherwise, and
-- then no lock is kept: FOR UPDATE keeps the lock on a row whose re-check failed, and
-- a waiter holding such stale locks while it waits for the next shard can deadlock
-- with another; the subtransaction gives them back.
create or replace function hubspot_sync._seat_lock_if(p_exam_id uuid, p_shard smallint, p_want text)
returns boolean
language plpgsql
set search_path = hubspot_sync, pg_temp
as $$
begin
  begin
    perform 1 from exam_seat_shards
      where exam_id = p_exam_id and shard = p_shard
        and case p_want when 'room' then held < seats when 'over' then held > seats else held > 0 end
      for update;
    if found then
      return true;
    end if;
    raise exception 'shard % no longer %', p_shard, p_want using errcode = 'P0001';
  exception when raise_exception then
    return false;
  end;
end
$$;

-- _seat_claim: lock one shard of the exam that has a free seat, for the caller to take
-- it; NULL when the exam is full. Must run in book()'s transaction, under the exam row's
-- share lock (so no re-deal is in flight). SKIP LOCKED spreads concurrent bookings over
-- the shards. Finding nothing unlocked does not mean full: the shards with room may be
-- held by bookings or cancels in flight that can still roll back, so wait for one and
-- look again. EXAM_FULL is answered only when a statement saw no shard with room.
-- Every round either returns or waits for one transaction in flight to end; 40 rounds
-- (more than the 32 shards) end in a retryable lock_not_available rather than a guess.
create or replace function hubspot_sync._seat_claim(p_exam_id uuid)
returns smallint
language plpgsql
set search_path = hubspot_sync, pg_temp
as $$
declare
  v_start int := floor(random() * 32)::int;
  v_shard smallint;
begin
  for v_round in 1..40 loop
    select shard into v_shard from exam_seat_shards
     where exam_id = p_exam_id and held < seats
     order by (shard + v_start) % 32
     limit 1 for update skip locked;
    if found then
      return v_shard;
    end if;
    select shard into v_shard from exam_seat_shards
     where exam_id = p_exam_id and held < seats
     order by (shard + v_start) % 32
     limit 1;
    if not found then
      return null;
    end if;
    if _seat_lock_if(p_exam_id, v_shard, 'room') then
      return v_shard;
    end if;
  end loop;
  raise exception 'no seat shard of exam % could be locked', p_exam_id using errcode = '55P03';
end
$$;

-- _seat_release: give back one seat of the exam, in cancel_booking()'s transaction under
-- the exam row's share lock. From an over-full shard first (see the header), else from
-- any shard holding one, unlocked ones first. Nothing when no shard holds a seat (the
-- count was already short: data written around book()), as the old counter stopped
-- at 0. Rounds as _seat_claim's.
create or replace function hubspot_sync._seat_release(p_exam_id uuid)
returns void
language plpgsql
set search_path = hubspot_sync, pg_temp
as $$
declare
  v_start int := floor(random() * 32)::int;
  v_shard smallint;
begin
  for v_round in 1..40 loop
    select shard into v_shard from exam_seat_shards
     where exam_id = p_exam_id and held > seats
     order by shard limit 1;
    if found then
      if not _seat_lock_if(p_exam_id, v_shard, 'over') then
        continue;
      end if;
    else
      select shard into v_shard from exam_seat_shards
       where exam_id = p_exam_id and held > 0
       order by (shard + v_start) % 32
       limit 1 for update skip locked;
      if not found then
        select shard into v_shard from exam_seat_shards
         where exam_id = p_exam_id and held > 0
         order by (shard + v_start) % 32
         limit 1;
        if not found then
          return;
        end if;
        if not _seat_lock_if(p_exam_id, v_shard, 'held') then
          continue;
        end if;
      end if;
    end if;
    update exam_seat_shards set held = held - 1, version = version + 1
     where exam_id = p_exam_id and shard = v_shard;
    return;
  end loop;
  raise exception 'no seat shard of exam % could be locked', p_exam_id using errcode = '55P03';
end
$$;

-- The seat counts the API, Redis and the sync read: live, from the shards.

create or replace function hubspot_sync._seats_json(e hubspot_sync.hubspot_mock_exams)
returns jsonb language sql stable as $$
  select case when e.id is null then null else jsonb_build_object(
    'exam_id', e.id, 'capacity', coalesce(e.capacity, 0), 'booked', st.booked,
    'version', st.version) end
    from hubspot_sync._seat_state(e) st
$$;


create or replace function hubspot_sync._exam_json(e hubspot_sync.hubspot_mock_exams)
returns jsonb language sql stable as $$
  select jsonb_build_object(
    'id', e.id, 'hubspot_id', e.hubspot_id, 'mock_exam_name', e.mock_exam_name,
    'mock_type', e.mock_type, 'mock_set', e.mock_set, 'exam_date', e.exam_date,
    'start_time', hubspot_sync.text_time(e.start_time), 'end_time', hubspot_sync.text_time(e.end_time), 'location', e.location,
    'capacity', coalesce(e.capacity, 0), 'booked', st.booked,
    'seats_version', st.version,
    'prerequisite_exam_ids', coalesce(to_jsonb(e.prerequisite_exam_ids), '[]'::jsonb))
    from hubspot_sync._seat_state(e) st
$$;


-- book: as 20251203001200 defined it (every rule, the same answers), except for the
-- seat: the exam row is read FOR SHARE instead of locked for update, rule 3 claims a
-- shard with room (_seat_claim) and the booking takes its seat there. Locks: exam row
-- (share), contact row, one shard.
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
  v_shard smallint;
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
    select * into v_exam from hubspot_mock_exams where id = p_exam_id::uuid for share;
  else
    select * into v_exam from hubspot_mock_exams where hubspot_id = btrim(p_exam_id) for share;
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

  -- Rule 3: a free seat, held from here to commit by locking a shard that has room
  -- (_seat_claim); the seat is taken with the writes below.
  v_shard := _seat_claim(v_exam.id);
  if v_shard is null then
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

  update exam_seat_shards
     set held = held + 1, version = version + 1
   where exam_id = v_exam.id and shard = v_shard and held < seats;
  if not found then
    -- Unreachable while the shard row is locked; if it ever happens, undo all.
    raise exception 'seat shard % of exam % has no room', v_shard, v_exam.id using errcode = 'XX000';
  end if;

  return jsonb_build_object('ok', true, 'replayed', false,
    'booking', _booking_json(v_booking, v_exam), 'credits', _credits_json(v_contact),
    'seats', _seats_json(v_exam));
end
$$;


-- cancel_booking: as 20251203001200 defined it, except that the exam row is read FOR
-- SHARE and the seat goes back to a shard (_seat_release). Locks: exam row (share),
-- contact row, booking row, one shard.
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
   where hubspot_id = v_booking.associated_mock_exam for share;
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
    perform _seat_release(v_exam.id);
  end if;

  return jsonb_build_object('ok', true, 'already_cancelled', false,
    'credits_restored', case when v_kind is null then 0 else 1 end,
    'booking', _booking_json(v_booking, v_exam),
    'credits', case when v_contact.id is null then null else _credits_json(v_contact) end,
    'seats', _seats_json(v_exam));
end
$$;


-- The sync and the admin status compare the live count with what HubSpot was told.
create or replace function hubspot_sync.sync_pending_counts(p_full boolean)
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object(
    'ok', true,
    'contacts', (select count(*) from hubspot_contact_credits where hubspot_id is null),
    'credits', (select count(*) from hubspot_contact_credits c
                  left join sync_contact_credits s on s.contact_id = c.id
                 where c.hubspot_id is not null and (p_full or s.contact_id is null
                       or s.pending_push_id is not null or s.hubspot_id is distinct from c.hubspot_id
                       or s.base is distinct from array[coalesce(c.sj_credits, 0), coalesce(c.cs_credits, 0),
                            coalesce(c.sjmini_credits, 0), coalesce(c.mock_discussion_token, 0),
                            coalesce(c.shared_mock_credits, 0)])),
    'bookings', (select count(*) from hubspot_bookings
                  where p_full or hubspot_id is null or hubspot_last_sync_at is null
                     or updated_at > (hubspot_last_sync_at at time zone 'UTC')),
    'seats', (select count(*) from hubspot_mock_exams e cross join lateral _seat_state(e) st
                left join sync_exam_seats s on s.exam_id = e.id
               where p_full or s.exam_id is null or st.version > s.pushed_seats_version
                  or st.booked <> s.pushed_total))
$$;


create or replace function hubspot_sync.sync_exams_pulled(p_run_id uuid, p_items text)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
set lock_timeout = '3s'  -- as book(): an exam row is held only for a booking's few ms
as $$
declare
  v record;
  e hubspot_mock_exams;
  st record;
  v_created int := 0;
  v_updated int := 0;
  v_unchanged int := 0;
  v_errors jsonb := '[]';
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  perform set_config('app.actor', 'sync', true);
  perform set_config('app.reason', 'exam definition from HubSpot (sync run ' || p_run_id || ')', true);
  for v in
    select * from jsonb_to_recordset(p_items::jsonb) as x(
      hubspot_id text, mock_exam_name text, mock_type text, mock_set text, exam_date date,
      start_time timestamptz, end_time timestamptz, location text, capacity int, is_active text,
      scheduled_activation_datetime timestamptz, hubspot_total int)
    order by x.hubspot_id
  loop
    begin
      select * into e from hubspot_mock_exams where hubspot_id = v.hubspot_id for no key update;
      if not found then
        insert into hubspot_mock_exams (
          hubspot_id, mock_exam_name, mock_type, mock_set, exam_date, start_time, end_time,
          location, capacity, is_active, scheduled_activation_datetime, total_bookings,
          synced_at, hubspot_last_sync_at)
        values (
          v.hubspot_id, v.mock_exam_name, v.mock_type, v.mock_set::mock_set_enum, v.exam_date,
          hubspot_sync.time_text(v.start_time), hubspot_sync.time_text(v.end_time), v.location, v.capacity, v.is_active,
          v.scheduled_activation_datetime,
          (select count(*) from hubspot_bookings b
            where b.associated_mock_exam = v.hubspot_id and b.is_active = 'Active'),
          now(), now())
        returning * into e;
        v_created := v_created + 1;
      elsif (e.mock_exam_name, e.mock_type, e.mock_set::text, e.exam_date, hubspot_sync.text_time(e.start_time), hubspot_sync.text_time(e.end_time),
             e.location, e.capacity, e.is_active, e.scheduled_activation_datetime)
            is distinct from
            (v.mock_exam_name, v.mock_type, v.mock_set, v.exam_date, v.start_time, v.end_time,
             v.location, v.capacity, v.is_active, v.scheduled_activation_datetime) then
        update hubspot_mock_exams
           set mock_exam_name = v.mock_exam_name, mock_type = v.mock_type,
               mock_set = v.mock_set::mock_set_enum, exam_date = v.exam_date,
               start_time = hubspot_sync.time_text(v.start_time), end_time = hubspot_sync.time_text(v.end_time), location = v.location,
               capacity = v.capacity, is_active = v.is_active,
               scheduled_activation_datetime = v.scheduled_activation_datetime,
               updated_at = now(), synced_at = now(), hubspot_last_sync_at = now()
         where id = e.id
        returning * into e;
        v_updated := v_updated + 1;
      else
        v_unchanged := v_unchanged + 1;
      end if;
      -- The live count (exam_seat_shards); a capacity change above has re-dealt it.
      select * into st from _seat_state(e);
      if v.hubspot_total is distinct from st.booked then
        delete from sync_exam_seats where exam_id = e.id;
      else
        insert into sync_exam_seats (exam_id, pushed_seats_version, pushed_total)
        values (e.id, st.version, st.booked)
        on conflict (exam_id) do nothing;
      end if;
    exception
      when check_violation or not_null_violation or invalid_text_representation
           or numeric_value_out_of_range or string_data_right_truncation
           or datetime_field_overflow or unique_violation then
        v_errors := v_errors || jsonb_build_object('hubspot_id', v.hubspot_id, 'message', sqlerrm);
    end;
  end loop;
  return jsonb_build_object('ok', true, 'created', v_created, 'updated', v_updated,
                            'unchanged', v_unchanged, 'errors', v_errors);
end
$$;


create or replace function hubspot_sync.sync_seats_pending(p_after uuid, p_limit int, p_full boolean)
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object('ok', true, 'exams', coalesce(jsonb_agg(to_jsonb(r) order by r.id), '[]'))
    from (select e.id, e.hubspot_id, st.booked as total_bookings, st.version as seats_version
            from hubspot_mock_exams e
            cross join lateral _seat_state(e) st
            left join sync_exam_seats s on s.exam_id = e.id
           where e.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000')
             and (p_full or s.exam_id is null or st.version > s.pushed_seats_version
                  or st.booked <> s.pushed_total)
           order by e.id
           limit least(greatest(p_limit, 1), 2000)) r
$$;


create or replace function hubspot_sync.admin_sync_status()
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  with
  contacts_new as (
    select count(*) as n, min(created_at) at time zone 'UTC' as oldest
      from hubspot_contact_credits where hubspot_id is null),
  contacts_credits as (
    select count(*) as n, min(c.updated_at) at time zone 'UTC' as oldest
      from hubspot_contact_credits c
      left join sync_contact_credits s on s.contact_id = c.id
     where c.hubspot_id is not null
       and (s.contact_id is null or s.pending_push_id is not null
            or s.hubspot_id is distinct from c.hubspot_id
            or s.base is distinct from _credit_vector(c))),
  bookings_new as (
    select count(*) as n, min(created_at) at time zone 'UTC' as oldest
      from hubspot_bookings where hubspot_id is null),
  bookings_changed as (
    select count(*) as n, min(updated_at) at time zone 'UTC' as oldest
      from hubspot_bookings
     where hubspot_id is not null
       and (hubspot_last_sync_at is null or updated_at > (hubspot_last_sync_at at time zone 'UTC'))),
  seats as (
    select count(*) as n, min(e.updated_at) at time zone 'UTC' as oldest
      from hubspot_mock_exams e cross join lateral _seat_state(e) st
      left join sync_exam_seats s on s.exam_id = e.id
     where s.exam_id is null or st.version > s.pushed_seats_version
        or st.booked <> s.pushed_total),
  lease as (
    select * from sync_lease where name = 'hubspot' and expires_at > now())
  select jsonb_build_object(
    'ok', true,
    'now', now(),
    'tables', jsonb_build_object(
      'contacts', jsonb_build_object(
        'total', (select count(*) from hubspot_contact_credits),
        'awaiting_hubspot_id', (select n from contacts_new),
        'oldest_awaiting_at', (select oldest from contacts_new),
        'oldest_awaiting_age_s', (select extract(epoch from now() - oldest)::bigint from contacts_new),
        'changed_since_sync', (select n from contacts_credits),
        'oldest_changed_at', (select oldest from contacts_credits),
        'oldest_changed_age_s', (select extract(epoch from now() - oldest)::bigint from contacts_credits)),
      'bookings', jsonb_build_object(
        'total', (select count(*) from hubspot_bookings),
        'awaiting_hubspot_id', (select n from bookings_new),
        'oldest_awaiting_at', (select oldest from bookings_new),
        'oldest_awaiting_age_s', (select extract(epoch from now() - oldest)::bigint from bookings_new),
        'changed_since_sync', (select n from bookings_changed),
        'oldest_changed_at', (select oldest from bookings_changed),
        'oldest_changed_age_s', (select extract(epoch from now() - oldest)::bigint from bookings_changed)),
      'mock_exams', jsonb_build_object(
        'total', (select count(*) from hubspot_mock_exams),
        'awaiting_hubspot_id', 0,
        'oldest_awaiting_at', null,
        'oldest_awaiting_age_s', null,
        'changed_since_sync', (select n from seats),
        'oldest_changed_at', (select oldest from seats),
        'oldest_changed_age_s', (select extract(epoch from now() - oldest)::bigint from seats),
        'pulled_at', (select updated_at from sync_state where key = 'exams_watermark'))),
    'lease', (select jsonb_build_object('run_id', run_id, 'acquired_at', acquired_at,
                                        'expires_at', expires_at) from lease),
    'running', (select _sync_run_json(r) from sync_runs r
                 where r.id = (select run_id from lease) and r.status = 'running'),
    'full_pass_pending', exists (select 1 from sync_state where key = 'full_pass'),
    'last_runs', jsonb_build_object(
      'delta', (select _sync_run_json(r) from sync_runs r
                 where r.mode = 'delta' and r.status <> 'refused'
                 order by r.started_at desc limit 1),
      'full', (select _sync_run_json(r) from sync_runs r
                where r.mode = 'full' and r.status <> 'refused'
                order by r.started_at desc limit 1)),
    'last_finished', (select _sync_run_json(r) from sync_runs r
                       where r.status not in ('running', 'refused')
                       order by r.started_at desc limit 1),
    'last_success_at', (select max(finished_at) from sync_runs
                         where status in ('succeeded', 'partial')))
$$;


-- Deal every exam's seats from its Active bookings (20251203000900's meaning), each
-- exam row locked as a capacity change locks it, so that bookings in flight under the
-- old functions finish first; the version moves on past every count already copied.
select set_config('app.actor', 'migration:20251212000100', true),
       set_config('app.reason', 'seats dealt into exam_seat_shards', true);
do $$
declare
  e record;
begin
  for e in select id, hubspot_id, capacity from hubspot_sync.hubspot_mock_exams order by id for no key update loop
    update hubspot_sync.hubspot_mock_exams
       set seats_version = seats_version + hubspot_sync._seat_shards_deal(e.id, e.hubspot_id, e.capacity) + 1
     where id = e.id;
  end loop;
end
$$;

-- Access: as every function of the schema (20251203001300).
revoke all on function hubspot_sync._seat_state(hubspot_sync.hubspot_mock_exams) from public, anon, authenticated;
revoke all on function hubspot_sync._seat_shards_deal(uuid, text, int) from public, anon, authenticated;
revoke all on function hubspot_sync._seat_shards_on_insert() from public, anon, authenticated;
revoke all on function hubspot_sync._seat_shards_on_update() from public, anon, authenticated;
revoke all on function hubspot_sync.recount_seats(uuid) from public, anon, authenticated;
revoke all on function hubspot_sync._seat_claim(uuid) from public, anon, authenticated;
revoke all on function hubspot_sync._seat_lock_if(uuid, smallint, text) from public, anon, authenticated;
revoke all on function hubspot_sync._seat_release(uuid) from public, anon, authenticated;
grant execute on function hubspot_sync._seat_state(hubspot_sync.hubspot_mock_exams) to service_role;
grant execute on function hubspot_sync._seat_shards_deal(uuid, text, int) to service_role;
grant execute on function hubspot_sync._seat_shards_on_insert() to service_role;
grant execute on function hubspot_sync._seat_shards_on_update() to service_role;
grant execute on function hubspot_sync.recount_seats(uuid) to service_role;
grant execute on function hubspot_sync._seat_claim(uuid) to service_role;
grant execute on function hubspot_sync._seat_lock_if(uuid, smallint, text) to service_role;
grant execute on function hubspot_sync._seat_release(uuid) to service_role;
