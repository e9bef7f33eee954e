-- Side effects leave through the outbox (DESIGN §8, §9): change events, notifications and named
-- audit events are written by these helpers, in the caller's transaction.

-- The actor of the current transaction: the signed-in user, else the database role that logged in
-- (the sync worker, the web app, an operator).
create or replace function app.current_actor() returns jsonb
language sql stable
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'user_id', app.current_user_id(),
        'role', coalesce(app.current_app_role()::text, session_user::text))
$$;
comment on function app.current_actor() is 'Who is acting: the JWT user and app role, or the login role.';

-- Append a change event and NOTIFY its id (payloads stay in the table; NOTIFY carries ids only).
create or replace function app.emit_event(
    p_org_id uuid, p_type text, p_entity text, p_entity_id text,
    p_employee_id uuid default null, p_payload jsonb default '{}', p_recipient_id uuid default null
) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_id bigint;
begin
    insert into app.events (org_id, type, entity, entity_id, employee_id, payload, recipient_id)
    values (p_org_id, p_type, p_entity, p_entity_id, p_employee_id, coalesce(p_payload, '{}'), p_recipient_id)
    returning id into v_id;
    perform pg_catalog.pg_notify('compliance_events', v_id::text);
    return v_id;
end
$$;
comment on function app.emit_event(uuid, text, text, text, uuid, jsonb, uuid) is
    'Writes one change event to the outbox and notifies listeners of its id.';

-- Create a notification for one user (idempotent per dedupe key) and announce it live.
create or replace function app.notify_user(
    p_org_id uuid, p_recipient_id uuid, p_type text, p_title text, p_message text,
    p_action_url text default null, p_priority app.notification_priority default 'medium',
    p_employee_id uuid default null, p_dedupe_key text default null
) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    insert into app.notifications (org_id, recipient_id, type, title, message, action_url,
                                   priority, employee_id, dedupe_key)
    values (p_org_id, p_recipient_id, p_type, p_title, p_message, p_action_url, p_priority,
            p_employee_id, p_dedupe_key)
    on conflict (org_id, recipient_id, dedupe_key) where dedupe_key is not null do nothing
    returning id into v_id;
    if v_id is not null then
        perform app.emit_event(p_org_id, 'notification.created', 'notification', v_id::text,
                               p_employee_id, pg_catalog.jsonb_build_object('type', p_type),
                               p_recipient_id);
    end if;
    return v_id;
end
$$;
comment on function app.notify_user(uuid, uuid, text, text, text, text, app.notification_priority, uuid, text) is
    'Notifies one user (skipped when the same dedupe key was already sent) and emits notification.created.';

-- The database role doing the work: the role a request switched to (PostgREST's `authenticated`),
-- else the login role (`sync_worker`, `web_app`, an operator). SECURITY DEFINER does not change it.
create or replace function audit.current_db_role() returns text
language sql stable
set search_path = ''
as $$
    select coalesce(nullif(pg_catalog.current_setting('role', true), 'none'), session_user::text)
$$;
comment on function audit.current_db_role() is
    'The database role acting: the role the request switched to, else the login role.';

-- Record a named audit event (§9: requirement_submission, tier_change, compliance_export, ...).
-- The actor is the signed-in user and their application role, or the database role of a service.
create or replace function audit.record_event(
    p_org_id uuid, p_event_type text, p_employee_id uuid default null,
    p_table_name text default null, p_entity_id text default null, p_details jsonb default null
) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_id bigint;
    v_db_role text := audit.current_db_role();
begin
    if p_event_type is null or p_event_type !~ '^[a-z][a-z_]*$' then
        raise exception 'audit event name % is not snake_case', coalesce(pg_catalog.quote_literal(p_event_type), 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('The event name is %s.', coalesce(p_event_type, 'null')),
                  hint = 'Name audit events in lower-case words joined by underscores, e.g. tier_change.';
    end if;
    if p_org_id is null then
        raise exception 'an audit event needs an organisation'
            using errcode = '22023',
                  detail = pg_catalog.format('Event %s was recorded without org_id.', p_event_type),
                  hint = 'Pass the organisation the event belongs to.';
    end if;
    insert into audit.log (org_id, actor_user_id, actor_role, db_role, event_type, table_name,
                           entity_id, employee_id, details)
    values (p_org_id, app.current_user_id(), coalesce(app.current_app_role()::text, v_db_role),
            v_db_role, p_event_type, p_table_name, p_entity_id, p_employee_id, p_details)
    returning id into v_id;
    return v_id;
end
$$;
comment on function audit.record_event(uuid, text, uuid, text, text, jsonb) is
    'Appends a named event to the audit trail with the acting user or role.';

-- The events view (its row-level policy lives with the table's, in db/policies).
create view api.events with (security_invoker = true) as
    select org_id, id, type, employee_id, recipient_id, entity, entity_id, payload, created_at
    from app.events;
comment on view api.events is
$$Change events of your organisation that you may read, ordered by id (see README "Events").$$;

-- Events a reader may take now, in delivery order, after the last one it saw (docs/events.md).
--
-- The ordering guarantee: outbox ids are taken before commit, so a transaction can commit after
-- one holding a higher id. Events are therefore delivered in (tx_id, id) order and only once every
-- transaction with a smaller tx_id has finished (tx_id below the oldest running transaction's
-- horizon, pg_snapshot_xmin of the reading statement's snapshot). No event can later appear
-- before the last one delivered: every transaction that has not finished yet has, or will get, a
-- tx_id at or above that horizon. So resuming after the last delivered event's id never skips one
-- that committed late, and never delivers one twice.
create or replace function api.events_since(after_id bigint default 0, max_rows integer default 500)
returns setof api.events
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_horizon xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
    v_after_tx xid8 := '0'::xid8;
    v_after_id bigint := coalesce(after_id, 0);
begin
    if max_rows is null or max_rows not between 1 and 10000 then
        raise exception 'max_rows must be between 1 and 10000, not %', coalesce(max_rows::text, 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('max_rows is %s.', coalesce(max_rows::text, 'null')),
                  hint = 'Ask for at most 10000 events at a time.';
    end if;
    if v_after_id < 0 then
        raise exception 'after_id must be 0 or an event id, not %', v_after_id
            using errcode = '22023',
                  detail = pg_catalog.format('after_id is %s.', v_after_id),
                  hint = 'Pass 0 to start from the oldest kept event, or the last id you received.';
    end if;
    if v_after_id > 0 then
        -- RLS applies: an id the caller may not read is as unknown as a purged one.
        select e.tx_id into v_after_tx from app.events e where e.org_id = v_org and e.id = v_after_id;
        if not found then
            raise exception 'event % is unknown or no longer kept', v_after_id
                using errcode = 'PT410',
                      detail = pg_catalog.format('No event you may read has id %s.', v_after_id),
                      hint = 'Reload the current state and resume from the newest event.';
        end if;
    end if;
    return query
        select e.org_id, e.id, e.type, e.employee_id, e.recipient_id, e.entity, e.entity_id,
               e.payload, e.created_at
        from app.events e
        where e.org_id = v_org
          and e.tx_id < v_horizon
          and (e.tx_id, e.id) > (v_after_tx, v_after_id)
        order by e.tx_id, e.id
        limit max_rows;
end
$$;
comment on function api.events_since(bigint, integer) is
$$Change events you may read that follow the event after_id, in delivery order.

Events are delivered in commit-safe order, (transaction, id): an event is delivered only once every
transaction that might still add an earlier one has finished, so resuming from the last id you
received never misses one and never repeats one. Ids are unique but NOT delivered in ascending
order. after_id = 0 starts from the oldest kept event. max_rows is 1 to 10000 (400 otherwise).
Answers 410 when after_id is unknown or was purged (events are kept 30 days by default): reload
the current state and resume from the newest event.$$;
grant execute on function api.events_since(bigint, integer) to authenticated;
