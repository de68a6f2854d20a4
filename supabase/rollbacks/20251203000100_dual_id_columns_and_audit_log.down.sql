-- Back to HubSpot-first: hubspot_id NOT NULL again, old audit triggers back.
-- Refuses (and changes nothing) while any contact or booking still waits for its
-- HubSpot id: run the sync first, or those rows could not be kept.
-- supabase_audit_log and its rows are kept on purpose: an audit trail is never rolled back.
set local lock_timeout = '1s';

do $$
begin
  if exists (select 1 from hubspot_sync.hubspot_contact_credits where hubspot_id is null)
     or exists (select 1 from hubspot_sync.hubspot_bookings where hubspot_id is null) then
    raise exception 'rows without a HubSpot id exist; sync them before rolling back'
      using errcode = 'P0001';
  end if;
end
$$;

drop trigger if exists record_change on hubspot_sync.hubspot_contact_credits;
drop trigger if exists record_change on hubspot_sync.hubspot_mock_exams;
drop trigger if exists record_change on hubspot_sync.hubspot_bookings;
drop function if exists hubspot_sync.record_change();

create trigger audit_hubspot_contact_credits after insert or update or delete
  on hubspot_sync.hubspot_contact_credits for each row execute function hubspot_sync.audit_trigger();
create trigger audit_hubspot_mock_exams after insert or update or delete
  on hubspot_sync.hubspot_mock_exams for each row execute function hubspot_sync.audit_trigger();
create trigger audit_hubspot_bookings after insert or update or delete
  on hubspot_sync.hubspot_bookings for each row execute function hubspot_sync.audit_trigger();

alter table hubspot_sync.hubspot_contact_credits
  drop column if exists hubspot_last_sync_at,
  alter column hubspot_id set not null;
alter table hubspot_sync.hubspot_bookings
  drop column if exists hubspot_last_sync_at,
  alter column hubspot_id set not null;
alter table hubspot_sync.hubspot_mock_exams
  drop column if exists hubspot_last_sync_at;
