-- A booking's updated_at moves strictly forward whenever a business column changes.
--
-- Why: the sync marks a booking synced with the updated_at of the version it pushed
-- (hubspot_last_sync_at := that value) and treats updated_at > hubspot_last_sync_at
-- as "changed since". The booking functions set updated_at = now(), the start of
-- their transaction; a transaction that started earlier but reached the row later
-- (it waited for the row lock) would write an OLDER updated_at than the version the
-- sync already pushed, and its change would look synced. Forcing each change past the
-- previous value closes that gap: under the row lock, every later change of a row is
-- stamped after every earlier one.
--
-- Bookkeeping columns (the HubSpot link the sync writes back, the sync timestamps)
-- are not changes HubSpot needs to hear about, so they never move updated_at.
-- Cost on the booking path: one comparison per UPDATE (the JSON diff runs only when
-- a writer left updated_at unchanged or behind, which the booking functions never do).
-- A BEFORE trigger; the table is locked only for the catalogue change.
set local lock_timeout = '1s';

create or replace function hubspot_sync._advance_booking_updated_at() returns trigger
language plpgsql as $$
begin
  if new.updated_at is null or new.updated_at <= old.updated_at then
    if (to_jsonb(new) - array['updated_at', 'synced_at', 'hubspot_last_sync_at', 'hubspot_id',
                              'associated_contact_id'])
       is distinct from
       (to_jsonb(old) - array['updated_at', 'synced_at', 'hubspot_last_sync_at', 'hubspot_id',
                              'associated_contact_id']) then
      -- updated_at is the replaced system's naive timestamp, holding UTC.
      new.updated_at := greatest(timezone('UTC', clock_timestamp()), old.updated_at + interval '1 microsecond');
    elsif new.updated_at is null then
      new.updated_at := old.updated_at;
    end if;
  end if;
  return new;
end
$$;

create or replace trigger advance_updated_at before update on hubspot_sync.hubspot_bookings
  for each row execute function hubspot_sync._advance_booking_updated_at();
