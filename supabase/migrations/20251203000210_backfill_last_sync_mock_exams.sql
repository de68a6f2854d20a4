-- Every mock_exams row that came from HubSpot counts as in sync as of its last mirror time.
-- Row locks only (no table lock), one table per transaction; the audit trigger
-- ignores this bookkeeping column, so no audit rows are written.
update hubspot_sync.hubspot_mock_exams
   set hubspot_last_sync_at = coalesce(synced_at, updated_at, now())
 where hubspot_last_sync_at is null;
