-- As sync_runs (its rollback runs next): the record of what failed to reach HubSpot is
-- history; refused while it holds any unless --allow-destructive.
do $$
begin
  if exists (select 1 from hubspot_sync.sync_run_errors)
     and coalesce(current_setting('migrate.allow_destructive', true), '') <> 'on' then
    raise exception 'hubspot_sync.sync_run_errors holds % errors of history; keep a copy and pass --allow-destructive',
      (select count(*) from hubspot_sync.sync_run_errors) using errcode = 'P0001';
  end if;
end
$$;
drop table if exists hubspot_sync.sync_run_errors;
