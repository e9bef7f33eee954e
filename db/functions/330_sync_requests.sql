-- On-demand and scheduled syncs (DESIGN §10): api.request_sync queues a request and NOTIFYs
-- channel compliance_sync_requests with its id; workers claim queued requests with FOR UPDATE
-- SKIP LOCKED under the organisation's sync lock, so two workers never run one request, and
-- queue the scheduled full sync themselves (sync.enqueue_scheduled), at most one per interval.

create or replace function api.request_sync(type app.sync_type_name default 'full') returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_type app.sync_run_type;
    v_request app.sync_requests;
    v_queued boolean := false;
begin
    if v_org is null or not app.current_role_in('superadmin', 'hr_admin', 'manager') then
        raise exception 'only superadmins, HR admins and managers may request a sync'
            using errcode = '42501',
                  detail = pg_catalog.format('The acting role is %s.',
                                             coalesce(app.current_app_role()::text, 'none')),
                  hint = 'Ask an HR admin or a manager to request it.';
    end if;
    if request_sync.type is null
       or request_sync.type not in ('employees', 'training_modules', 'completions', 'full') then
        raise exception 'unknown sync type %', coalesce(pg_catalog.quote_literal(request_sync.type), 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('The type was %L.', request_sync.type),
                  hint = 'Use employees (Zenefits), completions or training_modules (Google Classroom), or full (both).';
    end if;
    v_type := request_sync.type::app.sync_run_type;

    -- A queued request that covers this one serves it too.
    select * into v_request
    from app.sync_requests q
    where q.org_id = v_org and q.status = 'queued'
      and (q.type = v_type or q.type = 'full'
           or (q.type in ('training_modules', 'completions') and v_type in ('training_modules', 'completions')))
    order by q.requested_at
    limit 1;
    if found then
        v_queued := true;
    else
        insert into app.sync_requests (org_id, type, requested_by)
        values (v_org, v_type, app.current_user_id())
        returning * into v_request;
        perform pg_catalog.pg_notify('compliance_sync_requests', v_request.id::text);
    end if;
    return pg_catalog.jsonb_build_object(
        'id', v_request.id, 'type', v_request.type, 'status', v_request.status,
        'requestedAt', v_request.requested_at, 'alreadyQueued', v_queued);
end
$$;
comment on function api.request_sync(app.sync_type_name) is
$$Queue a sync now: employees (Zenefits), completions or training_modules (Google Classroom), or full.

For superadmins, HR admins and managers (others get 403). A worker picks it up at once; follow it
in /sync_requests (status queued, running, done, failed; run_id) and /sync_runs. When a request of
the same kind is already queued, that one is returned (alreadyQueued: true) instead of a new one.
Returns {id, type, status, requestedAt, alreadyQueued}.$$;
grant execute on function api.request_sync(app.sync_type_name) to authenticated;

-- Claim the queued requests of an organisation: returns {request_ids, type, source, requested_by}
-- (type = what covers them all, source = scheduled when none was asked by a person) with the
-- organisation's sync lock held by this session, or null when there is nothing to do or another
-- session is syncing the organisation. Requests left running by a worker that died are queued
-- again first (at most three picks each, then failed).
create or replace function sync.claim_requests(p_org text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := sync.org_id_of(p_org);
    v_ids uuid[];
    v_types app.sync_run_type[];
    v_people uuid[];
    v_type text;
begin
    if not sync.lock_org(v_org, false) then
        return null;
    end if;
    begin
        -- Nobody else holds the lock: a running request is an orphan of a dead worker.
        update app.sync_requests q
        set status = case when q.attempts >= 3 then 'failed' else 'queued' end::app.sync_request_status,
            picked_at = case when q.attempts >= 3 then q.picked_at end,
            finished_at = case when q.attempts >= 3 then pg_catalog.now() end
        where q.org_id = v_org and q.status = 'running';

        with picked as (
            select q.org_id, q.id
            from app.sync_requests q
            where q.org_id = v_org and q.status = 'queued'
            for update skip locked
        ), claimed as (
            update app.sync_requests q
            set status = 'running', picked_at = pg_catalog.now(), attempts = q.attempts + 1
            from picked
            where q.org_id = picked.org_id and q.id = picked.id
            returning q.id, q.type, q.requested_by, q.requested_at
        )
        select pg_catalog.array_agg(c.id order by c.requested_at),
               pg_catalog.array_agg(c.type order by c.requested_at),
               pg_catalog.array_agg(c.requested_by order by c.requested_at)
                   filter (where c.requested_by is not null)
        into v_ids, v_types, v_people
        from claimed c;
    exception when others then
        perform sync.unlock_org(v_org);
        raise;
    end;
    if v_ids is null then
        perform sync.unlock_org(v_org);
        return null;
    end if;
    v_type := case
        when 'full' = any (v_types)
             or ('employees' = any (v_types) and v_types && '{training_modules,completions}'::app.sync_run_type[])
            then 'full'
        when 'employees' = any (v_types) then 'employees'
        when 'completions' = any (v_types) then 'completions'
        else 'training_modules' end;
    return pg_catalog.jsonb_build_object(
        'org_id', v_org, 'request_ids', pg_catalog.to_jsonb(v_ids), 'type', v_type,
        'source', case when v_type <> 'full' then case when v_type = 'employees' then 'zenefits' else 'classroom' end
                       when v_people is null then 'scheduled' else 'manual' end,
        'requested_by', pg_catalog.to_jsonb(v_people));
end
$$;
comment on function sync.claim_requests(text) is
    'Claims the queued sync requests of an organisation (with its sync lock), or returns null.';
grant execute on function sync.claim_requests(text) to sync_worker;

-- Close claimed requests: done or failed (finished_at, the run), or queued again (a worker that
-- stops on purpose hands them back). Releases this session's hold of the sync lock.
create or replace function sync.finish_requests(p_org text, p_request_ids uuid[], p_run_id uuid,
                                                p_status text)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := sync.org_id_of(p_org);
begin
    if p_status is null or p_status not in ('done', 'failed', 'queued') then
        raise exception 'a sync request cannot be closed as %', coalesce(pg_catalog.quote_literal(p_status), 'null')
            using errcode = '22023', hint = 'Use done, failed or queued.';
    end if;
    update app.sync_requests q
    set status = p_status::app.sync_request_status,
        picked_at = case when p_status = 'queued' then null else q.picked_at end,
        finished_at = case when p_status = 'queued' then null else pg_catalog.now() end,
        run_id = coalesce(p_run_id, q.run_id)
    where q.org_id = v_org and q.id = any (p_request_ids) and q.status = 'running';
    if p_status = 'queued' then
        perform pg_catalog.pg_notify('compliance_sync_requests', p_request_ids[1]::text);
    end if;
    perform sync.unlock_org(v_org);
end
$$;
comment on function sync.finish_requests(text, uuid[], uuid, text) is
    'Closes claimed sync requests (done, failed, or queued again) and releases the sync lock.';
grant execute on function sync.finish_requests(text, uuid[], uuid, text) to sync_worker;

-- Queue the scheduled full sync when it is due: no full run started within the interval and none
-- queued or running. Several workers may call it at once; one request results. Returns
-- {request_id (null when none was queued), next_due_at}, and `paused` (the subscription's
-- state) when billing pauses the organisation's syncs.
create or replace function sync.enqueue_scheduled(p_org text, p_interval_hours numeric)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := sync.org_id_of(p_org);
    v_interval interval;
    v_last timestamptz;
    v_id uuid;
begin
    if p_interval_hours is null or p_interval_hours <= 0 then
        raise exception 'the sync interval must be a positive number of hours, not %', p_interval_hours
            using errcode = '22023', hint = 'Set COMPLIANCE_SYNC_INTERVAL_HOURS to e.g. 24.';
    end if;
    v_interval := pg_catalog.make_interval(secs => (p_interval_hours * 3600)::double precision);
    -- syncs pause after a canceled or unpaid subscription's paid period: nothing is queued, and
    -- the worker asks again within the hour
    if app.billing_lock(v_org) is not null then
        return pg_catalog.jsonb_build_object(
            'request_id', null, 'paused', app.billing_lock(v_org),
            'next_due_at', pg_catalog.now() + least(v_interval, interval '1 hour'));
    end if;
    perform pg_catalog.pg_advisory_xact_lock(460047, pg_catalog.hashtext(v_org::text));
    select pg_catalog.max(r.started_at) into v_last
    from app.sync_runs r where r.org_id = v_org and r.type = 'full';
    if (v_last is null or v_last <= pg_catalog.now() - v_interval)
       and not exists (select from app.sync_requests q
                       where q.org_id = v_org and q.status in ('queued', 'running') and q.type = 'full') then
        insert into app.sync_requests (org_id, type, requested_by) values (v_org, 'full', null)
        returning id into v_id;
        perform pg_catalog.pg_notify('compliance_sync_requests', v_id::text);
    end if;
    return pg_catalog.jsonb_build_object(
        'request_id', v_id,
        'next_due_at', case when v_id is not null or v_last is null then pg_catalog.now() + v_interval
                            else greatest(v_last + v_interval, pg_catalog.now()) end);
end
$$;
comment on function sync.enqueue_scheduled(text, numeric) is
    'Queues the scheduled full sync of an organisation when it is due; returns {request_id, next_due_at}.';
grant execute on function sync.enqueue_scheduled(text, numeric) to sync_worker;
