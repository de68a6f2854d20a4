-- The replaced system's audit trigger comes back as it was (if it was there).
set local lock_timeout = '1s';
drop trigger if exists record_change on hubspot_sync.hubspot_contact_credits;
do $$
declare
  definition text;
begin
  select restore into definition from supabase_migrations.kept_objects
   where version = '20251203000140' and kind = 'trigger' and name = 'contact_credits_audit_trigger';
  if definition is not null then
    execute definition;
  end if;
end
$$;
delete from supabase_migrations.kept_objects where version = '20251203000140';
