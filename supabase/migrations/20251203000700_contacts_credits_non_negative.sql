-- Safety net behind the booking functions: no write may take a balance below zero,
-- whatever code path makes it (invariant: a balance that was >= 0 stays >= 0; a new
-- row starts >= 0).
--
-- A trigger, not a CHECK constraint: the replaced system's refund path left negative
-- balances in production (./run migrate check counts them), and those rows are kept as
-- they are, not changed silently. A CHECK could not be validated over them, and even
-- NOT VALID it is re-checked on every UPDATE of such a row, so a legacy -1 in one kind
-- would refuse a booking that spends another kind, or the old app's cache upsert.
-- The rule therefore covers new writes: a balance may not become negative, nor more
-- negative; a legacy negative may stay or rise. The WHEN clause keeps the function off
-- the booking path unless some balance is negative.
-- Raises check_violation (23514) under the old constraint's name, as the CHECK did.
create or replace function hubspot_sync._refuse_new_negative_balance() returns trigger
language plpgsql as $$
declare
  kind text;
  new_value int;
  old_value int;
begin
  foreach kind in array array['sj_credits', 'cs_credits', 'sjmini_credits',
                              'mock_discussion_token', 'shared_mock_credits'] loop
    new_value := (to_jsonb(new) ->> kind)::int;
    old_value := case when tg_op = 'UPDATE' then (to_jsonb(old) ->> kind)::int end;
    if new_value < 0 and (old_value is null or new_value < old_value) then
      raise exception 'balance % of contact % would become %', kind, new.id, new_value
        using errcode = 'check_violation', constraint = 'contact_credits_non_negative',
              table = 'hubspot_contact_credits', schema = 'hubspot_sync';
    end if;
  end loop;
  return new;
end
$$;

set local lock_timeout = '1s';
drop trigger if exists contact_credits_non_negative on hubspot_sync.hubspot_contact_credits;
create trigger contact_credits_non_negative
  before insert or update on hubspot_sync.hubspot_contact_credits
  for each row
  when (new.sj_credits < 0 or new.cs_credits < 0 or new.sjmini_credits < 0
        or new.mock_discussion_token < 0 or new.shared_mock_credits < 0)
  execute function hubspot_sync._refuse_new_negative_balance();
