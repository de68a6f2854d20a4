-- Nothing to undo: the backfilled column is removed by 20251203000100's rollback.
select 1;
