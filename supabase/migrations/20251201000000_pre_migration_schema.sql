-- Pre-migration schema: the database as the replaced (HubSpot-first) system left it.
--
-- Written from the facts of the original system's own SQL (harmon-tuazon/
-- PD_Mocks_Booking_ExpressVersion, PRDs/supabase/sql_scripts/ at f657668^, 11 scripts;
-- docs/original-system-database.md lists them, section by section). No code was copied:
-- this file states the end state those scripts produce, in their dependency order, so
-- that every later migration is tested against the real starting point: naive
-- timestamps, text start/end times, the original's audit triggers and functions, its
-- RLS policies and grants.
--
-- On the production project it is already applied: mark it once with
--   supabase migration repair --status applied 20251201000000
-- (README, "Migrating the production database"). Every statement is a no-op where the
-- object already exists, so applying it by mistake changes nothing.
--
-- Where the scripts leave a choice, the decision and its reason:
--   * hubspot_contact_credits is in hubspot_sync: the scripts create it in public, but
--     their audit script, both PRDs and every RPC name hubspot_sync.hubspot_contact_credits
--     (moved by hand in production).
--   * mock_set (enum hubspot_sync.mock_set_enum) on exams and bookings, and the UNIQUE on
--     bookings.idempotency_key: no script makes them, but the app at f657668^ writes
--     mock_set and relies on 23505 from that key, and PRD 01 lists both as present.
--   * hubspot_sync.audit_log: no script creates its base table (the audit script adds
--     columns to it); its base is the scripts' commented-out definition.
--   * increment_exam_bookings is created unqualified by its script, so in public (the
--     SQL editor's first schema); its pinned search_path finds the exams table.
--   * hubspot_id is NOT NULL, as the scripts say. The team's half-finished dual-ID
--     attempt (nullable ids, hubspot_last_sync_at, its own supabase_audit_log) is the
--     variant tests/sql/dual_id_attempt.sql adds on top of this file.

-- Supabase makes these roles in every project; the embedded database and CI need them
-- for the original's grants and policies to be real.
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

create schema if not exists hubspot_sync;

do $$
begin
  if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'hubspot_sync' and t.typname = 'mock_set_enum') then
    create type hubspot_sync.mock_set_enum as enum ('A', 'B', 'C', 'D', 'E', 'F', 'G', 'H');
  end if;
end
$$;

-- supabase-setup.sql, then add-missing-columns.sql (renames and added columns), then
-- add-token-refunded-column.sql; column order is the order those produce.
create table if not exists hubspot_sync.hubspot_bookings (
  id                    uuid default gen_random_uuid() primary key,
  hubspot_id            text not null unique,
  booking_id            text,
  associated_mock_exam  text,
  associated_contact_id text,
  student_id            text,
  name                  text,
  student_email         text,
  booking_status        text,
  is_active             text,
  attendance            text,
  attending_location    text,
  exam_date             timestamp,
  dominant_hand         text,
  created_at            timestamp,
  updated_at            timestamp,
  synced_at             timestamp default now(),
  token_used            text,
  token_refunded_at     timestamptz,
  token_refund_admin    text,
  start_time            text,
  end_time              text,
  ndecc_exam_date       date,
  idempotency_key       text unique,
  mock_type             text,
  token_refunded        text default null,
  mock_set              hubspot_sync.mock_set_enum default null
);
create index if not exists idx_bookings_hubspot_id on hubspot_sync.hubspot_bookings (hubspot_id);
create index if not exists idx_bookings_exam_id on hubspot_sync.hubspot_bookings (associated_mock_exam);
create index if not exists idx_bookings_contact_id on hubspot_sync.hubspot_bookings (associated_contact_id);

create table if not exists hubspot_sync.hubspot_mock_exams (
  id                            uuid default gen_random_uuid() primary key,
  hubspot_id                    text not null unique,
  mock_exam_name                text,
  mock_type                     text,
  exam_date                     date,
  start_time                    text,
  end_time                      text,
  location                      text,
  capacity                      integer,
  total_bookings                integer default 0,
  is_active                     text,
  created_at                    timestamp,
  updated_at                    timestamp,
  synced_at                     timestamp default now(),
  scheduled_activation_datetime timestamptz,
  prerequisite_exam_ids         text[] default '{}',
  mock_set                      hubspot_sync.mock_set_enum
);
create index if not exists idx_exams_hubspot_id on hubspot_sync.hubspot_mock_exams (hubspot_id);
create index if not exists idx_exams_date on hubspot_sync.hubspot_mock_exams (exam_date);
create index if not exists idx_exams_active on hubspot_sync.hubspot_mock_exams (is_active);
create index if not exists idx_hubspot_mock_exams_prerequisite_ids
  on hubspot_sync.hubspot_mock_exams using gin (prerequisite_exam_ids)
  where prerequisite_exam_ids is not null and array_length(prerequisite_exam_ids, 1) > 0;
comment on column hubspot_sync.hubspot_mock_exams.prerequisite_exam_ids is
  'Array of HubSpot mock exam IDs that are prerequisites for this exam (Mock Discussions only). Synced from HubSpot association type 1340.';

-- contact-credits-setup.sql
create table if not exists hubspot_sync.hubspot_contact_credits (
  id                    uuid default gen_random_uuid() primary key,
  hubspot_id            text not null unique,
  student_id            text not null,
  email                 text not null,
  firstname             text,
  lastname              text,
  sj_credits            integer default 0,
  cs_credits            integer default 0,
  sjmini_credits        integer default 0,
  mock_discussion_token integer default 0,
  shared_mock_credits   integer default 0,
  ndecc_exam_date       text,
  created_at            timestamp default now(),
  updated_at            timestamp default now(),
  synced_at             timestamp default now(),
  constraint unique_student_email unique (student_id, email)
);
create index if not exists idx_contact_credits_student_id on hubspot_sync.hubspot_contact_credits (student_id);
create index if not exists idx_contact_credits_email on hubspot_sync.hubspot_contact_credits (email);
create index if not exists idx_contact_credits_hubspot_id on hubspot_sync.hubspot_contact_credits (hubspot_id);
create index if not exists idx_contact_credits_synced_at on hubspot_sync.hubspot_contact_credits (synced_at);
comment on table hubspot_sync.hubspot_contact_credits is
  'Secondary database (read replica) for HubSpot contact credit data. Eliminates 429 rate limit errors.';
comment on column hubspot_sync.hubspot_contact_credits.synced_at is
  'Last time this record was synced from HubSpot (source of truth)';
comment on column hubspot_sync.hubspot_contact_credits.sj_credits is 'Situational Judgment specific credits';
comment on column hubspot_sync.hubspot_contact_credits.cs_credits is 'Clinical Skills specific credits';
comment on column hubspot_sync.hubspot_contact_credits.sjmini_credits is
  'Mini-mock specific credits (no shared credits)';
comment on column hubspot_sync.hubspot_contact_credits.mock_discussion_token is
  'Mock Discussion specific credits (no shared credits)';
comment on column hubspot_sync.hubspot_contact_credits.shared_mock_credits is
  'Shared credits usable for SJ and CS only';

-- RLS and the "deny direct access" policies (supabase-setup.sql, contact-credits-setup.sql).
alter table hubspot_sync.hubspot_bookings enable row level security;
alter table hubspot_sync.hubspot_mock_exams enable row level security;
alter table hubspot_sync.hubspot_contact_credits enable row level security;
do $$
declare
  p record;
begin
  for p in select * from (values
      ('hubspot_bookings', 'Deny direct access to bookings'),
      ('hubspot_mock_exams', 'Deny direct access to mock_exams'),
      ('hubspot_contact_credits', 'Deny direct access to contact_credits')) v(tbl, name) loop
    if not exists (select 1 from pg_policies where schemaname = 'hubspot_sync'
                   and tablename = p.tbl and policyname = p.name) then
      execute format('create policy %I on hubspot_sync.%I for all to anon, authenticated'
                     ' using (false)', p.name, p.tbl);
    end if;
  end loop;
end
$$;
revoke all on hubspot_sync.hubspot_bookings from anon, authenticated;
revoke all on hubspot_sync.hubspot_mock_exams from anon, authenticated;
revoke all on hubspot_sync.hubspot_contact_credits from anon, authenticated;

-- sync-metadata-table.sql as sync-metadata-fix.sql left it.
create table if not exists public.sync_metadata (
  id                  uuid default gen_random_uuid() primary key,
  sync_type           text not null unique,
  last_sync_timestamp bigint not null,
  updated_at          timestamp default now(),
  created_at          timestamp default now()
);
create index if not exists idx_sync_metadata_type on public.sync_metadata (sync_type);
alter table public.sync_metadata enable row level security;
do $$
begin
  if not exists (select 1 from pg_policies where schemaname = 'public'
                 and tablename = 'sync_metadata' and policyname = 'service_role_all_access') then
    create policy service_role_all_access on public.sync_metadata for all using (true) with check (true);
  end if;
end
$$;
grant all on public.sync_metadata to service_role;
grant usage on schema public to service_role;
grant select on public.sync_metadata to authenticated;
insert into public.sync_metadata (sync_type, last_sync_timestamp)
values ('mock_exams', 0), ('contact_credits', 0), ('bookings', 0)
on conflict (sync_type) do nothing;
comment on table public.sync_metadata is 'Tracks last successful sync timestamps for incremental HubSpot syncs';
comment on column public.sync_metadata.sync_type is 'Type of sync: mock_exams, contact_credits, or bookings';
comment on column public.sync_metadata.last_sync_timestamp is
  'Unix timestamp (ms) of last successful sync - used for hs_lastmodifieddate filter';
comment on column public.sync_metadata.updated_at is 'Last time this sync was updated';

-- add-audit-columns.sql, on the audit table whose base the scripts assume.
create table if not exists hubspot_sync.audit_log (
  id           uuid default gen_random_uuid() primary key,
  table_name   text not null,
  operation    text not null,
  record_id    text,
  performed_at timestamp default now(),
  performed_by text
);
alter table hubspot_sync.audit_log
  add column if not exists old_values jsonb,
  add column if not exists new_values jsonb,
  add column if not exists changed_fields text[];

-- The keys whose values differ, over the new row's keys, bookkeeping times left out.
create or replace function hubspot_sync.get_changed_fields(old_row jsonb, new_row jsonb)
returns text[] language plpgsql immutable as $$
declare
  changed text[] := '{}';
  k text;
begin
  if old_row is null or new_row is null then
    return changed;
  end if;
  for k in select jsonb_object_keys(new_row) loop
    if k not in ('synced_at', 'updated_at') and old_row -> k is distinct from new_row -> k then
      changed := changed || k;
    end if;
  end loop;
  return changed;
end
$$;

-- One function per table, as the original has them; each writes one audit_log row per
-- inserted, updated or deleted row.
do $$
declare
  f record;
begin
  for f in select * from (values ('log_booking_changes', 'hubspot_bookings'),
                                  ('log_contact_credits_changes', 'hubspot_contact_credits'),
                                  ('log_exam_changes', 'hubspot_mock_exams')) v(fn, tbl) loop
    execute format($f$
      create or replace function hubspot_sync.%I() returns trigger language plpgsql as $body$
      declare
        old_json jsonb;
        new_json jsonb;
        changed text[];
      begin
        if tg_op = 'DELETE' then
          old_json := to_jsonb(old);
        elsif tg_op = 'INSERT' then
          new_json := to_jsonb(new);
        else
          old_json := to_jsonb(old);
          new_json := to_jsonb(new);
          changed := hubspot_sync.get_changed_fields(old_json, new_json);
        end if;
        insert into hubspot_sync.audit_log
          (table_name, operation, record_id, performed_by, old_values, new_values, changed_fields)
        values (%L, tg_op, coalesce(new.hubspot_id, old.hubspot_id), current_user,
                old_json, new_json, changed);
        return coalesce(new, old);
      end
      $body$ $f$, f.fn, f.tbl);
  end loop;
end
$$;

do $$
declare
  t record;
begin
  for t in select * from (values ('bookings_audit_trigger', 'hubspot_bookings', 'log_booking_changes'),
                                  ('contact_credits_audit_trigger', 'hubspot_contact_credits',
                                   'log_contact_credits_changes'),
                                  ('exams_audit_trigger', 'hubspot_mock_exams', 'log_exam_changes'))
             v(name, tbl, fn) loop
    if not exists (select 1 from pg_trigger where tgname = t.name
                   and tgrelid = ('hubspot_sync.' || t.tbl)::regclass) then
      execute format('create trigger %I after insert or update or delete on hubspot_sync.%I'
                     ' for each row execute function hubspot_sync.%I()', t.name, t.tbl, t.fn);
    end if;
  end loop;
end
$$;

-- increment-exam-bookings-rpc.sql: the seat counter's atomic step, never below 0.
create or replace function public.increment_exam_bookings(p_exam_id text, p_delta integer)
returns integer language plpgsql security definer set search_path = hubspot_sync, pg_temp as $$
declare
  v_new_count integer;
begin
  update hubspot_mock_exams
     set total_bookings = greatest(0, coalesce(total_bookings, 0) + p_delta),
         updated_at = now(), synced_at = now()
   where hubspot_id = p_exam_id
  returning total_bookings into v_new_count;
  if not found then
    raise exception 'Exam % not found in Supabase', p_exam_id;
  end if;
  return v_new_count;
end
$$;
grant execute on function public.increment_exam_bookings(text, integer) to service_role;

-- create-prerequisite-rpc-functions.sql
create or replace function hubspot_sync.update_exam_prerequisites(
  p_exam_id text, p_add_ids text[] default '{}', p_remove_ids text[] default '{}')
returns jsonb language plpgsql as $$
declare
  v_previous text[];
  v_result text[];
  v_added int;
  v_removed int;
begin
  select coalesce(prerequisite_exam_ids, '{}') into v_previous
    from hubspot_sync.hubspot_mock_exams where hubspot_id = p_exam_id;
  if not found then
    raise exception 'Exam % not found in Supabase', p_exam_id;
  end if;
  update hubspot_sync.hubspot_mock_exams
     set prerequisite_exam_ids = (
           select coalesce(array_agg(distinct elem order by elem), '{}')
             from (select unnest(v_previous) except select unnest(p_remove_ids)
                   union select unnest(p_add_ids)) s(elem)
            where elem is not null and elem <> ''),
         updated_at = now()
   where hubspot_id = p_exam_id
  returning prerequisite_exam_ids into v_result;
  v_result := coalesce(v_result, '{}');
  select count(*) into v_added from unnest(v_result) x
   where x = any(p_add_ids) and not x = any(v_previous);
  select count(*) into v_removed from unnest(v_previous) x
   where x = any(p_remove_ids) and not x = any(v_result);
  return jsonb_build_object(
    'success', true, 'exam_id', p_exam_id, 'prerequisite_exam_ids', v_result,
    'previous_count', coalesce(array_length(v_previous, 1), 0),
    'current_count', coalesce(array_length(v_result, 1), 0),
    'added_count', v_added, 'removed_count', v_removed,
    'requested_add', p_add_ids, 'requested_remove', p_remove_ids);
end
$$;
grant execute on function hubspot_sync.update_exam_prerequisites(text, text[], text[]) to service_role;

create or replace function hubspot_sync.set_exam_prerequisites(p_exam_id text, p_prerequisite_ids text[])
returns jsonb language plpgsql as $$
declare
  v_previous_count int;
  v_result text[];
begin
  select coalesce(array_length(prerequisite_exam_ids, 1), 0) into v_previous_count
    from hubspot_sync.hubspot_mock_exams where hubspot_id = p_exam_id;
  update hubspot_sync.hubspot_mock_exams
     set prerequisite_exam_ids = coalesce(p_prerequisite_ids, '{}'), updated_at = now()
   where hubspot_id = p_exam_id
  returning prerequisite_exam_ids into v_result;
  if not found then
    raise exception 'Exam % not found in Supabase', p_exam_id;
  end if;
  return jsonb_build_object(
    'success', true, 'exam_id', p_exam_id, 'prerequisite_exam_ids', v_result,
    'previous_count', v_previous_count,
    'current_count', coalesce(array_length(v_result, 1), 0));
end
$$;
grant execute on function hubspot_sync.set_exam_prerequisites(text, text[]) to service_role;
