-- The WebSocket relay of the web app (DESIGN §8, issue 5): one call serves every connected
-- client of a web process. For each reader it does what PostgREST does for a request (role
-- authenticated, the reader's JWT claims, the pre-request check) and reads api.events_since as
-- that user, so row-level security and the outbox's ordering guarantee decide what each client
-- gets. Only the web_app login may call these: they act as the users the web app has
-- authenticated, and must never be reachable by a user (they are not in api, and not granted to
-- authenticated).
--
-- The role and the request settings are put back (role none = the web_app login, claims empty)
-- before the call returns, and they are transaction-local anyway; each reader runs in its own
-- subtransaction, so one reader's error (an unknown or purged event id: PT410, a deactivated
-- user: PT403) is reported for that reader alone.

-- The body of each given event (org_id, id), as api.events shows it. Only web_app may call it,
-- and app.web_relay_events passes only the events row-level security just gave some reader.
create or replace function app.web_event_bodies(p_org_ids uuid[], p_ids bigint[])
returns table (id bigint, body text)
language sql stable security definer
set search_path = ''
as $$
    select e.id,
           pg_catalog.to_jsonb(v)::text
    from (select distinct k.org_id, k.id
          from rows from (pg_catalog.unnest(p_org_ids), pg_catalog.unnest(p_ids)) as k(org_id, id)) k
    join app.events e on e.org_id = k.org_id and e.id = k.id
    cross join lateral (select e.org_id, e.id, e.type, e.employee_id, e.recipient_id, e.entity,
                               e.entity_id, e.payload, e.created_at) v
$$;
comment on function app.web_event_bodies(uuid[], bigint[]) is
    'The api.events JSON of the given events, for the web relay (web_app only).';
revoke execute on function app.web_event_bodies(uuid[], bigint[]) from public;
grant execute on function app.web_event_bodies(uuid[], bigint[]) to web_app;

create or replace function app.web_relay_events(p_readers jsonb, p_max_rows integer default 500)
returns table (kind text, reader text, event_id bigint, body text, error_code text,
               error_message text)
language plpgsql volatile
set search_path = ''
as $$
declare
    r record;
    v_ids bigint[];
    v_orgs uuid[];
    v_all_ids bigint[] := '{}';
    v_all_orgs uuid[] := '{}';
    v_head bigint;
begin
    if pg_catalog.jsonb_typeof(p_readers) is distinct from 'array' then
        raise exception 'readers must be a JSON array'
            using errcode = '22023',
                  hint = 'Pass [{"key": ..., "claims": {...}, "after_id": n}, ...].';
    end if;
    if p_max_rows is null or p_max_rows not between 1 and 10000 then
        raise exception 'max_rows must be between 1 and 10000, not %', p_max_rows
            using errcode = '22023', hint = 'Ask for at most 10000 events a reader.';
    end if;
    -- The horizon of this round, taken before any reader is served: every event of a transaction
    -- below xmin that a reader may read is delivered to it by this call (or was before).
    kind := 'horizon';
    body := pg_catalog.jsonb_build_object(
        'xmin', pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text,
        'xmax', pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text)::text;
    return next;
    kind := null;
    body := null;

    perform pg_catalog.set_config('role', 'authenticated', true);
    perform pg_catalog.set_config('request.method', 'GET', true);
    perform pg_catalog.set_config('request.path', '/ws', true);
    for r in
        select x.key, x.claims, x.after_id
        from pg_catalog.jsonb_to_recordset(p_readers) as x(key text, claims jsonb, after_id bigint)
    loop
        begin
            perform pg_catalog.set_config('request.jwt.claims', coalesce(r.claims, '{}')::text, true);
            -- As for every request: refuses unknown and inactive users, and caches the user's
            -- organisation, role and employee for the policies of the reads below.
            perform app.pre_request();
            if app.current_org_id() is null then
                raise exception 'the reader is not a signed-in, active user'
                    using errcode = 'PT401';
            end if;
            if r.after_id is null then
                -- A new connection starts after the newest event the reader can already take,
                -- in the delivery order of api.events_since.
                select v.id into v_head
                from api.events v
                join app.events e on e.org_id = v.org_id and e.id = v.id
                where e.tx_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
                order by e.tx_id desc, e.id desc
                limit 1;
                return query select 'head'::text, r.key, coalesce(v_head, 0), null::text,
                                    null::text, null::text;
            else
                select pg_catalog.array_agg(s.id order by s.o),
                       pg_catalog.array_agg(s.org_id order by s.o)
                into v_ids, v_orgs
                from api.events_since(r.after_id, p_max_rows)
                    with ordinality as s(org_id, id, type, employee_id, recipient_id, entity,
                                         entity_id, payload, created_at, o);
                if v_ids is not null then
                    return query
                        select 'event'::text, r.key, u.id, null::text, null::text, null::text
                        from pg_catalog.unnest(v_ids) with ordinality as u(id, o)
                        order by u.o;
                    v_all_ids := v_all_ids || v_ids;
                    v_all_orgs := v_all_orgs || v_orgs;
                end if;
            end if;
        exception when others then
            return query select 'error'::text, r.key, null::bigint, null::text, sqlstate::text,
                                sqlerrm::text;
        end;
    end loop;
    perform pg_catalog.set_config('request.jwt.claims', '', true);
    perform pg_catalog.set_config('role', 'none', true);
    -- Each body once, for all the readers of this call that got the event.
    if pg_catalog.cardinality(v_all_ids) > 0 then
        return query select 'body'::text, null::text, b.id, b.body, null::text, null::text
                     from app.web_event_bodies(v_all_orgs, v_all_ids) b;
    end if;
end
$$;
comment on function app.web_relay_events(jsonb, integer) is
$$The web relay's round: for each reader (key, JWT claims, after_id), the events api.events_since
gives that user, read as that user.

Returns first one 'horizon' row (body: the round's snapshot xmin and xmax), then per reader its
'event' rows (event ids) in delivery order, or one 'head' row (event_id: where a reader without
after_id starts), or one 'error' row (error_code: the SQLSTATE, e.g. PT410 purged id, PT401/PT403
unknown or inactive user); last, one 'body' row per event given to any reader (body: the
api.events row as JSON). Every reader passes app.pre_request() in every call, as a request
would.$$;
revoke execute on function app.web_relay_events(jsonb, integer) from public;
grant execute on function app.web_relay_events(jsonb, integer) to web_app;

-- Presence: which of the given users each reader may see (as api.app_users shows them to it).
create or replace function app.web_visible_users(p_readers jsonb, p_user_ids uuid[])
returns table (reader text, user_id uuid, display_name text)
language plpgsql volatile
set search_path = ''
as $$
declare
    r record;
begin
    if pg_catalog.jsonb_typeof(p_readers) is distinct from 'array' then
        raise exception 'readers must be a JSON array'
            using errcode = '22023', hint = 'Pass [{"key": ..., "claims": {...}}, ...].';
    end if;
    perform pg_catalog.set_config('role', 'authenticated', true);
    perform pg_catalog.set_config('request.method', 'GET', true);
    perform pg_catalog.set_config('request.path', '/presence', true);
    for r in
        select x.key, x.claims
        from pg_catalog.jsonb_to_recordset(p_readers) as x(key text, claims jsonb)
    loop
        perform pg_catalog.set_config('request.jwt.claims', coalesce(r.claims, '{}')::text, true);
        return query
            select r.key, u.id, u.display_name
            from app.app_users u
            where u.id = any (p_user_ids);
    end loop;
    perform pg_catalog.set_config('request.jwt.claims', '', true);
    perform pg_catalog.set_config('role', 'none', true);
end
$$;
comment on function app.web_visible_users(jsonb, uuid[]) is
$$For each reader (key, JWT claims): the given users that reader may read in app_users, read as
that user (superadmins and HR admins see their organisation's users, others only themselves).$$;
revoke execute on function app.web_visible_users(jsonb, uuid[]) from public;
grant execute on function app.web_visible_users(jsonb, uuid[]) to web_app;
