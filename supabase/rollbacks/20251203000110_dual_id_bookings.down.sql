-- Back to HubSpot-first for bookings. Refuses (and changes nothing) while any booking
-- still waits for its HubSpot id: run the sync first, or those rows could not be kept.
set local lock_timeout = '1s';
do $$
begin
  if not supabase_migrations.was_kept('20251203000110', 'nullable', 'hubspot_sync.hubspot_bookings.hubspot_id')
     and exists (select 1 from hubspot_sync.hubspot_bookings where hubspot_id is null) then
    raise exception 'bookings without a HubSpot id exist; sync them before rolling back'
      using errcode = 'P0001';
  end if;
end
$$;
do $$
begin
  if not supabase_migrations.was_kept('20251203000110', 'column', 'hubspot_sync.hubspot_bookings.hubspot_last_sync_at') then
    alter table hubspot_sync.hubspot_bookings drop column if exists hubspot_last_sync_at;
  end if;
  if not supabase_migrations.was_kept('20251203000110', 'nullable', 'hubspot_sync.hubspot_bookings.hubspot_id') then
    alter table hubspot_sync.hubspot_bookings alter column hubspot_id set not null;
  end if;
end
$$;
delete from supabase_migrations.kept_objects where version = '20251203000110';
