-- DESTRUCTIVE: removes the whole schema and its data. Only for an empty or scratch
-- database (tests, a local stack being reset); the runner refuses it unless told
-- --allow-destructive.
drop schema if exists hubspot_sync cascade;
