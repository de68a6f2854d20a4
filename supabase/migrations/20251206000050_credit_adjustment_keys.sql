-- Admin credit adjustments already applied, by idempotency key: adjust_credits adds
-- signed deltas, so applying one twice changes a balance twice. A retry (lib/db.py
-- after a dropped connection, or the admin's browser after a lost answer) carries the
-- same key and gets the first answer back; the same key with another contact, other
-- deltas or another reason is refused (IDEMPOTENCY_KEY_REUSED). Kept 30 days (cleared
-- by adjust_credits itself), far longer than any retry. A new table.
create table if not exists hubspot_sync.credit_adjustments (
  idempotency_key text        primary key check (length(idempotency_key) between 1 and 255),
  contact_id      uuid        not null,
  request         jsonb       not null,  -- {"deltas", "reason", "admin"}: the fingerprint
  answer          jsonb       not null,
  created_at      timestamptz not null default now()
);
create index if not exists idx_credit_adjustments_created_at
  on hubspot_sync.credit_adjustments (created_at);
alter table hubspot_sync.credit_adjustments enable row level security;
grant select, insert, delete on hubspot_sync.credit_adjustments to service_role;
