-- The new audit log replaces the old trigger on hubspot_contact_credits (two audit rows per change would
-- double the cost on the booking path for no extra information). The old audit_log
-- table and its rows stay as history; the rollback reinstates the old trigger.
-- One table per file, for the reason given in 20251203000100_dual_id_contacts.sql.
set local lock_timeout = '1s';
drop trigger if exists audit_hubspot_contact_credits on hubspot_sync.hubspot_contact_credits;
create or replace trigger record_change after insert or update or delete
  on hubspot_sync.hubspot_contact_credits for each row execute function hubspot_sync.record_change();
