-- What the admin API does to students, each one call (issue: admin API). Same contract
-- as the booking functions: named parameters, jsonb answer {"ok": true, ...} or a
-- rejection {"ok": false, "code", "message", "field"?}; who and why go to the audit log.

-- adjust_credits: signed changes per credit kind, with a reason, by an admin. All or
-- nothing: if any balance would go below zero nothing changes (CREDITS_WOULD_BE_NEGATIVE).
-- Relative update under the contact's row lock, so a booking at the same moment is
-- neither lost nor double-counted. The HubSpot copy follows through the sync's merge.
-- p_deltas: {"sj_credits": 2, "shared_mock_credits": -1, ...}; unknown kinds are refused.
-- Repeat-safe by p_idempotency_key (credit_adjustments, 20251206000050): the same key
-- answers the first adjustment again (with "replayed": true) and changes nothing; with
-- other values it is refused (IDEMPOTENCY_KEY_REUSED).
create or replace function hubspot_sync.adjust_credits(
  p_contact_id text,
  p_deltas jsonb,
  p_reason text,
  p_admin text,
  p_idempotency_key text
) returns jsonb
language plpgsql
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
set lock_timeout = '3s'  -- as book()
as $$
declare
  v_contact hubspot_contact_credits;
  v_kind text;
  v_value jsonb;
  v_delta jsonb := '{}'::jsonb;
  v_done credit_adjustments;
  v_answer jsonb;
begin
  if p_contact_id is null or not _is_uuid(p_contact_id) then
    return _reject('INVALID_INPUT', 'contact id must be a UUID', 'contact_id');
  elsif p_idempotency_key is null or length(p_idempotency_key) > 255
        or p_idempotency_key !~ '^[!-~]+$' then
    return _reject('INVALID_INPUT', 'Idempotency-Key must be 1-255 printable ASCII characters',
                   'idempotency_key');
  elsif p_admin is null or btrim(p_admin) = '' then
    return _reject('INVALID_INPUT', 'the admin is required', 'admin');
  elsif p_reason is null or length(btrim(p_reason)) < 3 or length(p_reason) > 500 then
    return _reject('INVALID_INPUT', 'a reason of 3 to 500 characters is required', 'reason');
  elsif p_deltas is null or jsonb_typeof(p_deltas) <> 'object' or p_deltas = '{}'::jsonb then
    return _reject('INVALID_INPUT', 'deltas must name at least one credit kind', 'deltas');
  end if;
  for v_kind, v_value in select * from jsonb_each(p_deltas) loop
    if v_kind not in ('sj_credits', 'cs_credits', 'sjmini_credits', 'mock_discussion_token', 'shared_mock_credits') then
      return _reject('INVALID_INPUT', 'unknown credit kind ' || left(v_kind, 40), 'deltas.' || left(v_kind, 40));
    elsif jsonb_typeof(v_value) <> 'number' or v_value::text !~ '^-?[0-9]{1,4}$' then
      return _reject('INVALID_INPUT', 'each delta must be a whole number between -9999 and 9999', 'deltas.' || v_kind);
    end if;
    if (v_value::text)::int <> 0 then
      v_delta := v_delta || jsonb_build_object(v_kind, (v_value::text)::int);
    end if;
  end loop;

  perform set_config('app.actor', 'admin:' || p_admin, true);
  perform set_config('app.reason', p_reason, true);
  select * into v_contact from hubspot_contact_credits where id = p_contact_id::uuid for no key update;
  if not found then
    return _reject('CONTACT_NOT_FOUND', 'No student with this id');
  end if;
  -- Under the contact's row lock: two calls with one key cannot both get past this.
  select * into v_done from credit_adjustments where idempotency_key = p_idempotency_key;
  if found then
    if v_done.contact_id <> v_contact.id
       or v_done.request is distinct from jsonb_build_object('deltas', p_deltas, 'reason', p_reason,
                                                              'admin', p_admin) then
      return _reject('IDEMPOTENCY_KEY_REUSED',
                     'This Idempotency-Key was already used for a different request', 'idempotency_key');
    end if;
    return v_done.answer || jsonb_build_object('replayed', true);
  end if;
  -- Only a kind this change lowers can be refused: a balance the replaced system left
  -- negative (kept as it is) must not block raising it, or changing another kind.
  if (coalesce(v_contact.sj_credits, 0) + coalesce((v_delta->>'sj_credits')::int, 0) < 0
      and coalesce((v_delta->>'sj_credits')::int, 0) < 0)
     or (coalesce(v_contact.cs_credits, 0) + coalesce((v_delta->>'cs_credits')::int, 0) < 0
      and coalesce((v_delta->>'cs_credits')::int, 0) < 0)
     or (coalesce(v_contact.sjmini_credits, 0) + coalesce((v_delta->>'sjmini_credits')::int, 0) < 0
      and coalesce((v_delta->>'sjmini_credits')::int, 0) < 0)
     or (coalesce(v_contact.mock_discussion_token, 0)
           + coalesce((v_delta->>'mock_discussion_token')::int, 0) < 0
      and coalesce((v_delta->>'mock_discussion_token')::int, 0) < 0)
     or (coalesce(v_contact.shared_mock_credits, 0)
           + coalesce((v_delta->>'shared_mock_credits')::int, 0) < 0
      and coalesce((v_delta->>'shared_mock_credits')::int, 0) < 0) then
    return _reject('CREDITS_WOULD_BE_NEGATIVE', 'This change would take a balance below zero', 'deltas');
  end if;
  if v_delta <> '{}'::jsonb then
    update hubspot_contact_credits
       set sj_credits = coalesce(sj_credits, 0) + coalesce((v_delta->>'sj_credits')::int, 0),
           cs_credits = coalesce(cs_credits, 0) + coalesce((v_delta->>'cs_credits')::int, 0),
           sjmini_credits = coalesce(sjmini_credits, 0) + coalesce((v_delta->>'sjmini_credits')::int, 0),
           mock_discussion_token = coalesce(mock_discussion_token, 0) + coalesce((v_delta->>'mock_discussion_token')::int, 0),
           shared_mock_credits = coalesce(shared_mock_credits, 0) + coalesce((v_delta->>'shared_mock_credits')::int, 0),
           updated_at = now()
     where id = v_contact.id
    returning * into v_contact;
  end if;
  v_answer := jsonb_build_object('ok', true, 'applied', v_delta, 'contact', _contact_json(v_contact));
  delete from credit_adjustments where created_at < now() - interval '30 days';
  insert into credit_adjustments (idempotency_key, contact_id, request, answer)
  values (p_idempotency_key, v_contact.id,
          jsonb_build_object('deltas', p_deltas, 'reason', p_reason, 'admin', p_admin), v_answer);
  return v_answer || jsonb_build_object('replayed', false);
end
$$;

-- find_students: look a student up by student_id (exact, any case) or email (exact, or
-- prefix when the query has no '@'), at most 20.
create or replace function hubspot_sync.find_students(p_query text)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_query text := lower(btrim(p_query));
begin
  if v_query is null or length(v_query) < 2 or length(v_query) > 254 then
    return _reject('INVALID_INPUT', 'search with 2 to 254 characters', 'q');
  end if;
  return jsonb_build_object('ok', true, 'students', coalesce((
    select jsonb_agg(_contact_json(c) order by c.student_id)
      from (select * from hubspot_contact_credits c
             where c.student_id = upper(v_query)
                or c.email = v_query
                or (position('@' in v_query) = 0 and c.email like replace(replace(v_query, '%', ''), '_', '\_') || '%')
             order by c.student_id
             limit 20) c), '[]'::jsonb));
end
$$;

-- student_detail: one student, their bookings, and the history of their credits
-- (every audited change: who, when, why, before and after).
create or replace function hubspot_sync.student_detail(p_contact_id text)
returns jsonb
language plpgsql stable
set search_path = hubspot_sync, pg_temp
set timezone = 'UTC'
as $$
declare
  v_contact hubspot_contact_credits;
begin
  if p_contact_id is null or not _is_uuid(p_contact_id) then
    return _reject('INVALID_INPUT', 'contact id must be a UUID', 'contact_id');
  end if;
  select * into v_contact from hubspot_contact_credits where id = p_contact_id::uuid;
  if not found then
    return _reject('CONTACT_NOT_FOUND', 'No student with this id');
  end if;
  return jsonb_build_object('ok', true,
    'contact', _contact_json(v_contact),
    'bookings', coalesce((
      select jsonb_agg(_booking_json(b, e) order by b.exam_date desc nulls last, b.created_at desc)
        from hubspot_bookings b
        left join hubspot_mock_exams e on e.hubspot_id = b.associated_mock_exam
       where b.student_id = v_contact.student_id and b.student_email = v_contact.email), '[]'::jsonb),
    'credit_history', coalesce((
      select jsonb_agg(jsonb_build_object(
               'at', a.performed_at, 'by', a.performed_by, 'reason', a.reason,
               'operation', a.operation, 'changed', a.changed_fields,
               'before', a.old_values, 'after', a.new_values) order by a.id desc)
        from (select * from supabase_audit_log a
               where a.table_name = 'hubspot_contact_credits' and a.record_id = v_contact.id
               order by a.id desc limit 200) a), '[]'::jsonb));
end
$$;

revoke all on function hubspot_sync.adjust_credits(text, jsonb, text, text, text) from public, anon, authenticated;
revoke all on function hubspot_sync.find_students(text) from public, anon, authenticated;
revoke all on function hubspot_sync.student_detail(text) from public, anon, authenticated;
grant execute on function hubspot_sync.adjust_credits(text, jsonb, text, text, text) to service_role;
grant execute on function hubspot_sync.find_students(text) to service_role;
grant execute on function hubspot_sync.student_detail(text) to service_role;
