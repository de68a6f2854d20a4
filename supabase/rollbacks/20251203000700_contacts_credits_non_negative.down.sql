set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_contact_credits drop constraint if exists contact_credits_non_negative;
