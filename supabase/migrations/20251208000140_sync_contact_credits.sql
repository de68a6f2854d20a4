-- The credit merge's memory, one row per contact (see sync_merge_credits in
-- 20251204000400_sync_functions.sql for the algorithm).
--
-- base         the five balances (sj, cs, sjmini, mock_discussion, shared) HubSpot
--              held when PostgreSQL last took in HubSpot's changes: any difference
--              between HubSpot and base is a change made in HubSpot since (a purchase,
--              an admin edit) still to be added to PostgreSQL.
-- base_at      HubSpot's time of the record as base was read from it (its updatedAt):
--              every change in HubSpot's property history up to then is in base. The
--              next merge that finds HubSpot's balances moved reads the history after
--              it and takes in only the changes other sources made (sync_merge_credits).
--              NULL for a base set without reading HubSpot (a first login's copy).
-- pending_*    a push written to HubSpot whose answer we have not seen: the values,
--              the push id (the merge call's own, so a retried call is recognised),
--              and when. The next merge reads the history instead of guessing.
-- recheck      a push landed after base_at: an edit made in HubSpot between the
--              merge's read and the push was overwritten there, and only the history
--              shows it. The next run merges the contact again, reading the history.
--
-- No foreign key to hubspot_contact_credits: the tests and tools truncate that table
-- alone, and a row left behind by a deleted contact is never read. A new table.
create table if not exists hubspot_sync.sync_contact_credits (
  contact_id      uuid        primary key,
  hubspot_id      text,
  base            integer[]   not null check (cardinality(base) = 5),
  base_at         timestamptz,
  pending         integer[]   check (cardinality(pending) = 5),
  pending_push_id text,
  pending_at      timestamptz,
  recheck         boolean     not null default false,
  merged_at       timestamptz,
  updated_at      timestamptz not null default now(),
  check ((pending is null) = (pending_push_id is null))
);
alter table hubspot_sync.sync_contact_credits enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_contact_credits to service_role;
