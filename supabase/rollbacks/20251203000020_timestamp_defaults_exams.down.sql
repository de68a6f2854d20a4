-- The replaced system's table had no defaults on these.
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_mock_exams
  alter column created_at drop default,
  alter column updated_at drop default;
