-- The table and its rows are kept on purpose: the history of sync runs is an audit
-- trail, and an audit trail is never rolled back (as supabase_audit_log). Drop it by
-- hand if it is really unwanted.
select 1;
