-- What the sync last wrote to each exam's `total_bookings` in HubSpot: the exam's
-- seats_version at the time (hubspot_mock_exams.seats_version moves with every seat
-- change, under the exam's row lock), so "changed since pushed" is
-- seats_version > pushed_seats_version, exact under any concurrency. A new table.
create table if not exists hubspot_sync.sync_exam_seats (
  exam_id             uuid        primary key,
  pushed_seats_version bigint     not null,
  pushed_total        integer     not null,
  pushed_at           timestamptz not null default now()
);
alter table hubspot_sync.sync_exam_seats enable row level security;
grant select, insert, update, delete on hubspot_sync.sync_exam_seats to service_role;
