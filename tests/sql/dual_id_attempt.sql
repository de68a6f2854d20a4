-- Test fixture, not a migration: what the original team's own dual-ID attempt left in
-- production on top of the baseline, written from its PRD 01/02 and mock-set PRDs
-- (docs/original-system-database.md, section 13). Its supabase_audit_log table is
-- added separately by the tests (tests/sql/test_legacy_baseline.py): with it the
-- migration is refused; renamed away, the rest is adopted.
alter table hubspot_sync.hubspot_contact_credits
  alter column hubspot_id drop not null,
  add column if not exists hubspot_last_sync_at timestamptz;
alter table hubspot_sync.hubspot_bookings
  alter column hubspot_id drop not null,
  add column if not exists hubspot_last_sync_at timestamptz;
alter table hubspot_sync.hubspot_mock_exams add column if not exists hubspot_last_sync_at timestamptz;
update hubspot_sync.hubspot_contact_credits set hubspot_last_sync_at = now()
 where hubspot_id is not null and hubspot_last_sync_at is null;
update hubspot_sync.hubspot_bookings set hubspot_last_sync_at = now()
 where hubspot_id is not null and hubspot_last_sync_at is null;
update hubspot_sync.hubspot_mock_exams set hubspot_last_sync_at = now()
 where hubspot_id is not null and hubspot_last_sync_at is null;

create index if not exists idx_bookings_student_id on hubspot_sync.hubspot_bookings (student_id);
create index if not exists idx_bookings_student_email on hubspot_sync.hubspot_bookings (student_email);
create index if not exists idx_contact_credits_no_hubspot_id
  on hubspot_sync.hubspot_contact_credits (id) where hubspot_id is null;
create index if not exists idx_bookings_no_hubspot_id
  on hubspot_sync.hubspot_bookings (id) where hubspot_id is null;
create index if not exists idx_hubspot_bookings_mock_set
  on hubspot_sync.hubspot_bookings (mock_set) where mock_set is not null;

create or replace function hubspot_sync.get_contact_credits(
  p_student_id text default null, p_email text default null, p_id uuid default null,
  p_hubspot_id text default null)
returns hubspot_sync.hubspot_contact_credits language plpgsql as $$
declare
  r hubspot_sync.hubspot_contact_credits;
begin
  if p_id is not null then
    select * into r from hubspot_sync.hubspot_contact_credits where id = p_id;
  elsif p_hubspot_id is not null then
    select * into r from hubspot_sync.hubspot_contact_credits where hubspot_id = p_hubspot_id;
  elsif p_student_id is not null and p_email is not null then
    select * into r from hubspot_sync.hubspot_contact_credits
     where student_id = p_student_id and email = p_email;
  else
    raise exception 'Must provide id, hubspot_id, or (student_id AND email)';
  end if;
  return r;
end
$$;

create or replace function hubspot_sync.check_idempotency_key(p_idempotency_key text)
returns jsonb language plpgsql as $$
declare
  b hubspot_sync.hubspot_bookings;
begin
  if p_idempotency_key is null then
    return null;
  end if;
  select * into b from hubspot_sync.hubspot_bookings where idempotency_key = p_idempotency_key;
  if not found then
    return null;
  end if;
  return jsonb_build_object('found', true, 'booking_id', b.booking_id, 'id', b.id,
    'hubspot_id', b.hubspot_id, 'is_active', b.is_active, 'student_id', b.student_id,
    'mock_exam_id', b.associated_mock_exam, 'created_at', b.created_at);
end
$$;

-- The booking RPC the old app calls (12 arguments, p_mock_set last).
create or replace function hubspot_sync.create_booking_atomic(
  p_booking_id text, p_student_id text, p_student_email text, p_mock_exam_id text,
  p_student_name text, p_token_used text, p_attending_location text, p_dominant_hand text,
  p_idempotency_key text, p_credit_field text, p_new_credit_value integer,
  p_mock_set text default null)
returns jsonb language plpgsql as $$
declare
  v_contact hubspot_sync.hubspot_contact_credits;
  v_exam_date date;
  v_id uuid;
begin
  v_contact := hubspot_sync.get_contact_credits(p_student_id, p_student_email);
  if v_contact.id is null then
    raise exception 'Contact not found for student_id: %, email: %', p_student_id, p_student_email;
  end if;
  select exam_date into v_exam_date from hubspot_sync.hubspot_mock_exams
   where hubspot_id = p_mock_exam_id;
  if not found then
    raise exception 'Mock exam not found: %', p_mock_exam_id;
  end if;
  insert into hubspot_sync.hubspot_bookings (hubspot_id, booking_id, student_id, student_email,
    associated_contact_id, associated_mock_exam, name, is_active, token_used,
    attending_location, dominant_hand, idempotency_key, exam_date, created_at, synced_at, mock_set)
  values (null, p_booking_id, p_student_id, p_student_email, v_contact.hubspot_id,
    p_mock_exam_id, p_student_name, 'Active', p_token_used, p_attending_location,
    p_dominant_hand, p_idempotency_key, v_exam_date, now(), now(),
    p_mock_set::hubspot_sync.mock_set_enum)
  returning id into v_id;
  execute format('update hubspot_sync.hubspot_contact_credits set %I = $1, updated_at = now(),'
                 ' synced_at = now() where id = $2', p_credit_field)
    using p_new_credit_value, v_contact.id;
  return jsonb_build_object('success', true, 'booking_id', v_id, 'booking_code', p_booking_id,
    'contact_hubspot_id', v_contact.hubspot_id, 'mock_exam_hubspot_id', p_mock_exam_id);
end
$$;
