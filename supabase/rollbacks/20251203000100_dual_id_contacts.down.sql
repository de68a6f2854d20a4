-- Back to HubSpot-first for contacts. Refuses (and changes nothing) while any contact
-- still waits for its HubSpot id: run the sync first, or those rows could not be kept.
set local lock_timeout = '1s';
do $$
begin
  if not supabase_migrations.was_kept('20251203000100', 'nullable', 'hubspot_sync.hubspot_contact_credits.hubspot_id')
     and exists (select 1 from hubspot_sync.hubspot_contact_credits where hubspot_id is null) then
    raise exception 'contacts without a HubSpot id exist; sync them before rolling back'
      using errcode = 'P0001';
  end if;
end
$$;
do $$
begin
  if not supabase_migrations.was_kept('20251203000100', 'column', 'hubspot_sync.hubspot_contact_credits.hubspot_last_sync_at') then
    alter table hubspot_sync.hubspot_contact_credits drop column if exists hubspot_last_sync_at;
  end if;
  if not supabase_migrations.was_kept('20251203000100', 'nullable', 'hubspot_sync.hubspot_contact_credits.hubspot_id') then
    alter table hubspot_sync.hubspot_contact_credits alter column hubspot_id set not null;
  end if;
end
$$;
delete from supabase_migrations.kept_objects where version = '20251203000100';
