-- Kept on purpose: the merge base is what lets the next sync tell HubSpot's credit
-- changes from PostgreSQL's. Dropping it would make every contact's next merge a
-- first one (PostgreSQL's balances kept over HubSpot's), losing purchases made in
-- HubSpot since the last sync. Re-applying the migration finds it in place.
select 1;
