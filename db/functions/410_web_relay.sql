-- The WebSocket relay of the web app (DESIGN §8). Two paths:
--
-- * Catching up (a new connection, a resume): app.web_relay_events serves many such clients in
--   one call. For each reader it does what PostgREST does for a request (role authenticated, the
--   reader's JWT claims, the pre-request check) and reads api.events_since as that user, so
--   row-level security and the outbox's ordering guarantee decide what each client gets.
-- * Live (every connection once caught up): app.event_audience reads the next events once for
--   all of them, in the same order and below the same horizon as api.events_since, with the users
--   the RLS policy of app.events lets read each event; the relay hands each event to those users'
--   connections. Its cost grows with the events, not with the connections.
--
-- Only the web_app login may call these: they act as (or read for) the users the web app has
-- authenticated, and must never be reachable by a user (they are not in api, and not granted to
-- authenticated).
--
-- The role and the request settings are put back (role none = the web_app login, claims empty)
-- before the call returns, and they are transaction-local anyway; each reader runs in its own
-- subtransaction, so one reader's error (an unknown or purged event id: PT410, a deactivated
-- user: PT403, an after_id that is no bigint: 22003/22P02, claims that are no object: 22023) is
-- reported for that reader alone.

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

-- The result gained tx_id (the catch-up/live hand-over needs each reader's position in the
-- (tx_id, id) order): the old shape is dropped first.
drop function if exists app.web_relay_events(jsonb, integer);
create function app.web_relay_events(p_readers jsonb, p_max_rows integer default 500)
returns table (kind text, reader text, event_id bigint, body text, error_code text,
               error_message text, tx_id text)
language plpgsql volatile
set search_path = ''
as $$
declare
    r record;
    v_key text;
    v_after_id bigint;
    v_claims jsonb;
    v_ids bigint[];
    v_orgs uuid[];
    v_txs xid8[];
    v_horizon xid8;
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
    -- Each reader's values are read inside its own subtransaction: one that does not fit its
    -- type (an after_id beyond bigint, claims that are not an object) is that reader's error.
    for r in
        select x.reader from pg_catalog.jsonb_array_elements(p_readers) as x(reader)
    loop
        v_key := r.reader ->> 'key';
        begin
            v_after_id := (r.reader ->> 'after_id')::bigint;
            v_claims := coalesce(nullif(r.reader -> 'claims', 'null'::jsonb), '{}'::jsonb);
            if pg_catalog.jsonb_typeof(v_claims) <> 'object' then
                raise exception 'the claims of reader % are not a JSON object', v_key
                    using errcode = '22023',
                          detail = pg_catalog.format('claims: %s', pg_catalog.left(v_claims::text, 100));
            end if;
            perform pg_catalog.set_config('request.jwt.claims', v_claims::text, true);
            -- As for every request: refuses unknown and inactive users, and caches the user's
            -- organisation, role and employee for the policies of the reads below.
            perform app.pre_request();
            if app.current_org_id() is null then
                raise exception 'the reader is not a signed-in, active user'
                    using errcode = 'PT401';
            end if;
            if v_after_id is null then
                -- A new connection starts after the newest event the reader can already take,
                -- in the delivery order of api.events_since.
                -- One statement, one snapshot: the head and the horizon it was taken below.
                select (select v.id
                        from api.events v
                        join app.events e on e.org_id = v.org_id and e.id = v.id
                        where e.tx_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
                        order by e.tx_id desc, e.id desc
                        limit 1),
                       pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
                into v_head, v_horizon;
                return query select 'head'::text, v_key, coalesce(v_head, 0), null::text,
                                    null::text, null::text, v_horizon::text;
            else
                -- One statement, one snapshot: api.events_since's horizon is this statement's
                -- xmin, returned with the events (the reader has every event it may read of the
                -- transactions below it when fewer than max_rows came).
                select pg_catalog.array_agg(s.id order by s.o),
                       pg_catalog.array_agg(s.org_id order by s.o),
                       pg_catalog.array_agg(e.tx_id order by s.o),
                       pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
                into v_ids, v_orgs, v_txs, v_horizon
                from api.events_since(v_after_id, p_max_rows)
                    with ordinality as s(org_id, id, type, employee_id, recipient_id, entity,
                                         entity_id, payload, created_at, o)
                join app.events e on e.org_id = s.org_id and e.id = s.id;
                if v_ids is not null then
                    return query
                        select 'event'::text, v_key, u.id, null::text, null::text, null::text,
                               u.tx_id::text
                        from rows from (pg_catalog.unnest(v_ids), pg_catalog.unnest(v_txs))
                            with ordinality as u(id, tx_id, o)
                        order by u.o;
                    v_all_ids := v_all_ids || v_ids;
                    v_all_orgs := v_all_orgs || v_orgs;
                end if;
                return query select 'through'::text, v_key,
                                    coalesce(pg_catalog.cardinality(v_ids), 0)::bigint,
                                    null::text, null::text, null::text, v_horizon::text;
            end if;
        exception when others then
            return query select 'error'::text, v_key, null::bigint, null::text, sqlstate::text,
                                sqlerrm::text, null::text;
        end;
    end loop;
    perform pg_catalog.set_config('request.jwt.claims', '', true);
    perform pg_catalog.set_config('role', 'none', true);
    -- Each body once, for all the readers of this call that got the event.
    if pg_catalog.cardinality(v_all_ids) > 0 then
        return query select 'body'::text, null::text, b.id, b.body, null::text, null::text,
                            null::text
                     from app.web_event_bodies(v_all_orgs, v_all_ids) b;
    end if;
end
$$;
comment on function app.web_relay_events(jsonb, integer) is
$$The web relay's round: for each reader (key, JWT claims, after_id), the events api.events_since
gives that user, read as that user.

Returns first one 'horizon' row (body: the round's snapshot xmin and xmax), then per reader its
'event' rows (event ids, tx_id: their transaction) in delivery order followed by one 'through'
row (event_id: how many events came, tx_id: the horizon they were read below), or one 'head' row
(event_id: where a reader without after_id starts, tx_id: the horizon it was taken below), or one
'error' row (error_code: the SQLSTATE, e.g. PT410 purged id, PT401/PT403 unknown or inactive
user, 22003/22P02 an after_id that is no bigint, 22023 claims that are no JSON object); last, one 'body' row per event given to any reader (body: the api.events row as JSON).
Every reader passes app.pre_request() in every call, as a request would. The web relay uses it
for connections that catch up (a resume, a new connection); live connections are served by
app.event_audience.$$;
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

-- The live path of the relay: the next events of the given users' organisations, each with the
-- users allowed to read it, so that one read per round serves every connection (the cost grows
-- with the events, not with the connections).
--
-- Order and horizon are api.events_since's (050_outbox.sql): events below the oldest running
-- transaction's horizon (pg_snapshot_xmin of the calling statement's snapshot), after
-- (after_tx, after_id), in (tx_id, id) order. The audience is the row-level security policy
-- "members read events they may see" on app.events (db/policies/30_operations.sql) written as a
-- join over app_users, with what app.pre_request() and app.current_identity() require of a user
-- (active): db/tests/web/test_event_audience.test.sql pins the two to each other, for every role.
-- Keep them equal: a change to the policy must be made here too (the test fails until it is).
create or replace function app.event_audience(
    after_tx xid8, after_id bigint, max_rows integer default 500, user_ids uuid[] default null
) returns table (org_id uuid, id bigint, tx_id xid8, body text, audience uuid[])
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_horizon xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
    v_after_tx xid8 := coalesce(after_tx, '0'::xid8);
    v_after_id bigint := coalesce(after_id, 0);
begin
    if max_rows is null or max_rows not between 1 and 10000 then
        raise exception 'max_rows must be between 1 and 10000, not %', coalesce(max_rows::text, 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('max_rows is %s.', coalesce(max_rows::text, 'null')),
                  hint = 'Ask for at most 10000 events at a time.';
    end if;
    return query
        with readers as materialized (
            -- the users a request could act as (app.pre_request refuses the others)
            select u.id as user_id, u.org_id as user_org, u.app_role, u.employee_id as user_employee
            from app.app_users u
            where u.active
              and (event_audience.user_ids is null or u.id operator(pg_catalog.=) any (event_audience.user_ids))
        ),
        orgs as (
            select distinct r.user_org from readers r
        ),
        next_events as (
            select n.*
            from orgs o
            cross join lateral (
                select e.org_id as e_org, e.id as e_id, e.tx_id as e_tx, e.type as e_type,
                       e.employee_id as e_employee, e.recipient_id as e_recipient,
                       e.entity as e_entity, e.entity_id as e_entity_id, e.payload as e_payload,
                       e.created_at as e_created_at
                from app.events e
                where e.org_id = o.user_org
                  and e.tx_id < v_horizon
                  and (e.tx_id, e.id) > (v_after_tx, v_after_id)
                order by e.tx_id, e.id
                limit event_audience.max_rows
            ) n
            order by n.e_tx, n.e_id
            limit event_audience.max_rows
        )
        select x.e_org, x.e_id, x.e_tx,
               pg_catalog.to_jsonb(v)::text,
               coalesce((select pg_catalog.array_agg(r.user_id)
                         from readers r
                         -- = the policy, with current_org_id(), current_user_id(),
                         -- current_app_role(), current_employee_id() the reader's
                         where x.e_org = r.user_org
                           and (x.e_recipient is null or x.e_recipient = r.user_id)
                           and (r.app_role <> 'employee'
                                or x.e_employee = r.user_employee
                                or x.e_recipient = r.user_id)),
                        '{}'::uuid[])
        from next_events x
        cross join lateral (select x.e_org as org_id, x.e_id as id, x.e_type as type,
                                   x.e_employee as employee_id, x.e_recipient as recipient_id,
                                   x.e_entity as entity, x.e_entity_id as entity_id,
                                   x.e_payload as payload, x.e_created_at as created_at) v
        order by x.e_tx, x.e_id;
end
$$;
comment on function app.event_audience(xid8, bigint, integer, uuid[]) is
$$The next events after (after_tx, after_id), with the users allowed to read each (web_app only).

In api.events_since's order and below its horizon: (tx_id, id) order, only events of
transactions older than every running one. Only events of the organisations of user_ids (all
organisations with an active user when null) are read; audience lists the active users among
user_ids (all when null) that the row-level security policy of app.events lets read the event;
body is the event as api.events shows it (JSON). At most max_rows (1 to 10000) events.$$;
revoke execute on function app.event_audience(xid8, bigint, integer, uuid[]) from public;
grant execute on function app.event_audience(xid8, bigint, integer, uuid[]) to web_app;

-- Which of the given users are active, and in which organisation (the relay's live connections
-- are checked with the same snapshot as the events they are given).
create or replace function app.web_relay_users(user_ids uuid[])
returns table (user_id uuid, org_id uuid)
language sql stable security definer
set search_path = ''
as $$
    select u.id, u.org_id
    from app.app_users u
    where u.id operator(pg_catalog.=) any (web_relay_users.user_ids)
      and u.active
$$;
comment on function app.web_relay_users(uuid[]) is
    'The given users that are active, with their organisation (web_app only).';
revoke execute on function app.web_relay_users(uuid[]) from public;
grant execute on function app.web_relay_users(uuid[]) to web_app;
