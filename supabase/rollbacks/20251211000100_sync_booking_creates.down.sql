-- A create still unconfirmed would be created again by a sync that no longer knows
-- it was sent: refused while any is, unless --allow-destructive.
do $$
begin
  if exists (select 1 from hubspot_sync.sync_booking_creates c
               join hubspot_sync.hubspot_bookings b on b.id = c.booking_id
              where b.hubspot_id is null)
     and coalesce(current_setting('migrate.allow_destructive', true), '') <> 'on' then
    raise exception 'bookings were sent to HubSpot and their ids are not back yet; run the sync'
      ' to completion or pass --allow-destructive' using errcode = 'P0001';
  end if;
end
$$;
drop function if exists hubspot_sync.sync_booking_creates_pending(uuid[]);
drop function if exists hubspot_sync.sync_booking_creates_refused(uuid, uuid[]);
drop function if exists hubspot_sync.sync_booking_creates_sent(uuid, uuid[]);
drop table if exists hubspot_sync.sync_booking_creates;
