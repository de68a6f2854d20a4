-- The history of sync runs is an audit trail: a rollback gives back the baseline
-- exactly only where there is no history to lose. With runs recorded it refuses, unless
-- the operator asked for a destructive rollback (./run migrate down --allow-destructive)
-- after keeping a copy (pg_dump --table hubspot_sync.sync_runs).
do $$
begin
  if exists (select 1 from hubspot_sync.sync_runs)
     and coalesce(current_setting('migrate.allow_destructive', true), '') <> 'on' then
    raise exception 'hubspot_sync.sync_runs holds % runs of history; keep a copy and pass --allow-destructive',
      (select count(*) from hubspot_sync.sync_runs) using errcode = 'P0001';
  end if;
end
$$;
drop table if exists hubspot_sync.sync_runs;
