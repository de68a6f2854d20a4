-- sync_health: where the HubSpot sync stands, for /api/health (lib/health.py): the
-- last run that finished and when a run last went through. Two index look-ups on
-- sync_runs (idx_sync_runs_started_at, and the small set of finished runs), cheap
-- enough for an uptime monitor polling every minute; no backlog counts here (those
-- are the admin status endpoint's, behind sign-in).
create or replace function hubspot_sync.sync_health()
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object(
    'ok', true,
    'last_run', (select jsonb_build_object('status', r.status, 'mode', r.mode,
                                           'started_at', r.started_at, 'finished_at', r.finished_at)
                   from sync_runs r
                  where r.status not in ('running', 'refused')
                  order by r.started_at desc limit 1),
    'last_success_at', (select max(finished_at) from sync_runs
                         where status in ('succeeded', 'partial')),
    'running', exists (select 1 from sync_lease where name = 'hubspot' and expires_at > now()))
$$;

revoke all on function hubspot_sync.sync_health() from public, anon, authenticated;
grant execute on function hubspot_sync.sync_health() to service_role;
