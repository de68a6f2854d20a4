-- Privileges and RLS back to what they were before 20251203001300: every ACL of the
-- schema's objects as kept then (objects made later are gone by now). The Supabase
-- roles are the project's, not this migration's, and stay.
set local lock_timeout = '1s';
select supabase_migrations.restore_acls('20251203001300');
do $$
declare
  t text;
begin
  for t in select name from supabase_migrations.kept_objects
            where version = '20251203001300' and kind = 'rls_off' and to_regclass(name) is not null loop
    execute format('alter table %s disable row level security', t);
  end loop;
end
$$;
delete from supabase_migrations.kept_objects where version = '20251203001300';
