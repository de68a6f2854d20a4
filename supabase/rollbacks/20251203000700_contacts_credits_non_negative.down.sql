set local lock_timeout = '1s';
drop trigger if exists contact_credits_non_negative on hubspot_sync.hubspot_contact_credits;
drop function if exists hubspot_sync._refuse_new_negative_balance();
