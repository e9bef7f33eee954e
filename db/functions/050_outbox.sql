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

-- Record a named audit event (§9: requirement_submission, tier_change, compliance_export, ...).
create or replace function audit.record_event(
    p_org_id uuid, p_event_type text, p_employee_id uuid default null,
    p_table_name text default null, p_entity_id text default null, p_details jsonb default null
) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_id bigint;
begin
    insert into audit.log (org_id, actor_user_id, actor_role, event_type, table_name, entity_id,
                           employee_id, details)
    values (p_org_id, app.current_user_id(), app.current_actor() ->> 'role', p_event_type,
            p_table_name, p_entity_id, p_employee_id, p_details)
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

-- Events a reader may take now, in delivery order, after the last one it saw.
--
-- The ordering guarantee: outbox ids are taken before commit, so a transaction can commit after
-- one holding a higher id. Events are therefore delivered in (tx_id, id) order and only once every
-- transaction with a smaller tx_id has finished (tx_id below the oldest running transaction's
-- horizon, pg_snapshot_xmin). No event can later appear before the last one delivered, so resuming
-- after that event's id never skips one that committed late.
create or replace function api.events_since(after_id bigint default 0, max_rows integer default 500)
returns setof api.events
language plpgsql stable
set search_path = ''
as $$
declare
    v_after_tx xid8;
begin
    if max_rows is null or max_rows not between 1 and 10000 then
        raise exception 'max_rows must be between 1 and 10000, not %', max_rows
            using errcode = '22023', hint = 'Ask for at most 10000 events at a time.';
    end if;
    if coalesce(after_id, 0) > 0 then
        select e.tx_id into v_after_tx from app.events e where e.id = after_id;
        if v_after_tx is null then
            raise exception 'event % is unknown or no longer kept', after_id
                using errcode = 'PT410',
                      detail = pg_catalog.format('No readable event has id %s.', after_id),
                      hint = 'Reload the current state and resume from the newest event.';
        end if;
    end if;
    return query
        select v.*
        from api.events v
        join app.events e on e.org_id = v.org_id and e.id = v.id
        where e.tx_id < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
          and (v_after_tx is null or (e.tx_id, e.id) > (v_after_tx, after_id))
        order by e.tx_id, e.id
        limit max_rows;
end
$$;
comment on function api.events_since(bigint, integer) is
$$Change events you may read that follow the event after_id, in delivery order.

Events are delivered in commit-safe order: only once every transaction that might still add an
earlier event has finished, so resuming from the last id seen never misses one. Answers 410 when
after_id is unknown or was purged: reload and resume from the newest event.$$;
grant execute on function api.events_since(bigint, integer) to authenticated;
