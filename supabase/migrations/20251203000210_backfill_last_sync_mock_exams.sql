-- Every mock_exams row that came from HubSpot counts as in sync as of its last mirror time.
-- Row locks only (no table lock), one table per transaction; the audit trigger
-- ignores this bookkeeping column, so no audit rows are written. Where the column was
-- there already (adopted by 20251203000120) its values are the original team's and
-- are left as they are: the rollback could not tell ours from theirs.
update hubspot_sync.hubspot_mock_exams
   set hubspot_last_sync_at = coalesce(synced_at, updated_at, now())
 where hubspot_last_sync_at is null
   and not supabase_migrations.was_kept('20251203000120', 'column', 'hubspot_sync.hubspot_mock_exams.hubspot_last_sync_at');
