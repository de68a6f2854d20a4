-- A lease means something only while a run is in flight; without the sync there is
-- nothing to hold. Refuses (and changes nothing) while a run holds it, so a rollback
-- never pulls the lease from under a running sync.
set local lock_timeout = '1s';
do $$
begin
  if exists (select 1 from hubspot_sync.sync_lease where expires_at > now()) then
    raise exception 'a sync run holds the lease; wait for it to finish (or its lease to expire)';
  end if;
end
$$;
drop table if exists hubspot_sync.sync_lease;
