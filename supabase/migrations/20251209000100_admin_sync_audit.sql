-- What the admin sync-audit dashboard reads (issue: admin API). Read-only functions
-- over the tables the sync keeps (sync_runs, sync_run_errors, sync_lease, sync_state,
-- sync_contact_credits, sync_exam_seats) and the three mirrored tables; they write
-- nothing and take no row lock, so a dashboard refreshing every few seconds never
-- waits for, or holds up, a booking or a sync batch.
--
-- "Pending" follows the sync's own work lists (sync_pending_counts and the *_pending /
-- *_candidates functions of 20251208000400_sync_functions.sql), so the dashboard's
-- numbers are the backlog the next run will take on, with one addition per list: the
-- time its oldest record has waited, which the 2-hour goal is measured against.
-- Same contract as every function here: jsonb {"ok": true, ...} or a rejection.

-- _sync_run_json: one run as the dashboard lists it (no per-record errors).
create or replace function hubspot_sync._sync_run_json(r hubspot_sync.sync_runs)
returns jsonb language sql stable as $$
  select case when r.id is null then null else jsonb_build_object(
    'id', r.id, 'mode', r.mode, 'trigger', r.trigger, 'status', r.status, 'resumed', r.resumed,
    'started_at', r.started_at, 'last_progress_at', r.last_progress_at,
    'finished_at', r.finished_at,
    'duration_ms', coalesce(r.duration_ms,
                            case when r.status = 'running'
                                 then (extract(epoch from now() - r.started_at) * 1000)::int end),
    'phases', r.phases, 'api_calls', r.api_calls, 'rate_limited', r.rate_limited,
    'retries', r.retries, 'budget_wait_ms', r.budget_wait_ms, 'error_count', r.error_count,
    'message', r.message) end
$$;

-- admin_sync_status: the backlog per table, the lease, the last run of each mode and
-- the last run that finished, in one snapshot (one statement, one MVCC view).
-- Ages are seconds by the database's clock, NULL when nothing waits.
--   contacts.awaiting_hubspot_id  contacts HubSpot has not got; waiting since created_at
--   contacts.credits_changed      balances the credit merge has not settled with HubSpot
--                                 (changed since the base, a push unconfirmed, never
--                                 merged); waiting since the contact's last change
--   bookings.awaiting_hubspot_id  bookings not yet in HubSpot; waiting since created_at
--   bookings.changed_since_sync   in HubSpot, changed since the version pushed; waiting
--                                 since updated_at (the latest change: a lower bound)
--   mock_exams.seats_changed      seat counts HubSpot has not been told; waiting since
--                                 the exam's last change
-- last_runs: the newest run of each mode that did something (refused attempts left
-- out: they did no work); last_finished: the newest that ended, whatever its mode;
-- last_success_at: when a run last went through every phase (succeeded or partial).
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
      from hubspot_mock_exams e left join sync_exam_seats s on s.exam_id = e.id
     where s.exam_id is null or e.seats_version > s.pushed_seats_version
        or coalesce(e.total_bookings, 0) <> s.pushed_total),
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

-- admin_sync_runs: runs newest first, a page at a time (1-based; at most 100 a page).
-- p_include_refused: also list attempts refused because another run held the lease.
create or replace function hubspot_sync.admin_sync_runs(p_page int, p_limit int, p_include_refused boolean)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_total bigint;
  v_runs jsonb;
begin
  if p_page is null or p_page < 1 or p_page > 100000 then
    return _reject('INVALID_INPUT', 'page must be 1 or more', 'page');
  elsif p_limit is null or p_limit not between 1 and 100 then
    return _reject('INVALID_INPUT', 'limit must be 1-100', 'limit');
  end if;
  select count(*) into v_total from sync_runs
   where coalesce(p_include_refused, false) or status <> 'refused';
  select coalesce(jsonb_agg(_sync_run_json(r) order by r.started_at desc, r.id), '[]') into v_runs
    from (select * from sync_runs
           where coalesce(p_include_refused, false) or status <> 'refused'
           order by started_at desc, id
           limit p_limit offset (p_page - 1) * p_limit) r;
  return jsonb_build_object('ok', true, 'runs', v_runs, 'pagination', jsonb_build_object(
    'page', p_page, 'limit', p_limit, 'total', v_total,
    'total_pages', greatest(1, ceil(v_total::numeric / p_limit)::int),
    'has_next', p_page * p_limit < v_total, 'has_previous', p_page > 1));
end
$$;

-- admin_sync_run: one run in detail: its phases and counters, and the records it
-- could not bring across (sync_run_errors, oldest first, at most p_error_limit, with
-- the total), each with HubSpot's correlation id where HubSpot refused it.
create or replace function hubspot_sync.admin_sync_run(p_run_id text, p_error_limit int)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_run sync_runs;
begin
  if p_run_id is null or not _is_uuid(p_run_id) then
    return _reject('INVALID_INPUT', 'run id must be a UUID', 'id');
  elsif p_error_limit is null or p_error_limit not between 0 and 1000 then
    return _reject('INVALID_INPUT', 'error limit must be 0-1000', 'errors');
  end if;
  select * into v_run from sync_runs where id = p_run_id::uuid;
  if not found then
    return _reject('NOT_FOUND', 'No sync run with this id');
  end if;
  return jsonb_build_object('ok', true,
    'run', _sync_run_json(v_run),
    'holds_lease', exists (select 1 from sync_lease
                            where name = 'hubspot' and run_id = v_run.id and expires_at > now()),
    'errors_total', (select count(*) from sync_run_errors where run_id = v_run.id),
    'errors', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', e.id, 'phase', e.phase, 'record_id', e.record_id, 'hubspot_id', e.hubspot_id,
               'severity', e.severity, 'category', e.category, 'message', e.message,
               'correlation_id', e.correlation_id, 'created_at', e.created_at) order by e.id)
        from (select * from sync_run_errors where run_id = v_run.id
               order by id limit p_error_limit) e), '[]'));
end
$$;

-- admin_sync_history: every run that did work in the last p_days days (at most 31),
-- oldest first: what the dashboard's chart of duration and records synced draws.
-- A run every 2 hours is 12 a day, so a month is a few hundred small rows.
create or replace function hubspot_sync.admin_sync_history(p_days int)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if p_days is null or p_days not between 1 and 31 then
    return _reject('INVALID_INPUT', 'days must be 1-31', 'days');
  end if;
  return jsonb_build_object('ok', true, 'since', now() - make_interval(days => p_days),
    'runs', coalesce((
      select jsonb_agg(_sync_run_json(r) order by r.started_at, r.id)
        from sync_runs r
       where r.started_at >= now() - make_interval(days => p_days)
         and r.status <> 'refused'), '[]'));
end
$$;

-- admin_sync_lease: who holds the sync's lease now, if anyone (the trigger's quick
-- check before it starts a run; sync_begin remains the arbiter).
create or replace function hubspot_sync.admin_sync_lease()
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object('ok', true, 'held', l.run_id is not null,
                            'run_id', l.run_id, 'expires_at', l.expires_at)
    from (select 1) one
    left join sync_lease l on l.name = 'hubspot' and l.expires_at > now()
$$;

-- admin_search: the dashboard's one search box. Bookings whose UUID, HubSpot id or
-- booking code is exactly the query (legacy codes are not unique: every match, at most
-- 20), and students by student_id or email as find_students finds them. Read-only.
create or replace function hubspot_sync.admin_search(p_query text)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_query text := btrim(p_query);
  v_students jsonb;
begin
  if v_query is null or length(v_query) < 2 or length(v_query) > 254 then
    return _reject('INVALID_INPUT', 'search with 2 to 254 characters', 'q');
  end if;
  v_students := find_students(v_query);
  return jsonb_build_object('ok', true,
    'students', coalesce(v_students -> 'students', '[]'),
    'bookings', coalesce((
      select jsonb_agg(_booking_json(b, e) order by b.created_at desc)
        from (select * from hubspot_bookings b
               where (_is_uuid(v_query) and b.id = v_query::uuid)
                  or b.hubspot_id = v_query
                  or b.booking_id = v_query
               order by b.created_at desc
               limit 20) b
        left join hubspot_mock_exams e on e.hubspot_id = b.associated_mock_exam), '[]'));
end
$$;

-- admin_booking: one booking by UUID, HubSpot id or booking code (find_booking's
-- cascade, for any student), with its owner's contact, where it stands with HubSpot,
-- and its history from the audit log (who, when, why), newest first.
create or replace function hubspot_sync.admin_booking(p_ref text)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_found jsonb := find_booking(p_ref);
  v_booking hubspot_bookings;
  v_contact hubspot_contact_credits;
begin
  if not (v_found ->> 'ok')::boolean then
    return v_found;
  end if;
  select * into v_booking from hubspot_bookings where id = (v_found -> 'booking' ->> 'id')::uuid;
  select * into v_contact from hubspot_contact_credits
   where student_id = v_booking.student_id and email = v_booking.student_email;
  return jsonb_build_object('ok', true,
    'booking', v_found -> 'booking',
    'contact', case when v_contact.id is null then null else _contact_json(v_contact) end,
    'sync', jsonb_build_object(
      'hubspot_id', v_booking.hubspot_id,
      'hubspot_last_sync_at', v_booking.hubspot_last_sync_at,
      'in_step', v_booking.hubspot_id is not null and v_booking.hubspot_last_sync_at is not null
                 and v_booking.updated_at <= (v_booking.hubspot_last_sync_at at time zone 'UTC')),
    'history', coalesce((
      select jsonb_agg(jsonb_build_object(
               'at', a.performed_at, 'by', a.performed_by, 'reason', a.reason,
               'operation', a.operation, 'changed', a.changed_fields,
               'before', a.old_values, 'after', a.new_values) order by a.id desc)
        from (select * from supabase_audit_log a
               where a.table_name = 'hubspot_bookings' and a.record_id = v_booking.id
               order by a.id desc limit 50) a), '[]'));
end
$$;

-- Only the service role (the admin functions, after checking the admin's token).
do $$
declare
  f text;
begin
  foreach f in array array[
    'hubspot_sync._sync_run_json(hubspot_sync.sync_runs)',
    'hubspot_sync.admin_sync_status()',
    'hubspot_sync.admin_sync_runs(int, int, boolean)',
    'hubspot_sync.admin_sync_run(text, int)',
    'hubspot_sync.admin_sync_history(int)',
    'hubspot_sync.admin_sync_lease()',
    'hubspot_sync.admin_search(text)',
    'hubspot_sync.admin_booking(text)'
  ] loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;
