-- Kept, like sync_runs: the record of what failed to reach HubSpot is audit history.
select 1;
