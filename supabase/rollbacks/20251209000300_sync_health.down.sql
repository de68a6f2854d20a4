drop function if exists hubspot_sync.sync_health();
