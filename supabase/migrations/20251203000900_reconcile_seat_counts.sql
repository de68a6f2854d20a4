-- The replaced system let total_bookings drift (non-atomic writes, webhooks that never
-- landed). From here on the booking functions keep it equal to the number of Active
-- bookings of the exam, so start from the truth.
--
-- Active only, as the original meant it: its capacity check counts is_active =
-- 'Active' (user bookings/create.js), and its running counter was that count's cache.
-- Completed bookings (attendance taken, after the exam) and Cancelled ones hold no seat.
--
-- Touches only exams whose count is wrong; each is a short row lock, audited in
-- supabase_audit_log. Each old value is kept so the rollback can give it back.
select set_config('app.actor', 'migration:20251203000900', true),
       set_config('app.reason', 'total_bookings reconciled to the count of Active bookings', true);
with seats as (
  select e.id, e.total_bookings as was,
         (select count(*)::int
            from hubspot_sync.hubspot_bookings b
           where b.associated_mock_exam = e.hubspot_id
             and b.is_active = 'Active') as held
    from hubspot_sync.hubspot_mock_exams e
), kept as (
  select supabase_migrations.keep('20251203000900', 'total_bookings', s.id::text,
                                  jsonb_build_object('was', s.was, 'set', s.held)::text), s.id, s.held
    from seats s
   where s.was is distinct from s.held
)
update hubspot_sync.hubspot_mock_exams e
   set total_bookings = k.held
  from kept k
 where e.id = k.id;
