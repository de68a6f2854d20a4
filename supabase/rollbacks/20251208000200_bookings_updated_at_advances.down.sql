set local lock_timeout = '1s';
drop trigger if exists advance_updated_at on hubspot_sync.hubspot_bookings;
drop function if exists hubspot_sync._advance_booking_updated_at();
