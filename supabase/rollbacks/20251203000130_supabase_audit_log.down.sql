-- The table and its rows are kept on purpose: an audit trail is never rolled back.
-- The trigger function goes (its triggers are gone by now).
drop function if exists hubspot_sync.record_change();
