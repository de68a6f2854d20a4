-- Only saves work: without it the next sync writes every exam's seat count again.
set local lock_timeout = '1s';
drop table if exists hubspot_sync.sync_exam_seats;
