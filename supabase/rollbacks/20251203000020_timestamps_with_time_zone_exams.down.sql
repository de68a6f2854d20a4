-- Back to the naive UTC timestamps the replaced system reads; under TimeZone UTC this
-- too is a catalogue change, and every value keeps its UTC wall-clock time.
set local timezone = 'UTC';
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_mock_exams
  alter column created_at drop default,
  alter column updated_at drop default,
  alter column created_at type timestamp,
  alter column updated_at type timestamp,
  alter column synced_at type timestamp;
