set local lock_timeout = '1s';
drop trigger if exists record_change on hubspot_sync.hubspot_bookings;
create or replace trigger audit_hubspot_bookings after insert or update or delete
  on hubspot_sync.hubspot_bookings for each row execute function hubspot_sync.audit_trigger();
