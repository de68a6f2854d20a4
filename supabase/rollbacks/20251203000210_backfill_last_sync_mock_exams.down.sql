-- Nothing to undo: the column goes with the dual-ID rollback for this table.
select 1;
