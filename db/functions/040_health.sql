create or replace function api.health() returns jsonb
language sql stable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object('status', 'ok', 'database_time', pg_catalog.now())
$$;
comment on function api.health() is
$$Whether the database answers; the only endpoint open without a token.$$;
grant execute on function api.health() to anon, authenticated;
