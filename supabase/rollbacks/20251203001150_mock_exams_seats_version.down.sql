set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_mock_exams drop column if exists seats_version;
