-- The replaced system's audit trigger comes back as it was (if it was there).
set local lock_timeout = '1s';
drop trigger if exists record_change on hubspot_sync.hubspot_mock_exams;
do $$
declare
  definition text;
begin
  select restore into definition from supabase_migrations.kept_objects
   where version = '20251203000150' and kind = 'trigger' and name = 'exams_audit_trigger';
  if definition is not null then
    execute definition;
  end if;
end
$$;
delete from supabase_migrations.kept_objects where version = '20251203000150';
