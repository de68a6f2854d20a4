-- Pre-migration schema: the database as the replaced (HubSpot-first) system left it.
--
-- This file reproduces what already exists in the production Supabase project, so that
-- every later migration is tested against the real starting point. On that project it
-- is already applied: mark it so once with
--   supabase migration repair --status applied 20251201000000
-- (see README, "Migrating the production database"). Every statement is written to be
-- a no-op where the object already exists, so applying it by mistake changes nothing.
--
-- Facts reproduced on purpose (they are fixed by later migrations, not here):
--   * hubspot_id is NOT NULL everywhere: HubSpot had to create a record before Postgres.
--   * audit_log.record_id holds the HubSpot id, not the row's UUID.

create schema if not exists hubspot_sync;

do $$
begin
  if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'hubspot_sync' and t.typname = 'mock_set_enum') then
    create type hubspot_sync.mock_set_enum as enum ('A', 'B', 'C', 'D', 'E', 'F', 'G', 'H');
  end if;
end
$$;

create table if not exists hubspot_sync.hubspot_contact_credits (
  id                    uuid primary key default gen_random_uuid(),
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
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  synced_at             timestamptz,
  unique (student_id, email)
);
create index if not exists idx_contact_credits_student_id on hubspot_sync.hubspot_contact_credits (student_id);
create index if not exists idx_contact_credits_email on hubspot_sync.hubspot_contact_credits (email);
create index if not exists idx_contact_credits_hubspot_id on hubspot_sync.hubspot_contact_credits (hubspot_id);
create index if not exists idx_contact_credits_synced_at on hubspot_sync.hubspot_contact_credits (synced_at);

create table if not exists hubspot_sync.hubspot_mock_exams (
  id                            uuid primary key default gen_random_uuid(),
  hubspot_id                    text not null unique,
  mock_exam_name                text,
  mock_type                     text,
  mock_set                      hubspot_sync.mock_set_enum,
  exam_date                     date,
  start_time                    timestamptz,
  end_time                      timestamptz,
  location                      text,
  capacity                      integer,
  total_bookings                integer default 0,
  is_active                     text,
  scheduled_activation_datetime timestamptz,
  prerequisite_exam_ids         text[] default '{}',
  created_at                    timestamptz not null default now(),
  updated_at                    timestamptz not null default now(),
  synced_at                     timestamptz
);
create index if not exists idx_mock_exams_hubspot_id on hubspot_sync.hubspot_mock_exams (hubspot_id);
create index if not exists idx_mock_exams_exam_date on hubspot_sync.hubspot_mock_exams (exam_date);
create index if not exists idx_mock_exams_is_active on hubspot_sync.hubspot_mock_exams (is_active);

create table if not exists hubspot_sync.hubspot_bookings (
  id                    uuid primary key default gen_random_uuid(),
  hubspot_id            text not null unique,
  booking_id            text,
  associated_mock_exam  text,
  associated_contact_id text,
  student_id            text,
  name                  text,
  student_email         text,
  is_active             text,
  booking_status        text,
  attendance            text,
  attending_location    text,
  exam_date             date,
  dominant_hand         text,
  token_used            text,
  token_refunded        text,
  token_refunded_at     timestamptz,
  token_refund_admin    text,
  start_time            timestamptz,
  end_time              timestamptz,
  ndecc_exam_date       date,
  idempotency_key       text unique,
  mock_type             text,
  mock_set              hubspot_sync.mock_set_enum,
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  synced_at             timestamptz
);
create index if not exists idx_bookings_hubspot_id on hubspot_sync.hubspot_bookings (hubspot_id);
create index if not exists idx_bookings_associated_mock_exam on hubspot_sync.hubspot_bookings (associated_mock_exam);
create index if not exists idx_bookings_associated_contact_id on hubspot_sync.hubspot_bookings (associated_contact_id);

create table if not exists hubspot_sync.audit_log (
  id             bigserial primary key,
  table_name     text not null,
  operation      text not null,
  record_id      text,
  old_values     jsonb,
  new_values     jsonb,
  changed_fields text[],
  performed_at   timestamptz not null default now(),
  performed_by   text default current_user
);

create or replace function hubspot_sync.audit_trigger() returns trigger
language plpgsql as $$
declare
  changed text[];
begin
  if tg_op = 'UPDATE' then
    select coalesce(array_agg(n.key order by n.key), '{}') into changed
    from jsonb_each(to_jsonb(new)) n
    join jsonb_each(to_jsonb(old)) o using (key)
    where n.value is distinct from o.value and n.key not in ('updated_at', 'synced_at');
  end if;
  insert into hubspot_sync.audit_log (table_name, operation, record_id, old_values, new_values, changed_fields)
  values (tg_table_name, tg_op,
          case when tg_op = 'DELETE' then old.hubspot_id else new.hubspot_id end,
          case when tg_op = 'INSERT' then null else to_jsonb(old) end,
          case when tg_op = 'DELETE' then null else to_jsonb(new) end,
          changed);
  return null;
end
$$;

do $$
declare
  t text;
begin
  foreach t in array array['hubspot_contact_credits', 'hubspot_mock_exams', 'hubspot_bookings'] loop
    if not exists (select 1 from pg_trigger where tgname = 'audit_' || t
                   and tgrelid = ('hubspot_sync.' || t)::regclass) then
      execute format('create trigger %I after insert or update or delete on hubspot_sync.%I '
                     'for each row execute function hubspot_sync.audit_trigger()', 'audit_' || t, t);
    end if;
  end loop;
end
$$;

alter table hubspot_sync.hubspot_contact_credits enable row level security;
alter table hubspot_sync.hubspot_mock_exams enable row level security;
alter table hubspot_sync.hubspot_bookings enable row level security;
alter table hubspot_sync.audit_log enable row level security;
