-- Nothing to undo: the constraints are dropped by 20251203000700/0710's rollbacks.
select 1;
