-- A contact that arrives in PostgreSQL already holding a HubSpot id (a first login
-- copying the student from HubSpot, a tool loading a mirror) agrees with HubSpot at
-- that moment: its balances become the credit merge's base (sync_contact_credits),
-- so a purchase made in HubSpot before the next sync is recognised as a change and
-- added, not overwritten. Contacts created without a HubSpot id get their base when
-- the sync first reads them back from HubSpot (see sync_merge_credits).
-- Cost: one insert per new contact, never on the booking path. The table is locked
-- only for the catalogue change.
set local lock_timeout = '1s';

create or replace function hubspot_sync._credit_base_on_insert() returns trigger
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  insert into sync_contact_credits (contact_id, hubspot_id, base, base_at, merged_at)
  values (new.id, new.hubspot_id,
          array[coalesce(new.sj_credits, 0), coalesce(new.cs_credits, 0),
                coalesce(new.sjmini_credits, 0), coalesce(new.mock_discussion_token, 0),
                coalesce(new.shared_mock_credits, 0)],
          null, now())
  on conflict (contact_id) do nothing;
  return null;
end
$$;

create or replace trigger credit_base_on_insert after insert on hubspot_sync.hubspot_contact_credits
  for each row when (new.hubspot_id is not null)
  execute function hubspot_sync._credit_base_on_insert();
