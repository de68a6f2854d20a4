-- Dual-ID, step 2: every row that already came from HubSpot counts as in sync as of
-- its last mirror time. Row locks only (no table lock); the audit trigger ignores this
-- bookkeeping column, so no audit rows are written.
update hubspot_sync.hubspot_contact_credits
   set hubspot_last_sync_at = coalesce(synced_at, updated_at, now())
 where hubspot_id is not null and hubspot_last_sync_at is null;

update hubspot_sync.hubspot_mock_exams
   set hubspot_last_sync_at = coalesce(synced_at, updated_at, now())
 where hubspot_last_sync_at is null;

update hubspot_sync.hubspot_bookings
   set hubspot_last_sync_at = coalesce(synced_at, updated_at, now())
 where hubspot_id is not null and hubspot_last_sync_at is null;
