-- Watermarks and the full-pass position only save work: without them the next sync
-- pulls everything from the beginning and starts any full pass afresh. Nothing lost.
set local lock_timeout = '1s';
drop table if exists hubspot_sync.sync_state;
