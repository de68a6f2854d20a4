-- HubSpot's daily call budget as each sync run last saw it (the X-HubSpot-RateLimit-
-- Daily and -Daily-Remaining headers), for the dashboard's "daily budget nearly
-- spent" alert. The budget is per HubSpot account and shared with the school's other
-- integrations, so only HubSpot can say how much of it is left; a run records what it
-- was told at its end.
--
-- Two nullable columns on sync_runs, a table of its own (no lock on anything bookings
-- use; adding a nullable column without a default is a catalogue-only change), and
-- one function the sync calls after sync_finish. Not fenced: a reading of HubSpot's
-- headers is true whoever holds the lease.
set local lock_timeout = '1s';

alter table hubspot_sync.sync_runs
  add column if not exists daily_limit integer,
  add column if not exists daily_remaining integer;

-- sync_daily_budget: record the run's last reading. NULLs leave what is there.
create or replace function hubspot_sync.sync_daily_budget(p_run_id uuid, p_daily_limit int, p_daily_remaining int)
returns jsonb
language sql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  update sync_runs
     set daily_limit = coalesce(p_daily_limit, daily_limit),
         daily_remaining = coalesce(p_daily_remaining, daily_remaining)
   where id = p_run_id;
  select jsonb_build_object('ok', true)
$$;

-- The dashboard's view of a run now carries the reading (see 20251209000100).
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
    'daily_limit', r.daily_limit, 'daily_remaining', r.daily_remaining,
    'message', r.message) end
$$;

revoke all on function hubspot_sync.sync_daily_budget(uuid, int, int) from public, anon, authenticated;
grant execute on function hubspot_sync.sync_daily_budget(uuid, int, int) to service_role;
