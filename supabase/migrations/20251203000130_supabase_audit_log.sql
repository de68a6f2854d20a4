-- The audit log the user asked for: keyed by the row's UUID (the old audit_log keyed
-- by hubspot_id, which new rows do not have yet), with who, why, and when the change
-- reached HubSpot. A new table: no lock on anything that bookings use.
create table if not exists hubspot_sync.supabase_audit_log (
  id                   bigserial primary key,
  table_name           text        not null,
  record_id            uuid        not null,
  hubspot_id           text,
  operation            text        not null,
  changed_fields       text[]      not null default '{}',
  old_values           jsonb,
  new_values           jsonb,
  performed_by         text        not null,
  reason               text,
  performed_at         timestamptz not null default now(),
  synced_to_hubspot_at timestamptz
);
create index if not exists idx_supabase_audit_log_record
  on hubspot_sync.supabase_audit_log (record_id, performed_at);
create index if not exists idx_supabase_audit_log_performed_at
  on hubspot_sync.supabase_audit_log (performed_at);
alter table hubspot_sync.supabase_audit_log enable row level security;

-- record_change: one audit row per inserted, deleted or meaningfully updated row.
-- Who and why come from transaction-local settings (app.actor, app.reason) that the
-- booking functions set; without them the database role is recorded. Updates that
-- touch only bookkeeping (updated_at, synced_at, hubspot_last_sync_at, seats_version) are not
-- business changes and write nothing. For updates, old_values/new_values hold only
-- the changed columns, which keeps the log small on the booking hot path.
create or replace function hubspot_sync.record_change() returns trigger
language plpgsql as $$
declare
  n jsonb := case when tg_op = 'DELETE' then null else to_jsonb(new) end;
  o jsonb := case when tg_op = 'INSERT' then null else to_jsonb(old) end;
  changed text[] := '{}';
  old_diff jsonb;
  new_diff jsonb;
begin
  if tg_op = 'UPDATE' then
    select coalesce(array_agg(k.key order by k.key), '{}'),
           jsonb_object_agg(k.key, o -> k.key),
           jsonb_object_agg(k.key, k.value)
      into changed, old_diff, new_diff
      from jsonb_each(n) k
     where k.value is distinct from o -> k.key
       and k.key not in ('updated_at', 'synced_at', 'hubspot_last_sync_at', 'seats_version');
    if cardinality(changed) = 0 then
      return null;
    end if;
    o := old_diff;
    n := new_diff;
  end if;
  insert into hubspot_sync.supabase_audit_log
    (table_name, record_id, hubspot_id, operation, changed_fields, old_values, new_values,
     performed_by, reason)
  values
    (tg_table_name,
     case when tg_op = 'DELETE' then old.id else new.id end,
     case when tg_op = 'DELETE' then old.hubspot_id else new.hubspot_id end,
     tg_op, changed, o, n,
     coalesce(nullif(current_setting('app.actor', true), ''), current_user),
     nullif(current_setting('app.reason', true), ''));
  return null;
end
$$;
