-- Bookings the sync has sent to HubSpot as a create, whose answer it has not yet
-- turned into a HubSpot id. HubSpot's booking_id is a display label that repeats, so
-- a booking cannot be upserted by it (only a property created with unique values can
-- be an idProperty): new bookings are created, and a create is not repeat-safe. So
-- the sync records the send first (this table), then creates; if the answer is lost
-- or the run is killed before the id is written back, the next run finds the record
-- by the booking's idempotency_key (a property the portal already has, holding our
-- own value) with a search, instead of creating a second one. A new table.
create table if not exists hubspot_sync.sync_booking_creates (
  booking_id uuid        primary key,
  run_id     uuid        not null,
  sent_at    timestamptz not null default now()
);
alter table hubspot_sync.sync_booking_creates enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_booking_creates to service_role;

-- sync_booking_creates_sent: record that these bookings are about to be created (the
-- first send's time is kept: recovery waits from it). Entries of bookings that have
-- their HubSpot id by now are done and removed.
create or replace function hubspot_sync.sync_booking_creates_sent(p_run_id uuid, p_ids uuid[])
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  -- Driven by this table (a batch or two of entries), one key look-up per entry: a
  -- join would let the planner walk every booking with a HubSpot id instead (it did:
  -- 0.6 s per batch at 50,000 bookings, with this table's dead index entries).
  delete from sync_booking_creates c
   where (select b.hubspot_id from hubspot_bookings b where b.id = c.booking_id) is not null;
  insert into sync_booking_creates (booking_id, run_id)
  select unnest(p_ids), p_run_id
  on conflict (booking_id) do nothing;
  return jsonb_build_object('ok', true);
end
$$;

-- sync_booking_creates_refused: HubSpot answered that it did not create these (a
-- per-record error, or the whole batch refused): nothing to look for; the next run
-- creates them again once their cause is mended.
create or replace function hubspot_sync.sync_booking_creates_refused(p_run_id uuid, p_ids uuid[])
returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
begin
  if not _sync_hold(p_run_id) then
    return _reject('SYNC_LEASE_LOST', 'another sync run holds the lease');
  end if;
  delete from sync_booking_creates where booking_id = any (p_ids);
  return jsonb_build_object('ok', true);
end
$$;

-- sync_booking_creates_pending: of these bookings, those whose create was sent and
-- whose HubSpot id is still unknown, with how many seconds ago it was first sent.
create or replace function hubspot_sync.sync_booking_creates_pending(p_ids uuid[])
returns jsonb
language sql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
  select jsonb_build_object('ok', true, 'sent', coalesce(jsonb_object_agg(c.booking_id,
           extract(epoch from now() - c.sent_at)::int), '{}'))
    from sync_booking_creates c join hubspot_bookings b on b.id = c.booking_id
   where c.booking_id = any (p_ids) and b.hubspot_id is null
$$;

revoke all on function hubspot_sync.sync_booking_creates_sent(uuid, uuid[]) from public, anon, authenticated;
revoke all on function hubspot_sync.sync_booking_creates_pending(uuid[]) from public, anon, authenticated;
revoke all on function hubspot_sync.sync_booking_creates_refused(uuid, uuid[]) from public, anon, authenticated;
grant execute on function hubspot_sync.sync_booking_creates_refused(uuid, uuid[]) to service_role;
grant execute on function hubspot_sync.sync_booking_creates_sent(uuid, uuid[]) to service_role;
grant execute on function hubspot_sync.sync_booking_creates_pending(uuid[]) to service_role;
