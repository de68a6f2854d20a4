drop function if exists hubspot_sync.admin_booking(text);
drop function if exists hubspot_sync.admin_search(text);
drop function if exists hubspot_sync.admin_sync_lease();
drop function if exists hubspot_sync.admin_sync_history(int);
drop function if exists hubspot_sync.admin_sync_run(text, int);
drop function if exists hubspot_sync.admin_sync_runs(int, int, boolean);
drop function if exists hubspot_sync.admin_sync_status();
drop function if exists hubspot_sync._sync_run_json(hubspot_sync.sync_runs);
