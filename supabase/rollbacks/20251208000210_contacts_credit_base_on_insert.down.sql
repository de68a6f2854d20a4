set local lock_timeout = '1s';
drop trigger if exists credit_base_on_insert on hubspot_sync.hubspot_contact_credits;
drop function if exists hubspot_sync._credit_base_on_insert();
