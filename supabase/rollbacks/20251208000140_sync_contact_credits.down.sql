-- The merge base is what lets the next sync tell HubSpot's credit changes from
-- PostgreSQL's: dropping rows of it makes every such contact's next merge a first one
-- (PostgreSQL's balances kept over HubSpot's), losing purchases made in HubSpot since
-- the last sync. So the table goes only while it is empty (a rollback straight after
-- up gives back the baseline exactly); with rows it refuses, unless the operator asked
-- for a destructive rollback (--allow-destructive).
do $$
begin
  if exists (select 1 from hubspot_sync.sync_contact_credits)
     and coalesce(current_setting('migrate.allow_destructive', true), '') <> 'on' then
    raise exception 'hubspot_sync.sync_contact_credits holds the credit merge base of % contacts;'
      ' run the sync to completion and pass --allow-destructive',
      (select count(*) from hubspot_sync.sync_contact_credits) using errcode = 'P0001';
  end if;
end
$$;
drop table if exists hubspot_sync.sync_contact_credits;
