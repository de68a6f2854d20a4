-- find_students: look a student up by student_id (exact, any case) or email (exact, or
-- prefix when the query has no '@'), at most 20. The prefix is matched as typed: `%`,
-- `_` and `\` are escaped for LIKE. 20251206000100 dropped `%` instead, so the search
-- `%%` (two characters, as the API asks) became the empty prefix and listed every
-- student (issue 15). Read-only; returns {ok, students} or a rejection naming `q`.
-- Only the function's body changes: its signature, and so its grants, stay as they were.
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
                or (position('@' in v_query) = 0
                    and c.email like replace(replace(replace(v_query, '\', '\\'), '%', '\%'), '_', '\_') || '%'
                                escape '\')
             order by c.student_id
             limit 20) c), '[]'::jsonb));
end
$$;
