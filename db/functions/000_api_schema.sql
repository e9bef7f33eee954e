-- The api schema holds no data: it is dropped and rebuilt from these files on every migrate, so
-- a function or view removed from the files disappears from the API too.
drop schema if exists api cascade;
create schema api;
comment on schema api is 'The public contract served by PostgREST: views and functions, no data.';

grant usage on schema api to anon, authenticated;
-- Policies and views call the identity helpers in app; tables there stay closed by grants.
grant usage on schema app to anon, authenticated, sync_worker, web_app;
