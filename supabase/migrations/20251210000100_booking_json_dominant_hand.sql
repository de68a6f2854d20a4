-- A booking as the API answers it, with the dominant hand in the one form the API
-- documents ('right' / 'left' / null). Bookings from the replaced system keep what it
-- stored ('true', 'false', 'Right', 'Left'); _dominant_hand reads those the way
-- book() reads its input (true = right), so old rows no longer leak them to clients.
-- Found by the fuzzer (reliability/fuzz.py). Only the function's body changes: its
-- signature, and so its grants, stay as they were.
create or replace function hubspot_sync._booking_json(b hubspot_sync.hubspot_bookings, e hubspot_sync.hubspot_mock_exams)
returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'id', b.id, 'booking_id', b.booking_id, 'hubspot_id', b.hubspot_id,
    'mock_exam_id', e.id, 'mock_exam_hubspot_id', b.associated_mock_exam,
    'student_id', b.student_id, 'email', b.student_email, 'name', b.name,
    'mock_type', b.mock_type, 'mock_set', b.mock_set, 'exam_date', b.exam_date::date,
    'start_time', hubspot_sync.text_time(b.start_time), 'end_time', hubspot_sync.text_time(b.end_time), 'location', e.location,
    'attending_location', b.attending_location,
    'dominant_hand', hubspot_sync._dominant_hand(b.dominant_hand),
    'token_used', b.token_used, 'token_refunded', b.token_refunded = 'true',
    'is_active', b.is_active, 'attendance', b.attendance,
    'created_at', b.created_at at time zone 'UTC', 'updated_at', b.updated_at at time zone 'UTC')
$$;
