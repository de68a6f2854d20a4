-- The counts it replaced come back, on exams whose count is still the one it set (an
-- exam booked or cancelled since holds a count the old system never had; it is left).
select set_config('app.actor', 'migration:20251203000900', true),
       set_config('app.reason', 'rollback of the total_bookings reconciliation', true);
update hubspot_sync.hubspot_mock_exams e
   set total_bookings = (k.restore::jsonb ->> 'was')::int
  from supabase_migrations.kept_objects k
 where k.version = '20251203000900' and k.kind = 'total_bookings' and e.id = k.name::uuid
   and e.total_bookings is not distinct from (k.restore::jsonb ->> 'set')::int;
delete from supabase_migrations.kept_objects where version = '20251203000900';
