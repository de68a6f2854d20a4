-- The sync's checkpoints, by name: the HubSpot watermarks of the pulls
-- ('exams_watermark', 'contacts_watermark': epoch milliseconds of hs_lastmodifieddate
-- to search from) and the position of an unfinished full pass ('full_pass':
-- {"phase", "after"}). Written in the same call as the batch they follow. A new table.
create table if not exists hubspot_sync.sync_state (
  key        text        primary key,
  value      jsonb       not null,
  run_id     uuid,
  updated_at timestamptz not null default now()
);
alter table hubspot_sync.sync_state enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_state to service_role;
