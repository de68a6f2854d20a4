-- Every later rollback has read its records by now.
drop function if exists supabase_migrations.restore_acls(text);
drop function if exists supabase_migrations.keep_acls(text, text);
drop function if exists supabase_migrations.was_kept(text, text, text);
drop function if exists supabase_migrations.keep(text, text, text, text);
drop table if exists supabase_migrations.kept_objects;
