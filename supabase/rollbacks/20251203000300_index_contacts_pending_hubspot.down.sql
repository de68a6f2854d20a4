-- migrate: no-transaction
-- Drops what 20251203000300_index_contacts_pending_hubspot built, without blocking writers.
drop index concurrently if exists hubspot_sync.idx_contact_credits_pending_hubspot;
