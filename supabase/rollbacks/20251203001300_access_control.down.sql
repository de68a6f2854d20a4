-- Nothing to undo: widening access is never a rollback step. The Supabase roles, if
-- this migration created them, stay (other objects may have been granted to them).
select 1;
