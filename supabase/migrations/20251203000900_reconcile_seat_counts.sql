-- The replaced system let total_bookings drift (non-atomic writes, webhooks that never
-- landed). From here on the booking functions keep it equal to the number of bookings
-- holding a seat (is_active 'Active' or 'Completed'), so start from the truth. Touches
-- only exams whose count is wrong; each is a short row lock.
with seats as (
  select e.id,
         (select count(*)::int
            from hubspot_sync.hubspot_bookings b
           where b.associated_mock_exam = e.hubspot_id
             and b.is_active in ('Active', 'Completed')) as held
    from hubspot_sync.hubspot_mock_exams e
)
update hubspot_sync.hubspot_mock_exams e
   set total_bookings = s.held
  from seats s
 where e.id = s.id
   and e.total_bookings is distinct from s.held;
