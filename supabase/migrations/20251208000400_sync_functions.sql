-- The HubSpot sync's database side. lib/hubspot/sync.py drives a run; every step that
-- writes here is one of these calls, i.e. one transaction, and none of them is ever
-- open while HubSpot is being called (a transaction held across an HTTP call would
-- pin a pooled connection and hold row locks for seconds).
--
-- Contract shared by every function here:
--   * Named parameters; lists of records travel as one JSON text parameter (p_items),
--     so both database backends (psycopg and PostgREST) pass them the same way.
--   * Returns jsonb {"ok": true, ...} or a rejection {"ok": false, "code", "message"}.
--   * Fencing: every call that writes takes the run id and first renews that run's
--     lease (_sync_hold, which row-locks the lease). A run whose lease was taken by
--     another (it was presumed dead) gets SYNC_LEASE_LOST and writes nothing, so two
--     runs never interleave their writes.
--   * Idempotent: lib/db.py retries a call whose connection dropped, possibly after
--     it committed; each function gives the same end state when called twice.
--   * Locks: exam rows, then contact rows, then booking rows, each set in id order and
--     never more than one kind per call, so no cycle with the booking functions
--     (exam → contact → booking) is possible.

set local lock_timeout = '1s';

-- ---------------------------------------------------------------- lease and runs

-- _sync_hold: renew this run's lease (the row lock it takes also makes a concurrent
-- sync_begin wait until the caller commits). False: another run holds it now.
create or replace function hubspot_sync._sync_hold(p_run_id uuid)
returns boolean
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  update sync_lease
     set renewed_at = now(), expires_at = now() + make_interval(secs => ttl_s)
   where name = 'hubspot' and run_id = p_run_id;
  return found;
end
$$;

-- sync_begin: take the lease for a new run and record the run.
-- The lease is free when nobody holds it or its holder stopped renewing it before
-- expires_at (crashed, killed, frozen). Refused: a 'refused' run row is recorded and
-- {"acquired": false, "holder", "expires_at"} returned. Acquired: runs left 'running'
-- are marked 'abandoned'; an unfinished full pass ('full_pass' in sync_state) makes
-- this run continue it, whatever mode was asked (a full pass does everything a delta
-- does); asking for full starts one. Returns the checkpoints the run needs.
-- Idempotent per run id (a retried call finds its own lease and row).
create or replace function hubspot_sync.sync_begin(
  p_run_id uuid,
  p_mode text,
  p_trigger text,
  p_lease_ttl_s int
) returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
set lock_timeout = '5s'  -- waits only for a running batch of the current holder to commit
as $$
declare
  v_lease sync_lease;
  v_full jsonb;
  v_mode text := p_mode;
  v_resumed boolean := false;
begin
  if p_run_id is null then
    return _reject('INVALID_INPUT', 'run id is required', 'run_id');
  elsif p_mode is null or p_mode not in ('delta', 'full') then
    return _reject('INVALID_INPUT', 'mode must be delta or full', 'mode');
  elsif p_trigger is null or p_trigger !~ '^[a-z0-9_:-]{1,40}$' then
    return _reject('INVALID_INPUT', 'trigger must be 1-40 lower-case letters, digits, _ : -', 'trigger');
  elsif p_lease_ttl_s is null or p_lease_ttl_s not between 1 and 3600 then
    return _reject('INVALID_INPUT', 'lease ttl must be 1-3600 seconds', 'lease_ttl_s');
  end if;

  insert into sync_lease as l (name, run_id, acquired_at, renewed_at, expires_at, ttl_s)
  values ('hubspot', p_run_id, now(), now(), now() + make_interval(secs => p_lease_ttl_s), p_lease_ttl_s)
  on conflict (name) do update
     set run_id = excluded.run_id, acquired_at = excluded.acquired_at,
         renewed_at = excluded.renewed_at, expires_at = excluded.expires_at, ttl_s = excluded.ttl_s
   where l.expires_at <= now() or l.run_id = p_run_id
  returning * into v_lease;

  if not found then
    select * into v_lease from sync_lease where name = 'hubspot';
    insert into sync_runs (id, mode, trigger, status, finished_at, duration_ms, message)
    values (p_run_id, p_mode, p_trigger, 'refused', now(), 0,
            'another run (' || v_lease.run_id || ') holds the lease until ' || v_lease.expires_at)
    on conflict (id) do nothing;
    return jsonb_build_object('ok', true, 'acquired', false, 'holder', v_lease.run_id,
                              'expires_at', v_lease.expires_at);
  end if;

  -- We hold the lease, so any other run still marked running stopped without finishing.
  update sync_runs
     set status = 'abandoned', finished_at = last_progress_at,
         duration_ms = (extract(epoch from last_progress_at - started_at) * 1000)::int,
         message = coalesce(message, 'stopped without finishing (killed or timed out); its lease expired')
   where status = 'running' and id <> p_run_id;

  select value into v_full from sync_state where key = 'full_pass';
  if v_full is not null then
    v_mode := 'full';
    v_resumed := not exists (select 1 from sync_runs where id = p_run_id);
  elsif p_mode = 'full' then
    v_full := jsonb_build_object('phase', 'exams', 'after', null);
    insert into sync_state (key, value, run_id) values ('full_pass', v_full, p_run_id);
  end if;

  insert into sync_runs (id, mode, trigger, status, resumed)
  values (p_run_id, v_mode, p_trigger, 'running', v_resumed)
  on conflict (id) do nothing;
  select mode, resumed into v_mode, v_resumed from sync_runs where id = p_run_id;

  return jsonb_build_object(
    'ok', true, 'acquired', true, 'mode', v_mode, 'resumed', v_resumed,
    'full_pass', v_full, 'expires_at', v_lease.expires_at,
    'exams_watermark', (select value from sync_state where key = 'exams_watermark'),
    'contacts_watermark', (select value from sync_state where key = 'contacts_watermark'));
end
$$;

-- _sync_report: the run row's counters from a report
-- {"phases", "api_calls", "rate_limited", "retries", "budget_wait_ms", "error_count",
--  "errors", "message"?}.
create or replace function hubspot_sync._sync_report(p_run_id uuid, p_report jsonb, p_status text)
returns void
language sql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  update sync_runs
     set phases = coalesce(p_report -> 'phases', phases),
         api_calls = coalesce((p_report ->> 'api_calls')::int, api_calls),
         rate_limited = coalesce((p_report ->> 'rate_limited')::int, rate_limited),
         retries = coalesce((p_report ->> 'retries')::int, retries),
         budget_wait_ms = coalesce((p_report ->> 'budget_wait_ms')::int, budget_wait_ms),
         error_count = coalesce((p_report ->> 'error_count')::int, error_count),
         errors = coalesce(p_report -> 'errors', errors),
         message = coalesce(left(p_report ->> 'message', 2000), message),
         last_progress_at = now(),
         status = coalesce(p_status, status),
         finished_at = case when p_status is null then finished_at else now() end,
         duration_ms = case when p_status is null then duration_ms
                            else (extract(epoch from now() - started_at) * 1000)::int end
   where id = p_run_id
$$;

-- _sync_errors: record the records a run could not bring across (or warns about):
-- [{"phase", "record_id", "hubspot_id", "severity", "category", "message",
-- "correlation_id"}]. Each once per run: a call retried after its commit (lib/db.py)
-- records nothing again.
create or replace function hubspot_sync._sync_errors(p_run_id uuid, p_errors jsonb)
returns void
language sql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  insert into sync_run_errors (run_id, phase, record_id, hubspot_id, severity, category, message, correlation_id)
  select p_run_id, left(x.phase, 40), left(x.record_id, 200), left(x.hubspot_id, 64),
         case when x.severity = 'warning' then 'warning' else 'error' end,
         left(coalesce(x.category, 'UNKNOWN'), 80), left(coalesce(x.message, ''), 2000),
         left(x.correlation_id, 100)
    from jsonb_to_recordset(coalesce(p_errors, '[]')) as x(phase text, record_id text,
         hubspot_id text, severity text, category text, message text, correlation_id text)
   where not exists (
     select 1 from sync_run_errors e
      where e.run_id = p_run_id and e.phase is not distinct from left(x.phase, 40)
        and e.record_id is not distinct from left(x.record_id, 200)
        and e.category = left(coalesce(x.category, 'UNKNOWN'), 80)
        and e.message = left(coalesce(x.message, ''), 2000)
        and e.correlation_id is not distinct from left(x.correlation_id, 100))
$$;

-- sync_progress: after every batch: renew the lease, record the batch's failed
-- records and store the counts so far. One call, so a batch costs one round trip of
-- bookkeeping.
create or replace function hubspot_sync.sync_progress(p_run_id uuid, p_report text, p_errors text default null)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  perform _sync_errors(p_run_id, p_errors::jsonb);
  perform _sync_report(p_run_id, p_report::jsonb, null);
  return jsonb_build_object('ok', true);
end
$$;

-- sync_checkpoint: set (or with p_value NULL, clear) a checkpoint, renewing the lease.
create or replace function hubspot_sync.sync_checkpoint(p_run_id uuid, p_key text, p_value text)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if p_key not in ('exams_watermark', 'contacts_watermark', 'full_pass') then
    return _reject('INVALID_INPUT', 'unknown checkpoint', 'key');
  end if;
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  if p_value is null then
    delete from sync_state where key = p_key;
  else
    insert into sync_state (key, value, run_id, updated_at)
    values (p_key, p_value::jsonb, p_run_id, now())
    on conflict (key) do update set value = excluded.value, run_id = excluded.run_id, updated_at = now();
  end if;
  return jsonb_build_object('ok', true);
end
$$;

-- sync_finish: the run's last word (status, counts, its last failed records) and the
-- lease let go. Not fenced: a run that lost its lease still says how it ended.
-- Finishing twice changes nothing; a run another run marked abandoned keeps that status
-- (its errors are still recorded).
create or replace function hubspot_sync.sync_finish(p_run_id uuid, p_status text, p_report text, p_errors text default null)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if p_status not in ('succeeded', 'partial', 'deadline', 'daily_limit', 'rate_limited',
                      'failed', 'lease_lost') then
    return _reject('INVALID_INPUT', 'not a final status', 'status');
  end if;
  update sync_runs set status = p_status where id = p_run_id and status = 'running';
  if found then
    perform _sync_errors(p_run_id, p_errors::jsonb);
    perform _sync_report(p_run_id, p_report::jsonb, p_status);
  end if;
  delete from sync_lease where name = 'hubspot' and run_id = p_run_id;
  return jsonb_build_object('ok', true);
end
$$;

-- sync_schedule: whether a full pass is due (none finished within p_full_every_s), for
-- the cron, which turns one delta run a week into the full reconciliation.
create or replace function hubspot_sync.sync_schedule(p_full_every_s int)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_last timestamptz;
begin
  select max(finished_at) into v_last from sync_runs
   where mode = 'full' and status in ('succeeded', 'partial');
  return jsonb_build_object('ok', true, 'last_full_at', v_last,
    'full_due', v_last is null or v_last < now() - make_interval(secs => p_full_every_s));
end
$$;

-- sync_pending_counts: how much work a pass has per phase (the command line's progress
-- bars); p_full: what a full pass goes through.
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
    'seats', (select count(*) from hubspot_mock_exams e left join sync_exam_seats s on s.exam_id = e.id
               where p_full or s.exam_id is null or e.seats_version > s.pushed_seats_version
                  or coalesce(e.total_bookings, 0) <> s.pushed_total))
$$;

-- ---------------------------------------------------------------- exams (HubSpot → PostgreSQL)

-- sync_exams_pulled: exam definitions read from HubSpot, which owns them. New exams
-- are inserted; changed definitions updated; total_bookings and seats_version are
-- PostgreSQL's own and never taken from HubSpot (a new exam starts from the bookings
-- that already name it, normally none). HubSpot's own total_bookings only decides
-- whether the seat phase must (re)write it: when it differs from ours, the exam's
-- sync_exam_seats row goes, so the seat phase pushes our count.
-- p_items: [{"hubspot_id", "mock_exam_name", "mock_type", "mock_set", "exam_date",
--   "start_time", "end_time", "location", "capacity", "is_active",
--   "scheduled_activation_datetime", "hubspot_total"}], already validated by the caller;
-- a row the table still refuses (a constraint) is reported in "errors", the rest go on.
-- Locks exam rows only, in hubspot_id order.
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
      if v.hubspot_total is distinct from coalesce(e.total_bookings, 0) then
        delete from sync_exam_seats where exam_id = e.id;
      else
        insert into sync_exam_seats (exam_id, pushed_seats_version, pushed_total)
        values (e.id, e.seats_version, coalesce(e.total_bookings, 0))
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

-- ---------------------------------------------------------------- contacts (PostgreSQL → HubSpot)

-- sync_contacts_pending: contacts HubSpot has not got yet, in id order after p_after.
create or replace function hubspot_sync.sync_contacts_pending(p_after uuid, p_limit int)
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object('ok', true, 'contacts', coalesce(jsonb_agg(to_jsonb(r) order by r.id), '[]'))
    from (select id, student_id, email, firstname, lastname, ndecc_exam_date
            from hubspot_contact_credits
           where hubspot_id is null and id > coalesce(p_after, '00000000-0000-0000-0000-000000000000')
           order by id
           limit least(greatest(p_limit, 1), 2000)) r
$$;

-- sync_contacts_linked: HubSpot ids for contacts that had none. A contact that got an
-- id meanwhile keeps it; an id another contact already holds (two students sharing an
-- email: HubSpot keeps one contact per email) is refused and reported.
create or replace function hubspot_sync.sync_contacts_linked(p_run_id uuid, p_items text)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
set lock_timeout = '3s'
as $$
declare
  v record;
  v_linked int := 0;
  v_conflicts jsonb := '[]';
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  perform set_config('app.actor', 'sync', true);
  perform set_config('app.reason', 'created in HubSpot (sync run ' || p_run_id || ')', true);
  for v in
    select * from jsonb_to_recordset(p_items::jsonb) as x(contact_id uuid, hubspot_id text)
     order by x.contact_id
  loop
    if exists (select 1 from hubspot_contact_credits where hubspot_id = v.hubspot_id and id <> v.contact_id) then
      v_conflicts := v_conflicts || jsonb_build_object('contact_id', v.contact_id, 'hubspot_id', v.hubspot_id,
        'message', 'another contact already holds this HubSpot contact (same email)');
      continue;
    end if;
    update hubspot_contact_credits
       set hubspot_id = v.hubspot_id, hubspot_last_sync_at = now(), synced_at = now()
     where id = v.contact_id and hubspot_id is null;
    if found then
      v_linked := v_linked + 1;
    end if;
  end loop;
  return jsonb_build_object('ok', true, 'linked', v_linked, 'conflicts', v_conflicts);
end
$$;

-- ---------------------------------------------------------------- credits (both ways)

-- _credit_vector: a contact's five balances, in the order every credit array uses.
create or replace function hubspot_sync._credit_vector(c hubspot_sync.hubspot_contact_credits)
returns int[] language sql immutable as $$
  select array[coalesce(c.sj_credits, 0), coalesce(c.cs_credits, 0), coalesce(c.sjmini_credits, 0),
               coalesce(c.mock_discussion_token, 0), coalesce(c.shared_mock_credits, 0)]
$$;

-- _credit_state: what a merge needs to know of a contact's memory before reading
-- HubSpot: base, its HubSpot time in epoch ms (null: never read), and the pending push.
create or replace function hubspot_sync._credit_state(s hubspot_sync.sync_contact_credits)
returns jsonb language sql stable as $$
  select case when s.contact_id is null then null else jsonb_build_object(
    'base', to_jsonb(s.base),
    'base_at_ms', (extract(epoch from s.base_at) * 1000)::bigint,
    'pending', to_jsonb(s.pending),
    'recheck', s.recheck) end
$$;

-- sync_credit_candidates: contacts (with a HubSpot id) whose balances must be merged,
-- in id order after p_after: PostgreSQL changed them since the base, a push awaits
-- confirmation or landed since the base (recheck), or they were never merged. p_full:
-- every contact with a HubSpot id. Each with its merge state (_credit_state; null:
-- never merged).
create or replace function hubspot_sync.sync_credit_candidates(p_after uuid, p_limit int, p_full boolean)
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object('ok', true, 'contacts', coalesce(jsonb_agg(to_jsonb(r) order by r.id), '[]'))
    from (select c.id, c.hubspot_id,
                 case when s.hubspot_id is not distinct from c.hubspot_id then _credit_state(s) end as state
            from hubspot_contact_credits c
            left join sync_contact_credits s on s.contact_id = c.id
           where c.hubspot_id is not null
             and c.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000')
             and (p_full or s.contact_id is null or s.pending_push_id is not null or s.recheck
                  or s.hubspot_id is distinct from c.hubspot_id
                  or s.base is distinct from _credit_vector(c))
           order by c.id
           limit least(greatest(p_limit, 1), 2000)) r
$$;

-- sync_credit_watch: of contacts HubSpot reports as modified (a search, whose values
-- may lag by seconds), those worth reading back and merging: known here, and HubSpot's
-- balances differ from the base, or a push awaits confirmation. Only a filter: the
-- merge itself always uses values read from HubSpot just before.
-- p_items: [{"hubspot_id", "values": [5 ints]}].
create or replace function hubspot_sync.sync_credit_watch(p_items text)
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object('ok', true, 'contacts', coalesce(jsonb_agg(jsonb_build_object(
           'id', c.id, 'hubspot_id', c.hubspot_id,
           'state', case when s.hubspot_id is not distinct from c.hubspot_id then _credit_state(s) end)
           order by c.id), '[]'))
    from jsonb_to_recordset(p_items::jsonb) as x(hubspot_id text, "values" int[])
    join hubspot_contact_credits c on c.hubspot_id = x.hubspot_id
    left join sync_contact_credits s on s.contact_id = c.id
   where s.contact_id is null or s.pending_push_id is not null or s.recheck
      or s.hubspot_id is distinct from c.hubspot_id
      or s.base is distinct from x."values"
$$;

-- sync_merge_credits: the three-way merge of a batch of contacts, one transaction.
--
-- For each contact, H = HubSpot's balances as just read (at HubSpot time seen_at, the
-- record's updatedAt), P = PostgreSQL's, base = HubSpot's balances as of base_at:
--   1. What changed in HubSpot since base_at, by sources other than this sync (a
--      purchase, an admin's edit, another integration): the caller reads HubSpot's
--      property history after base_at and passes the sum, per kind, of each such
--      change (value set minus the value before it) as "changes"; this sync's own
--      pushes (sourceType INTEGRATION, sourceId = its app's id) are left out, so a
--      push whose answer was lost, a push that never arrived, and a late push of a
--      run presumed dead all count the same: for nothing. An admin's edit that our
--      push overwrote still counts. The caller reads the history only when HubSpot's
--      balances moved from base or a push is pending; otherwise nothing changed.
--      With no base_at (a base a first login copied from HubSpot) the change is
--      H − base (no push can be pending then). After a push landed (recheck) the
--      history is read even when H = base: an edit our push overwrote is only there.
--   2. Those changes are ADDED to PostgreSQL in one relative UPDATE under the
--      contact's row lock: a booking committing at the same moment is neither lost
--      nor counted twice.
--   3. A balance cannot go below zero (the constraint behind the booking functions):
--      when HubSpot took away more than the student has left (they spent it meanwhile,
--      and those bookings stand), the balance becomes 0 and a CREDIT_SHORTFALL warning
--      names how much could not be taken.
--   4. The result P' is what HubSpot must show. When it differs from H, the push is
--      recorded as pending BEFORE anything is sent; the caller sends it and then calls
--      sync_confirm_credits. A kill or a lost answer in between leaves the pending
--      push for the next run, whose history read settles it (step 1).
--   base := H and base_at := seen_at whenever HubSpot's changes were taken in.
-- A contact never merged before has no base: HubSpot's current balances become it,
-- i.e. PostgreSQL's balances stand (it is the source of truth for credits since the
-- cut-over) and are pushed; a FIRST_SYNC_DIFFERENCE warning records what HubSpot had.
-- (Contacts copied from HubSpot at first login got their base at that moment, see
-- 20251208000210, so a purchase made since is merged like any other.)
--
-- Fenced: each item names the base_at_ms its changes were counted from; a contact
-- whose memory moved since (another call merged it) is skipped, to be merged again.
-- Idempotent: a retry with the same p_push_id finds its own pending pushes and
-- returns them again, changing nothing.
-- Locks: contact rows (FOR NO KEY UPDATE, in id order), then their merge rows.
-- p_items: [{"contact_id", "hubspot_id", "values": [sj, cs, sjmini, mock_discussion,
-- shared], "seen_at": ISO time, "base_at_ms": as _credit_state gave it, "changes":
-- [5 ints] or null}]. Returns {"ok", "pushes": [{"contact_id", "hubspot_id",
-- "values"}], "merged", "unchanged", "warnings": [...], "skipped": [...]}.
create or replace function hubspot_sync.sync_merge_credits(p_run_id uuid, p_push_id text, p_items text)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
set lock_timeout = '3s'  -- as book(): a contact row is held only for a booking's few ms
as $$
declare
  v record;
  v_contact hubspot_contact_credits;
  v_state sync_contact_credits;
  v_has_state boolean;
  v_p int[];
  v_delta int[];
  v_base_at timestamptz;
  v_want int[];
  v_new int[];
  v_pushes jsonb := '[]';
  v_warnings jsonb := '[]';
  v_skipped jsonb := '[]';
  v_merged int := 0;
  v_unchanged int := 0;
  v_kinds text[] := array['sj_credits', 'cs_credits', 'sjmini_credits', 'mock_discussion_token',
                          'shared_mock_credits'];
  v_kind int;
begin
  if p_push_id is null or p_push_id !~ '^[A-Za-z0-9:_-]{1,100}$' then
    return _reject('INVALID_INPUT', 'push id must be 1-100 letters, digits, : _ -', 'push_id');
  end if;
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  perform set_config('app.actor', 'sync', true);
  perform set_config('app.reason', 'credit changes made in HubSpot (sync run ' || p_run_id || ')', true);

  for v in
    select * from jsonb_to_recordset(p_items::jsonb)
      as x(contact_id uuid, hubspot_id text, "values" int[], seen_at timestamptz,
           base_at_ms bigint, changes int[])
     order by x.contact_id
  loop
    select * into v_contact from hubspot_contact_credits where id = v.contact_id for no key update;
    if not found or v_contact.hubspot_id is distinct from v.hubspot_id then
      v_skipped := v_skipped || jsonb_build_object('contact_id', v.contact_id, 'hubspot_id', v.hubspot_id,
        'message', 'the contact is gone or linked to another HubSpot record');
      continue;
    end if;
    if v."values" is null or cardinality(v."values") <> 5
       or exists (select 1 from unnest(v."values") u(n) where u.n is null or u.n < 0)
       or (v.changes is not null and (cardinality(v.changes) <> 5
           or exists (select 1 from unnest(v.changes) u(n) where u.n is null)))
       or v.seen_at is null then
      v_skipped := v_skipped || jsonb_build_object('contact_id', v.contact_id, 'hubspot_id', v.hubspot_id,
        'message', 'HubSpot''s balances are not five whole numbers of at least 0 with a time');
      continue;
    end if;

    select * into v_state from sync_contact_credits where contact_id = v_contact.id for update;
    v_has_state := found and v_state.hubspot_id is not distinct from v_contact.hubspot_id;
    if v_has_state and v_state.pending_push_id = p_push_id then
      -- This very call already ran (its answer was lost): the same pushes again.
      v_pushes := v_pushes || jsonb_build_object('contact_id', v_contact.id,
        'hubspot_id', v_contact.hubspot_id, 'values', to_jsonb(v_state.pending));
      continue;
    end if;
    if v_has_state and v.base_at_ms is distinct from (extract(epoch from v_state.base_at) * 1000)::bigint then
      v_skipped := v_skipped || jsonb_build_object('contact_id', v.contact_id, 'hubspot_id', v.hubspot_id,
        'message', 'merged by another call since HubSpot was read; merged again next run');
      continue;
    end if;

    v_p := _credit_vector(v_contact);
    v_base_at := v.seen_at;
    if not v_has_state then
      v_delta := array[0, 0, 0, 0, 0];
      -- Expected for a contact the sync itself just created in HubSpot (no balances
      -- there yet); worth a look when HubSpot had balances of its own.
      if v_p is distinct from v."values" and exists (select 1 from unnest(v."values") u(n) where u.n <> 0) then
        v_warnings := v_warnings || jsonb_build_object('contact_id', v_contact.id,
          'hubspot_id', v_contact.hubspot_id, 'category', 'FIRST_SYNC_DIFFERENCE',
          'message', format('first merge of this contact: PostgreSQL''s balances %s kept over HubSpot''s %s',
                            v_p, v."values"));
      end if;
    elsif v.changes is not null then
      v_delta := v.changes;
    elsif v_state.base_at is null then
      v_delta := array(select v."values"[g.i] - v_state.base[g.i] from generate_series(1, 5) g(i) order by g.i);
    elsif v_state.pending is null and not v_state.recheck and v_state.base = v."values" then
      v_delta := array[0, 0, 0, 0, 0];
      v_base_at := v_state.base_at;  -- nothing was read after it: it stays
    else
      v_skipped := v_skipped || jsonb_build_object('contact_id', v.contact_id, 'hubspot_id', v.hubspot_id,
        'message', 'HubSpot''s balances moved or a push is pending, but no history was read');
      continue;
    end if;

    v_want := array(select v_p[g.i] + v_delta[g.i] from generate_series(1, 5) g(i) order by g.i);
    v_new := array(select greatest(w, 0) from unnest(v_want) with ordinality u(w, i) order by u.i);
    for v_kind in 1..5 loop
      if v_want[v_kind] < 0 then
        v_warnings := v_warnings || jsonb_build_object('contact_id', v_contact.id,
          'hubspot_id', v_contact.hubspot_id, 'category', 'CREDIT_SHORTFALL',
          'message', format('HubSpot lowered %s by %s but only %s %s left; set to 0 (%s not taken)',
                            v_kinds[v_kind], -v_delta[v_kind], v_p[v_kind],
                            case when v_p[v_kind] = 1 then 'was' else 'were' end, -v_want[v_kind]));
      end if;
    end loop;

    if v_new is distinct from v_p then
      update hubspot_contact_credits
         set sj_credits = coalesce(sj_credits, 0) + (v_new[1] - v_p[1]),
             cs_credits = coalesce(cs_credits, 0) + (v_new[2] - v_p[2]),
             sjmini_credits = coalesce(sjmini_credits, 0) + (v_new[3] - v_p[3]),
             mock_discussion_token = coalesce(mock_discussion_token, 0) + (v_new[4] - v_p[4]),
             shared_mock_credits = coalesce(shared_mock_credits, 0) + (v_new[5] - v_p[5]),
             updated_at = now(), hubspot_last_sync_at = now()
       where id = v_contact.id;
    end if;

    -- The merge row changes only when something moved: a full pass over contacts
    -- already in step writes nothing.
    if not v_has_state or v_state.base is distinct from v."values"
       or v_state.base_at is distinct from v_base_at or v_state.pending_push_id is not null
       or v_state.recheck or v_new is distinct from v."values" then
    insert into sync_contact_credits as s
      (contact_id, hubspot_id, base, base_at, pending, pending_push_id, pending_at, recheck,
       merged_at, updated_at)
    values (v_contact.id, v_contact.hubspot_id, v."values", v_base_at,
            case when v_new is distinct from v."values" then v_new end,
            case when v_new is distinct from v."values" then p_push_id end,
            case when v_new is distinct from v."values" then now() end, false, now(), now())
    on conflict (contact_id) do update
       set hubspot_id = excluded.hubspot_id, base = excluded.base, base_at = excluded.base_at,
           pending = excluded.pending, pending_push_id = excluded.pending_push_id,
           pending_at = excluded.pending_at, recheck = false, merged_at = excluded.merged_at,
           updated_at = now();
    end if;

    if v_new is distinct from v."values" then
      v_pushes := v_pushes || jsonb_build_object('contact_id', v_contact.id,
        'hubspot_id', v_contact.hubspot_id, 'values', to_jsonb(v_new));
    end if;
    if v_new is distinct from v_p or v_new is distinct from v."values" then
      v_merged := v_merged + 1;
    else
      v_unchanged := v_unchanged + 1;
    end if;
  end loop;
  return jsonb_build_object('ok', true, 'pushes', v_pushes, 'merged', v_merged,
                            'unchanged', v_unchanged, 'warnings', v_warnings, 'skipped', v_skipped);
end
$$;

-- sync_confirm_credits: the answer to a push. p_landed: contact ids HubSpot accepted
-- (base := what was pushed; base_at stays, the push's own history entry is this
-- sync's and never counted; recheck, see 20251208000140); p_refused: contact ids HubSpot
-- refused outright (a per-record error: it did not apply), whose pending push is
-- dropped (base stays HubSpot's value, so the next run pushes again). Contacts in
-- neither list keep their pending push for the next run to settle. Only pushes of
-- this p_push_id are touched: idempotent.
create or replace function hubspot_sync.sync_confirm_credits(
  p_run_id uuid,
  p_push_id text,
  p_landed text,
  p_refused text
) returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_landed int;
  v_refused int;
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  update sync_contact_credits
     set base = pending, recheck = true, pending = null, pending_push_id = null,
         pending_at = null, updated_at = now()
   where pending_push_id = p_push_id
     and contact_id in (select x::uuid from jsonb_array_elements_text(coalesce(p_landed, '[]')::jsonb) x);
  get diagnostics v_landed = row_count;
  update sync_contact_credits
     set pending = null, pending_push_id = null, pending_at = null, updated_at = now()
   where pending_push_id = p_push_id
     and contact_id in (select x::uuid from jsonb_array_elements_text(coalesce(p_refused, '[]')::jsonb) x);
  get diagnostics v_refused = row_count;
  return jsonb_build_object('ok', true, 'landed', v_landed, 'refused', v_refused);
end
$$;

-- ---------------------------------------------------------------- bookings (PostgreSQL → HubSpot)

-- sync_bookings_pending: bookings to push, in id order after p_after, with what the
-- push needs: the HubSpot ids to associate with (the contact's current one, else the
-- one recorded at booking time; the exam's), and whether the associations are still
-- to be made (never fully synced). updated_at travels as text with its microseconds,
-- so the sync can mark exactly the version it pushed.
-- Delta: no HubSpot id, never fully synced, or changed since (idx_bookings_sync_dirty).
-- p_full: every booking.
create or replace function hubspot_sync.sync_bookings_pending(p_after uuid, p_limit int, p_full boolean)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_after uuid := coalesce(p_after, '00000000-0000-0000-0000-000000000000');
  v_limit int := least(greatest(p_limit, 1), 5000);
  v_ids uuid[];
begin
  -- Two statements rather than one with "p_full or ...", so that the delta one matches
  -- the partial index's predicate and reads only the backlog.
  if p_full then
    select array_agg(id order by id) into v_ids from (
      select b.id from hubspot_bookings b where b.id > v_after order by b.id limit v_limit) r;
  else
    select array_agg(id order by id) into v_ids from (
      select b.id from hubspot_bookings b
       where b.id > v_after
         and (b.hubspot_id is null or b.hubspot_last_sync_at is null
              or b.updated_at > (b.hubspot_last_sync_at at time zone 'UTC'))
       order by b.id limit v_limit) r;
  end if;
  return jsonb_build_object('ok', true, 'bookings', coalesce((
    select jsonb_agg(jsonb_build_object(
             'id', b.id, 'hubspot_id', b.hubspot_id, 'booking_id', b.booking_id, 'name', b.name,
             'student_id', b.student_id, 'email', b.student_email, 'is_active', b.is_active,
             'attendance', b.attendance, 'attending_location', b.attending_location,
             'dominant_hand', b.dominant_hand, 'token_used', b.token_used,
             'token_refunded', b.token_refunded, 'token_refunded_at', b.token_refunded_at,
             'idempotency_key', b.idempotency_key, 'updated_at', b.updated_at::text,
             'needs_associations', b.hubspot_last_sync_at is null,
             'exam_hubspot_id', b.associated_mock_exam,
             'contact_hubspot_id', coalesce(c.hubspot_id, b.associated_contact_id))
           order by b.id)
      from hubspot_bookings b
      left join hubspot_contact_credits c on c.student_id = b.student_id and c.email = b.student_email
     where b.id = any (v_ids)), '[]'));
end
$$;

-- sync_bookings_written: what HubSpot now holds. Each item {"id", "hubspot_id",
-- "contact_hubspot_id", "updated_at", "synced"}: a booking without a HubSpot id gets
-- this one (checkpoint right after the upsert, so a kill loses nothing); with
-- synced = true (pushed and associated), hubspot_last_sync_at becomes the updated_at
-- of the version pushed, never now(): a change made while the push was in flight has
-- a later updated_at and stays due. Never moves hubspot_last_sync_at back. A HubSpot
-- id that another booking holds, or that differs from the one this booking has, is
-- refused and reported. Locks booking rows only.
create or replace function hubspot_sync.sync_bookings_written(p_run_id uuid, p_items text)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
set lock_timeout = '3s'  -- as cancel_booking(): a booking row is held for a few ms
as $$
declare
  v_written int;
  v_conflicts jsonb;
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  perform set_config('app.actor', 'sync', true);
  perform set_config('app.reason', 'pushed to HubSpot (sync run ' || p_run_id || ')', true);
  with input as (
    select x.id, x.hubspot_id, x.contact_hubspot_id, x.updated_at, coalesce(x.synced, false) as synced
      from jsonb_to_recordset(p_items::jsonb) as x(id uuid, hubspot_id text, contact_hubspot_id text,
           updated_at timestamptz, synced boolean)
  ), done as (
    update hubspot_bookings b
       set hubspot_id = coalesce(b.hubspot_id, i.hubspot_id),
           associated_contact_id = coalesce(b.associated_contact_id, i.contact_hubspot_id),
           hubspot_last_sync_at = case when i.synced
                                       then greatest(coalesce(b.hubspot_last_sync_at, '-infinity'), i.updated_at)
                                       else b.hubspot_last_sync_at end,
           synced_at = case when i.synced then now() else b.synced_at end
      from input i
     where b.id = i.id
       and (b.hubspot_id = i.hubspot_id
            or (b.hubspot_id is null
                and not exists (select 1 from hubspot_bookings o where o.hubspot_id = i.hubspot_id)))
    returning b.id
  )
  select (select count(*) from done),
         coalesce(jsonb_agg(jsonb_build_object('id', i.id, 'hubspot_id', i.hubspot_id,
           'message', case
             when b.id is null then 'the booking is gone'
             when b.hubspot_id is not null then 'PostgreSQL links this booking to HubSpot record '
                  || b.hubspot_id || ', but HubSpot answered with ' || i.hubspot_id
             else 'another booking already holds HubSpot record ' || i.hubspot_id end))
           filter (where i.id not in (select id from done)), '[]')
    into v_written, v_conflicts
    from input i left join hubspot_bookings b on b.id = i.id;
  return jsonb_build_object('ok', true, 'written', v_written, 'conflicts', v_conflicts);
end
$$;

-- ---------------------------------------------------------------- seat counts (PostgreSQL → HubSpot)

-- sync_seats_pending: exams whose seat count HubSpot has not been told, in id order
-- after p_after (p_full: every exam).
create or replace function hubspot_sync.sync_seats_pending(p_after uuid, p_limit int, p_full boolean)
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object('ok', true, 'exams', coalesce(jsonb_agg(to_jsonb(r) order by r.id), '[]'))
    from (select e.id, e.hubspot_id, coalesce(e.total_bookings, 0) as total_bookings, e.seats_version
            from hubspot_mock_exams e
            left join sync_exam_seats s on s.exam_id = e.id
           where e.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000')
             and (p_full or s.exam_id is null or e.seats_version > s.pushed_seats_version
                  or coalesce(e.total_bookings, 0) <> s.pushed_total)
           order by e.id
           limit least(greatest(p_limit, 1), 2000)) r
$$;

-- sync_seats_pushed: HubSpot now shows these counts: [{"exam_id", "seats_version",
-- "total_bookings"}]. Never moves a version back (a slower, older push loses).
create or replace function hubspot_sync.sync_seats_pushed(p_run_id uuid, p_items text)
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  insert into sync_exam_seats as s (exam_id, pushed_seats_version, pushed_total, pushed_at)
  select x.exam_id, x.seats_version, x.total_bookings, now()
    from jsonb_to_recordset(p_items::jsonb) as x(exam_id uuid, seats_version bigint, total_bookings int)
  on conflict (exam_id) do update
     set pushed_seats_version = excluded.pushed_seats_version, pushed_total = excluded.pushed_total,
         pushed_at = now()
   where excluded.pushed_seats_version >= s.pushed_seats_version;
  return jsonb_build_object('ok', true);
end
$$;

-- ---------------------------------------------------------------- access

-- Only the service role (the cron function, the command line) runs the sync.
do $$
declare
  f text;
begin
  foreach f in array array[
    'hubspot_sync._sync_hold(uuid)',
    'hubspot_sync.sync_begin(uuid, text, text, int)',
    'hubspot_sync._sync_report(uuid, jsonb, text)',
    'hubspot_sync._sync_errors(uuid, jsonb)',
    'hubspot_sync.sync_progress(uuid, text, text)',
    'hubspot_sync.sync_checkpoint(uuid, text, text)',
    'hubspot_sync.sync_finish(uuid, text, text, text)',
    'hubspot_sync.sync_schedule(int)',
    'hubspot_sync.sync_pending_counts(boolean)',
    'hubspot_sync.sync_exams_pulled(uuid, text)',
    'hubspot_sync.sync_contacts_pending(uuid, int)',
    'hubspot_sync.sync_contacts_linked(uuid, text)',
    'hubspot_sync._credit_vector(hubspot_sync.hubspot_contact_credits)',
    'hubspot_sync._credit_state(hubspot_sync.sync_contact_credits)',
    'hubspot_sync.sync_credit_candidates(uuid, int, boolean)',
    'hubspot_sync.sync_credit_watch(text)',
    'hubspot_sync.sync_merge_credits(uuid, text, text)',
    'hubspot_sync.sync_confirm_credits(uuid, text, text, text)',
    'hubspot_sync.sync_bookings_pending(uuid, int, boolean)',
    'hubspot_sync.sync_bookings_written(uuid, text)',
    'hubspot_sync.sync_seats_pending(uuid, int, boolean)',
    'hubspot_sync.sync_seats_pushed(uuid, text)',
    'hubspot_sync._advance_booking_updated_at()',
    'hubspot_sync._credit_base_on_insert()'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;
