-- Health of the web app: the last sync of each source, across organisations, for
-- GET /health. It names no organisation: /health answers without a token.

create or replace function app.web_sync_health()
returns table (source text, organizations integer, last_started_at timestamptz,
               last_completed_at timestamptz, last_status text, failed_organizations integer,
               running_organizations integer)
language sql stable security definer
set search_path = ''
as $$
    with latest as (
        select distinct on (r.org_id, r.source) r.org_id, r.source, r.status, r.started_at,
               r.completed_at
        from app.sync_runs r
        order by r.org_id, r.source, r.started_at desc
    )
    select l.source::text,
           pg_catalog.count(*)::integer,
           pg_catalog.max(l.started_at),
           pg_catalog.max(l.completed_at),
           (pg_catalog.array_agg(l.status::text order by l.started_at desc))[1],
           pg_catalog.count(*) filter (where l.status = 'failed')::integer,
           pg_catalog.count(*) filter (where l.status in ('started', 'in_progress'))::integer
    from latest l
    group by l.source
    order by l.source
$$;
comment on function app.web_sync_health() is
$$Per sync source: how many organisations have synced, the newest run's start, completion and
status, and how many organisations' latest run failed or is still running.$$;
revoke execute on function app.web_sync_health() from public;
grant execute on function app.web_sync_health() to web_app;
