-- seats_version: bumped by every change of an exam's seat count, under the exam's row
-- lock. Redis keeps a copy of each exam's seat count for fast reads and the sold-out
-- fast path; a copy is only replaced by one with a higher version, so a slow writer
-- can never roll the cached count back (lib/redis_scripts.py).
-- ADD COLUMN with a constant default is catalogue-only since PostgreSQL 11.
set local lock_timeout = '1s';
alter table hubspot_sync.hubspot_mock_exams
  add column if not exists seats_version bigint not null default 0;
