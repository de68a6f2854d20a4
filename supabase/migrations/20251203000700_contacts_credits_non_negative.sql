-- Safety net behind the booking functions: a balance can never go below zero,
-- whatever code path writes it. Added NOT VALID (catalogue-only, brief lock) and
-- validated in 20251203000800, which scans without blocking writers.
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_contact_credits
  add constraint contact_credits_non_negative check (
    sj_credits >= 0 and cs_credits >= 0 and sjmini_credits >= 0
    and mock_discussion_token >= 0 and shared_mock_credits >= 0) not valid;
