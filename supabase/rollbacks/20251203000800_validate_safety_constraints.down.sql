-- Nothing to undo: the constraints are dropped by 20251203000700's rollback.
select 1;
