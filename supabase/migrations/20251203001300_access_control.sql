-- Access: the credits, bookings and audit trail are reachable only through the
-- service role (the functions and the sync). Supabase's client-facing roles, anon and
-- authenticated, get nothing: no schema usage, no table privilege, no function. RLS is
-- on for every table with no policy, so even a future accidental GRANT exposes no row;
-- service_role bypasses RLS by design.

-- The Supabase roles exist by now: the baseline (20251201000000) makes them where a
-- database lacks them (the embedded local one, CI).

-- The privileges as the replaced system left them (its REVOKEs and its EXECUTE grants to
-- service_role) are kept, so that the rollback gives back exactly these.
select supabase_migrations.keep_acls('20251203001300', 'hubspot_sync');
select supabase_migrations.keep_acls('20251203001300', 'public');

-- What the replaced system left open in `public`, closed: its seat counter is SECURITY
-- DEFINER and, like every new function, executable by PUBLIC, so any client holding
-- the anon key could move any exam's seat count through PostgREST; and its script
-- granted authenticated SELECT on sync_metadata. The old app calls both as
-- service_role, whose grants stay.
revoke execute on function public.increment_exam_bookings(text, integer) from public, anon, authenticated;
revoke all on public.sync_metadata from public, anon, authenticated;

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

-- RLS on every table of the schema. The replaced system's tables have it, and so do
-- ours, but its audit_log never had it (no script enables it), nor may a table left by
-- hand (the dual-ID attempt's renamed audit table). Those get it here, each recorded so
-- that the rollback turns it off again; a table that has it is not touched (ALTER
-- TABLE would take an ACCESS EXCLUSIVE lock for nothing).
set local lock_timeout = '1s';
do $$
declare
  t text;
begin
  for t in select format('%I.%I', n.nspname, c.relname)
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'hubspot_sync' and c.relkind = 'r' and not c.relrowsecurity
            order by 1 loop
    perform supabase_migrations.keep('20251203001300', 'rls_off', t);
    execute format('alter table %s enable row level security', t);
  end loop;
end
$$;
