-- What a rollback needs to know about the database as it was before `up`.
--
-- Production was not empty when these migrations arrived: it may already hold objects
-- under the names they use (the original team's dual-ID attempt added
-- hubspot_last_sync_at and indexes of the same names), and the original's own objects
-- (its audit triggers, the grants on its tables and functions) are replaced or
-- changed on the way. A rollback must give back exactly what was there: never drop
-- what it did not create, never recreate what was not there, and restore a replaced
-- definition or privilege as it was. Each migration that adopts or replaces something
-- records it here, in the same transaction; its rollback reads it back.
--
-- Kept in the migration history's own schema: it is bookkeeping of the migrations,
-- not of the school, and a schema dump of hubspot_sync after up-then-down is the
-- baseline's exactly (tests/sql/test_legacy_baseline.py compares the dumps).
create table if not exists supabase_migrations.kept_objects (
  version text not null,  -- the migration that adopted or replaced it
  kind    text not null,  -- column | index | trigger | acl | ...
  name    text not null,  -- schema-qualified identity
  restore text,           -- a statement or value that gives it back, where one is needed
  primary key (version, kind, name)
);

-- Record an object that existed before `version` touched it (first record wins: a
-- re-run of `up` after a partial failure must not overwrite the original state).
create or replace function supabase_migrations.keep(
  p_version text, p_kind text, p_name text, p_restore text default null)
returns void language sql as $$
  insert into supabase_migrations.kept_objects (version, kind, name, restore)
  values (p_version, p_kind, p_name, p_restore)
  on conflict do nothing;
$$;

create or replace function supabase_migrations.was_kept(p_version text, p_kind text, p_name text)
returns boolean language sql stable as $$
  select exists (select 1 from supabase_migrations.kept_objects
                  where version = p_version and kind = p_kind and name = p_name);
$$;

-- Privileges: save every ACL of an object class as it is, then give each back exactly.
-- A NULL ACL means the built-in default; it is saved as that default spelled out, so
-- the restore revokes what `up` granted and grants back what PUBLIC had.
create or replace function supabase_migrations.keep_acls(p_version text, p_schema text)
returns void language plpgsql as $$
declare
  o record;
begin
  for o in
    select 'schema' as kind, quote_ident(n.nspname) as name,
           coalesce(n.nspacl, acldefault('n', n.nspowner)) as acl
      from pg_namespace n where n.nspname = p_schema
    union all
    select case c.relkind when 'S' then 'sequence' else 'table' end,
           format('%I.%I', n.nspname, c.relname),
           coalesce(c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char", c.relowner))
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = p_schema and c.relkind in ('r', 'p', 'v', 'S')
    union all
    select 'function', p.oid::regprocedure::text, coalesce(p.proacl, acldefault('f', p.proowner))
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = p_schema
    union all
    select 'type', format('%I.%I', n.nspname, t.typname), coalesce(t.typacl, acldefault('T', t.typowner))
      from pg_type t join pg_namespace n on n.oid = t.typnamespace
     where n.nspname = p_schema and t.typtype = 'e'
  loop
    perform supabase_migrations.keep(p_version, 'acl:' || o.kind, o.name, o.acl::text);
  end loop;
end
$$;

create or replace function supabase_migrations.restore_acls(p_version text)
returns void language plpgsql as $$
declare
  o record;
  target text;
  saved aclitem[];
  current_acl aclitem[];
  g record;
begin
  for o in select * from supabase_migrations.kept_objects
            where version = p_version and kind like 'acl:%' loop
    target := case substr(o.kind, 5)
                when 'schema' then 'schema ' when 'sequence' then 'sequence '
                when 'function' then 'function ' when 'type' then 'type ' else 'table ' end || o.name;
    -- The object may be gone (made by a later migration, already rolled back).
    current_acl := case substr(o.kind, 5)
      when 'schema' then (select coalesce(nspacl, acldefault('n'::"char", nspowner)) from pg_namespace
                           where nspname = o.name)
      when 'function' then (select coalesce(proacl, acldefault('f'::"char", proowner)) from pg_proc
                              where oid = to_regprocedure(o.name))
      when 'type' then (select coalesce(typacl, acldefault('T'::"char", typowner)) from pg_type
                         where oid = to_regtype(o.name))
      else (select coalesce(relacl, acldefault('r'::"char", relowner)) from pg_class
             where oid = to_regclass(o.name)) end;
    continue when current_acl is null;
    saved := o.restore::aclitem[];
    for g in select distinct grantee from aclexplode(current_acl) loop
      execute format('revoke all on %s from %s', target,
                     case g.grantee when 0 then 'public' else quote_ident(g.grantee::regrole::text) end);
    end loop;
    -- In the saved order: pg_dump lists grants in ACL order, and so does a reader.
    for g in select grantee, string_agg(privilege_type, ', ') as privileges
               from aclexplode(saved) with ordinality as a(grantor, grantee, privilege_type,
                                                          is_grantable, n)
              group by grantee order by min(n) loop
      execute format('grant %s on %s to %s', g.privileges, target,
                     case g.grantee when 0 then 'public' else quote_ident(g.grantee::regrole::text) end);
    end loop;
  end loop;
  delete from supabase_migrations.kept_objects where version = p_version and kind like 'acl:%';
end
$$;

-- Bookkeeping for the migration runner (the database owner) only.
revoke all on function supabase_migrations.keep(text, text, text, text) from public;
revoke all on function supabase_migrations.was_kept(text, text, text) from public;
revoke all on function supabase_migrations.keep_acls(text, text) from public;
revoke all on function supabase_migrations.restore_acls(text) from public;
