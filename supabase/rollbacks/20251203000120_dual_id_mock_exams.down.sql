set local lock_timeout = '1s';
do $$
begin
  if not supabase_migrations.was_kept('20251203000120', 'column', 'hubspot_sync.hubspot_mock_exams.hubspot_last_sync_at') then
    alter table hubspot_sync.hubspot_mock_exams drop column if exists hubspot_last_sync_at;
  end if;
end
$$;
delete from supabase_migrations.kept_objects where version = '20251203000120';
