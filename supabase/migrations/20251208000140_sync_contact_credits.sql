-- The credit merge's memory, one row per contact (see sync_merge_credits in
-- 20251204000400_sync_functions.sql for the algorithm).
--
-- base         the five balances (sj, cs, sjmini, mock_discussion, shared) HubSpot
--              held when PostgreSQL last took in HubSpot's changes: any difference
--              between HubSpot and base is a change made in HubSpot since (a purchase,
--              an admin edit) still to be added to PostgreSQL.
-- base_marker  the contacts' `credits_sync_id` property HubSpot showed with base. Only
--              the sync writes that property, so another value there means HubSpot's
--              balances were last written by a push other than the one we know about.
-- pending_*    a push written to HubSpot whose answer we have not seen: the values,
--              the push id (also sent as credits_sync_id), and when. The next run reads
--              the contact back: credits_sync_id = pending_push_id means it landed.
--
-- No foreign key to hubspot_contact_credits: the tests and tools truncate that table
-- alone, and a row left behind by a deleted contact is never read. A new table.
create table if not exists hubspot_sync.sync_contact_credits (
  contact_id      uuid        primary key,
  hubspot_id      text,
  base            integer[]   not null check (cardinality(base) = 5),
  base_marker     text,
  pending         integer[]   check (cardinality(pending) = 5),
  pending_push_id text,
  pending_at      timestamptz,
  merged_at       timestamptz,
  updated_at      timestamptz not null default now(),
  check ((pending is null) = (pending_push_id is null))
);
alter table hubspot_sync.sync_contact_credits enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_contact_credits to service_role;
