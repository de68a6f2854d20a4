-- The new audit log replaces the replaced system's trigger on hubspot_mock_exams
-- (exams_audit_trigger, writing hubspot_sync.audit_log): two audit rows per change would
-- double the cost on the booking path for no extra information. The old audit_log
-- table, its rows and its trigger function stay; the trigger's definition is kept
-- (supabase_migrations.kept_objects) and the rollback recreates it exactly, and only
-- if it was there.
-- One table per file, for the reason given in 20251203000100_dual_id_contacts.sql.
set local lock_timeout = '1s';
select supabase_migrations.keep('20251203000150', 'trigger', 'exams_audit_trigger', pg_get_triggerdef(oid))
  from pg_trigger where tgrelid = 'hubspot_sync.hubspot_mock_exams'::regclass and tgname = 'exams_audit_trigger';
drop trigger if exists exams_audit_trigger on hubspot_sync.hubspot_mock_exams;
create or replace trigger record_change after insert or update or delete
  on hubspot_sync.hubspot_mock_exams for each row execute function hubspot_sync.record_change();
