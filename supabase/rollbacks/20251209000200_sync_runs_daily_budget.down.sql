drop function if exists hubspot_sync.sync_daily_budget(uuid, int, int);
-- The dashboard's view of a run as 20251209000100 defined it.
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
set local lock_timeout = '1s';
alter table hubspot_sync.sync_runs drop column if exists daily_remaining, drop column if exists daily_limit;
