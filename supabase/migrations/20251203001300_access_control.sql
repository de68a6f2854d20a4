-- Access: the credits, bookings and audit trail are reachable only through the
-- service role (the functions and the sync). Supabase's client-facing roles, anon and
-- authenticated, get nothing: no schema usage, no table privilege, no function. RLS is
-- on for every table with no policy, so even a future accidental GRANT exposes no row;
-- service_role bypasses RLS by design.

-- Supabase creates these roles in every project; create them where they are missing
-- (the embedded local database, CI) so grants and RLS are real there too.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

revoke all on schema hubspot_sync from public, anon, authenticated;
revoke all on all tables in schema hubspot_sync from public, anon, authenticated;
revoke all on all sequences in schema hubspot_sync from public, anon, authenticated;
revoke all on all functions in schema hubspot_sync from public, anon, authenticated;
revoke all on type hubspot_sync.mock_set_enum from public, anon, authenticated;

-- Objects created later are unreachable for anon and authenticated too: without USAGE
-- on the schema they cannot name anything in it. (PUBLIC's default EXECUTE on new
-- functions can only be revoked database-wide, which would reach beyond this schema;
-- tests/sql/test_access.py checks every table and function instead.)

grant usage on schema hubspot_sync to service_role;
grant select, insert, update, delete on all tables in schema hubspot_sync to service_role;
grant usage, select on all sequences in schema hubspot_sync to service_role;
grant execute on all functions in schema hubspot_sync to service_role;
grant usage on type hubspot_sync.mock_set_enum to service_role;

-- RLS is on for every table already (the pre-migration schema and the audit log's own
-- migration enabled it). Checked here rather than re-enabled: ALTER TABLE would take
-- an ACCESS EXCLUSIVE lock on each table for nothing.
do $$
declare
  missing text;
begin
  select string_agg(c.relname, ', ') into missing
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'hubspot_sync' and c.relkind = 'r' and not c.relrowsecurity;
  if missing is not null then
    raise exception 'row level security is off on: %', missing;
  end if;
end
$$;
