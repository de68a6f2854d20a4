-- The replaced system could give a student two seat-holding bookings of one type on
-- one date (its duplicate check raced). Those rows are production's history and are
-- kept as they are: not cancelled, not deleted, no seat or credit changed. The rule of
-- 20251203001100 (one seat-holding booking per student, date and type) covers every
-- other row: each such group keeps its first booking under the rule, and the later
-- ones are marked `legacy_duplicate`, which the unique index leaves out. The marking is
-- audited (supabase_audit_log, actor migration:20251203001090). ./run migrate check
-- lists the groups beforehand. "First" is the earliest created_at; the baseline leaves
-- created_at NULL where the old app sent none, so HubSpot record ids (which grow with
-- time) order the rest.
--
-- If the old app makes a new duplicate between this file and the index (it can until
-- it is switched off), the index build fails and leaves nothing; roll back to
-- 20251203001000 and run up again, which marks it too.
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_bookings
  add column if not exists legacy_duplicate boolean not null default false;

select set_config('app.actor', 'migration:20251203001090', true),
       set_config('app.reason', 'a second seat-holding booking of one student, date and type,'
                                || ' made by the replaced system: kept, outside the rule', true);
update hubspot_sync.hubspot_bookings b
   set legacy_duplicate = true
  from (select id,
               row_number() over (partition by student_id, student_email, exam_date, mock_type
                                  order by created_at nulls first,
                                           length(hubspot_id) nulls last, hubspot_id, id) as n
          from hubspot_sync.hubspot_bookings
         where is_active in ('Active', 'Completed')) ranked
 where b.id = ranked.id and ranked.n > 1 and not b.legacy_duplicate;
