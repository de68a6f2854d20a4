-- The new audit log goes, and its history is not lost: every entry the system wrote
-- (bookings, cancels, adjustments, the sync) moves into the replaced system's own
-- audit_log, in that table's shape (record_id there is the HubSpot id, or the row's
-- UUID where it has none yet; the reason joins who did it). Entries the migrations
-- themselves wrote (actor migration:...) describe changes their rollbacks have just
-- undone, and go with them. With no other entries (a rollback straight after up), the
-- baseline comes back exactly.
insert into hubspot_sync.audit_log
  (table_name, operation, record_id, performed_at, performed_by, old_values, new_values, changed_fields)
select a.table_name, a.operation, coalesce(a.hubspot_id, a.record_id::text),
       a.performed_at at time zone 'UTC',
       a.performed_by || coalesce(' (' || a.reason || ')', ''),
       a.old_values, a.new_values, a.changed_fields
  from hubspot_sync.supabase_audit_log a
 where a.performed_by not like 'migration:%'
 order by a.id;
drop table if exists hubspot_sync.supabase_audit_log;
drop function if exists hubspot_sync.record_change();
