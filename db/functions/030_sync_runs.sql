-- Sync runs (DESIGN §10, docs/sync.md): open, record the fetch, finish. The worker (role
-- sync_worker) calls these; it has no rights on app.* itself.
--
-- One run = one row of app.sync_runs covering one or two parts: 'zenefits' (type employees), or
-- 'classroom' (type completions or training_modules), or both (type full). Its details hold:
--   parts                 the parts the run covers, in order
--   fetch.<part>          what the worker fetched: complete (bool), pages, records, resources...
--   merge.<step>          what each merge did: processed, created, updated, failed, ...
--   warnings_total, errors_total   (the warnings/errors lists keep the first 200 of each)
-- complete_fetch is true when every part's fetch was complete.
--
-- Concurrency: a session that runs a sync holds a session-level advisory lock on its organisation
-- (sync.lock_org_key). Only one sync of an organisation runs at a time, and when a worker dies
-- (even by SIGKILL) its connection ends, the lock goes, and the next run marks the dead run
-- failed ("abandoned") and deletes its staged records.

grant usage on schema sync to sync_worker;

-- The runs that are open now (the staging policy reads it once per statement, as a hashed subplan).
create or replace function sync.open_runs() returns table (org_id uuid, run_id uuid)
language sql stable security definer
set search_path = ''
as $$
    select r.org_id, r.id from app.sync_runs r where r.status in ('started', 'in_progress')
$$;
comment on function sync.open_runs() is 'The sync runs that have not finished (organisation, run).';
grant execute on function sync.open_runs() to sync_worker;

-- The advisory lock of an organisation's syncs: (460046, hashtext(org id)), two-int4 form.
create or replace function sync.holds_org_lock(p_org_id uuid) returns boolean
language sql stable
set search_path = ''
as $$
    select exists (
        select from pg_catalog.pg_locks l
        where l.locktype = 'advisory' and l.pid = pg_catalog.pg_backend_pid() and l.granted
          and l.database = (select d.oid from pg_catalog.pg_database d
                            where d.datname = pg_catalog.current_database())
          and l.classid = 460046::oid and l.objsubid = 2
          and l.objid = pg_catalog.hashtext(p_org_id::text)::oid)
$$;
comment on function sync.holds_org_lock(uuid) is
    'Whether this session holds the sync lock of the organisation.';

-- Take the organisation's sync lock for this session (waiting, or not); true when taken.
create or replace function sync.lock_org(p_org_id uuid, p_wait boolean) returns boolean
language plpgsql volatile
set search_path = ''
as $$
begin
    if p_wait then
        perform pg_catalog.pg_advisory_lock(460046, pg_catalog.hashtext(p_org_id::text));
        return true;
    end if;
    return pg_catalog.pg_try_advisory_lock(460046, pg_catalog.hashtext(p_org_id::text));
end
$$;

-- Release one hold of the organisation's sync lock, if this session has one.
create or replace function sync.unlock_org(p_org_id uuid) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
    if sync.holds_org_lock(p_org_id) then
        perform pg_catalog.pg_advisory_unlock(460046, pg_catalog.hashtext(p_org_id::text));
    end if;
end
$$;

-- The organisation of a slug (or of an id given as text), or a clear refusal.
create or replace function sync.org_id_of(p_org text) returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    select o.id into v_id from app.organizations o where o.slug = p_org;
    if v_id is null and p_org ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        select o.id into v_id from app.organizations o where o.id = p_org::uuid;
    end if;
    if v_id is null then
        raise exception 'no organisation with slug %', coalesce(pg_catalog.quote_literal(p_org), 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('No row of app.organizations has slug (or id) %L.', p_org),
                  hint = 'Set COMPLIANCE_ORG_SLUG to the slug of an existing organisation.';
    end if;
    return v_id;
end
$$;

-- Append warnings or errors ({part, stage, message, ...} objects) to a run, keeping the first 200
-- of each list and counting all of them in details.<kind>s_total.
create or replace function sync.add_messages(p_org_id uuid, p_run_id uuid, p_kind text, p_messages jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_count integer := coalesce(pg_catalog.jsonb_array_length(p_messages), 0);
begin
    if v_count = 0 then
        return;
    end if;
    if p_kind = 'warning' then
        update app.sync_runs r
        set warnings = r.warnings || coalesce((
                select pg_catalog.jsonb_agg(m.value order by m.ordinality)
                from pg_catalog.jsonb_array_elements(p_messages) with ordinality m
                where m.ordinality <= 200 - pg_catalog.jsonb_array_length(r.warnings)), '[]'),
            details = pg_catalog.jsonb_set(r.details, '{warnings_total}',
                pg_catalog.to_jsonb(coalesce((r.details ->> 'warnings_total')::integer, 0) + v_count))
        where r.org_id = p_org_id and r.id = p_run_id;
    else
        update app.sync_runs r
        set errors = r.errors || coalesce((
                select pg_catalog.jsonb_agg(m.value order by m.ordinality)
                from pg_catalog.jsonb_array_elements(p_messages) with ordinality m
                where m.ordinality <= 200 - pg_catalog.jsonb_array_length(r.errors)), '[]'),
            details = pg_catalog.jsonb_set(r.details, '{errors_total}',
                pg_catalog.to_jsonb(coalesce((r.details ->> 'errors_total')::integer, 0) + v_count))
        where r.org_id = p_org_id and r.id = p_run_id;
    end if;
end
$$;

-- The open run with this id, locked for update, or a clear refusal. p_shared: locked only
-- against deletion (FOR KEY SHARE), for merge parts running at the same time, each of which
-- updates the row at its end.
drop function if exists sync.open_run_for_update(uuid);
create or replace function sync.open_run_for_update(p_run_id uuid, p_shared boolean default false)
returns app.sync_runs
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs;
begin
    if p_shared then
        select * into v_run from app.sync_runs r where r.id = p_run_id for key share;
    else
        select * into v_run from app.sync_runs r where r.id = p_run_id for update;
    end if;
    if not found then
        raise exception 'no sync run %', p_run_id
            using errcode = '22023', detail = pg_catalog.format('No row of app.sync_runs has id %s.', p_run_id),
                  hint = 'Start a run with sync.start_run first.';
    end if;
    if v_run.status not in ('started', 'in_progress') then
        raise exception 'sync run % has already finished (%)', p_run_id, v_run.status
            using errcode = 'PT409',
                  detail = pg_catalog.format('Run %s finished at %s with status %s.', p_run_id,
                                             v_run.completed_at, v_run.status),
                  hint = 'Start a new run.';
    end if;
    return v_run;
end
$$;

-- The open run with this id, locked as sync.open_run_for_update locks it, when it covers the part
-- p_part (zenefits, classroom); else a clear refusal.
create or replace function sync.open_run_of_part(p_run_id uuid, p_part text, p_shared boolean default false)
returns app.sync_runs
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs := sync.open_run_for_update(p_run_id, p_shared);
begin
    if p_part is null or not (v_run.details -> 'parts') ? p_part then
        raise exception 'sync run % has no part %', p_run_id, coalesce(pg_catalog.quote_literal(p_part), 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('Run %s covers %s.', p_run_id, v_run.details -> 'parts'),
                  hint = 'Zenefits is a part of employees and full runs; Google Classroom of completions, '
                         'training_modules and full runs.';
    end if;
    return v_run;
end
$$;

-- Close an open run (the caller holds its row); p_error, a run-level error, is recorded first.
-- Status: completed when every part was fetched completely and merged without a failed record or
-- an error; partial when something was merged but not all; failed when nothing was merged, and
-- always when p_abandoned (its worker died: whatever it merged, the run never finished, so nobody
-- checked that its parts add up). Then completed_at, staging deleted, event, audit entry, and
-- (failed or partial, when p_notify) a notification to every active superadmin.
drop function if exists sync.close_run(app.sync_runs, app.sync_run_status, boolean);
drop function if exists sync.close_run(app.sync_runs, text, boolean);
create or replace function sync.close_run(
    p_run app.sync_runs, p_error text, p_notify boolean, p_abandoned boolean default false
)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs := p_run;
    v_status app.sync_run_status;
    v_user record;
    v_what text;
begin
    if p_error is not null then
        perform sync.add_messages(v_run.org_id, v_run.id, 'error', pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_object('stage', 'run', 'message', p_error)));
        select * into v_run from app.sync_runs r where r.org_id = v_run.org_id and r.id = v_run.id;
    end if;
    v_status := case
        when p_abandoned then 'failed'
        when v_run.complete_fetch and v_run.failed_count = 0
             and coalesce((v_run.details ->> 'errors_total')::integer, 0) = 0
             -- every part merged: a merge step is named after its part (zenefits, classroom_*)
             and not exists (
                 select from pg_catalog.jsonb_array_elements_text(v_run.details -> 'parts') p
                 where not exists (
                     select from pg_catalog.jsonb_object_keys(coalesce(v_run.details -> 'merge', '{}')) k
                     where k = p.value or k like p.value || '\_%')) then 'completed'
        when v_run.details ? 'merge' then 'partial'
        else 'failed' end;

    update app.sync_runs r
    set status = v_status, completed_at = pg_catalog.clock_timestamp()
    where r.org_id = v_run.org_id and r.id = v_run.id
    returning * into v_run;

    delete from sync.staged_records s where s.org_id = v_run.org_id and s.run_id = v_run.id;

    perform app.emit_event(v_run.org_id,
        case when v_status = 'failed' then 'sync.failed' else 'sync.completed' end,
        'sync_run', v_run.id::text, null,
        pg_catalog.jsonb_build_object('status', v_run.status, 'type', v_run.type,
            'source', v_run.source, 'created', v_run.created_count, 'updated', v_run.updated_count,
            'failed', v_run.failed_count));
    perform audit.record_event(v_run.org_id, 'sync_run', null, 'sync_runs', v_run.id::text,
        pg_catalog.jsonb_build_object('action', 'finished', 'status', v_run.status,
            'type', v_run.type, 'source', v_run.source, 'complete_fetch', v_run.complete_fetch,
            'processed', v_run.processed_count, 'created', v_run.created_count,
            'updated', v_run.updated_count, 'failed', v_run.failed_count,
            'warnings', coalesce((v_run.details ->> 'warnings_total')::integer, 0),
            'errors', coalesce((v_run.details ->> 'errors_total')::integer, 0),
            'request_id', v_run.request_id));

    if v_status in ('failed', 'partial') and p_notify then
        v_what := case v_run.type when 'employees' then 'Zenefits roster'
                                  when 'full' then 'Zenefits and Google Classroom'
                                  else 'Google Classroom' end;
        for v_user in
            select u.id from app.app_users u
            where u.org_id = v_run.org_id and u.app_role = 'superadmin' and u.active
        loop
            perform app.notify_user(v_run.org_id, v_user.id, 'sync.failed',
                case when v_status = 'failed' then pg_catalog.format('%s sync failed', v_what)
                     else pg_catalog.format('%s sync finished with problems', v_what) end,
                pg_catalog.format('The %s sync started %s %s: %s',
                    v_what, pg_catalog.to_char(v_run.started_at, 'YYYY-MM-DD HH24:MI TZ'),
                    case when v_status = 'failed' then 'failed' else 'only partly succeeded' end,
                    coalesce(v_run.errors -> 0 ->> 'message', 'see the run''s errors')),
                '/sync_runs?id=eq.' || v_run.id::text,
                case when v_status = 'failed' then 'high' else 'medium' end::app.notification_priority,
                null, 'sync.failed:' || v_run.id::text);
        end loop;
    end if;
end
$$;

-- Mark the organisation's open runs as failed: their worker is gone (the caller holds the lock).
-- Failed even when a step was merged: the merged steps stay (details.merge and the audit trail
-- say what they did), but the run never finished, so it is not reported as a partial result.
create or replace function sync.abandon_open_runs(p_org_id uuid) returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs;
    v_count integer := 0;
begin
    for v_run in
        select * from app.sync_runs r
        where r.org_id = p_org_id and r.status in ('started', 'in_progress')
        order by r.started_at
        for update
    loop
        perform sync.close_run(v_run,
            'abandoned: the worker running it stopped before it finished; '
            'nothing of it was merged after the last completed step', true, true);
        v_count := v_count + 1;
    end loop;
    return v_count;
end
$$;

-- Open a run for an organisation (slug): takes the organisation's sync lock for this session
-- (waiting for it when p_wait, else refusing with PT409 when another sync holds it), marks runs
-- left open by a dead worker as failed, inserts the run, emits sync.started, audits 'sync_run'.
-- Types and sources go together: employees/zenefits, completions|training_modules/classroom,
-- full/scheduled|manual.
create or replace function sync.start_run(
    p_org text, p_type text, p_source text, p_request_id uuid default null,
    p_wait boolean default false, p_triggered_by text default null
) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := sync.org_id_of(p_org);
    v_type app.sync_run_type;
    v_source app.sync_source;
    v_parts jsonb;
    v_id uuid;
begin
    if p_type is null or p_type not in ('employees', 'training_modules', 'completions', 'full') then
        raise exception 'unknown sync run type %', coalesce(pg_catalog.quote_literal(p_type), 'null')
            using errcode = '22023', detail = pg_catalog.format('The type was %L.', p_type),
                  hint = 'Use employees, training_modules, completions or full.';
    end if;
    v_type := p_type::app.sync_run_type;
    v_parts := case v_type when 'employees' then '["zenefits"]'
                           when 'full' then '["zenefits", "classroom"]'
                           else '["classroom"]' end::jsonb;
    if p_source is null or not (
        (v_type = 'employees' and p_source = 'zenefits')
        or (v_type in ('training_modules', 'completions') and p_source = 'classroom')
        or (v_type = 'full' and p_source in ('scheduled', 'manual'))) then
        raise exception 'a % sync run cannot have source %', v_type,
                        coalesce(pg_catalog.quote_literal(p_source), 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('The type was %s and the source %L.', v_type, p_source),
                  hint = 'Use employees/zenefits, completions/classroom, training_modules/classroom '
                         'or full/scheduled, full/manual.';
    end if;
    v_source := p_source::app.sync_source;
    -- after a canceled or unpaid subscription's paid period, syncs pause (PT402)
    perform app.refuse_if_billing_locked(v_org, 'syncing');

    if not sync.lock_org(v_org, coalesce(p_wait, false)) then
        raise exception 'a sync of organisation % is already running', p_org
            using errcode = 'PT409',
                  detail = pg_catalog.format('Another session holds the sync lock of organisation %s.', p_org),
                  hint = 'Wait for it to finish (see api.sync_runs), or queue one with /rpc/request_sync.';
    end if;
    begin
        perform sync.abandon_open_runs(v_org);
        insert into app.sync_runs (org_id, type, source, triggered_by, request_id, status, details)
        values (v_org, v_type, v_source, coalesce(p_triggered_by, session_user::text), p_request_id,
                'started',
                pg_catalog.jsonb_build_object('parts', v_parts, 'fetch', '{}'::jsonb,
                    'backend_pid', pg_catalog.pg_backend_pid()))
        returning id into v_id;
        if p_request_id is not null then
            update app.sync_requests q set run_id = v_id
            where q.org_id = v_org and q.id = p_request_id;
        end if;
        perform app.emit_event(v_org, 'sync.started', 'sync_run', v_id::text, null,
            pg_catalog.jsonb_build_object('type', v_type, 'source', v_source,
                                          'request_id', p_request_id));
        perform audit.record_event(v_org, 'sync_run', null, 'sync_runs', v_id::text,
            pg_catalog.jsonb_build_object('action', 'started', 'type', v_type, 'source', v_source,
                                          'request_id', p_request_id,
                                          'triggered_by', coalesce(p_triggered_by, session_user::text)));
    exception when others then
        perform sync.unlock_org(v_org);
        raise;
    end;
    return v_id;
end
$$;
comment on function sync.start_run(text, text, text, uuid, boolean, text) is
    'Opens a sync run of an organisation (slug) under its sync lock; returns the run id.';
grant execute on function sync.start_run(text, text, text, uuid, boolean, text) to sync_worker;

-- Record what the worker fetched for one part of the run: complete or not, figures, and the
-- fetch error if there was one. The merges read fetch.<part>.complete: only a complete fetch
-- may terminate people or retire modules.
create or replace function sync.record_fetch(
    p_run_id uuid, p_part text, p_complete boolean, p_details jsonb default '{}',
    p_error text default null
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs := sync.open_run_of_part(p_run_id, p_part);
    v_details jsonb;
begin
    v_details := pg_catalog.jsonb_set(v_run.details, array['fetch', p_part],
        coalesce(p_details, '{}') || pg_catalog.jsonb_build_object('complete', coalesce(p_complete, false)));
    update app.sync_runs r
    set status = 'in_progress',
        details = v_details,
        complete_fetch = (select pg_catalog.bool_and(coalesce((v_details #>> array['fetch', p.value, 'complete'])::boolean, false))
                          from pg_catalog.jsonb_array_elements_text(v_details -> 'parts') p)
    where r.org_id = v_run.org_id and r.id = v_run.id;
    if p_error is not null then
        perform sync.add_messages(v_run.org_id, v_run.id, 'error', pg_catalog.jsonb_build_array(
            pg_catalog.jsonb_build_object('part', p_part, 'stage', 'fetch', 'message', p_error)));
    end if;
end
$$;
comment on function sync.record_fetch(uuid, text, boolean, jsonb, text) is
    'Records one part''s fetch (complete or not, figures, error) on an open sync run.';
grant execute on function sync.record_fetch(uuid, text, boolean, jsonb, text) to sync_worker;

-- Record an error of the run that is not a fetch error (e.g. a merge that raised and was rolled back).
create or replace function sync.record_error(p_run_id uuid, p_part text, p_stage text, p_message text)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs := sync.open_run_for_update(p_run_id);
begin
    perform sync.add_messages(v_run.org_id, v_run.id, 'error', pg_catalog.jsonb_build_array(
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'part', p_part, 'stage', p_stage, 'message', coalesce(p_message, 'unknown error')))));
    update app.sync_runs r set status = 'in_progress' where r.org_id = v_run.org_id and r.id = v_run.id;
end
$$;
comment on function sync.record_error(uuid, text, text, text) is
    'Appends an error (part, stage, message) to an open sync run.';
grant execute on function sync.record_error(uuid, text, text, text) to sync_worker;

-- Add one merge step's figures to the run (called by the sync.apply_* functions). A step merged
-- in parts adds up: the numbers of details.merge.<step> are summed, other values replaced.
create or replace function sync.record_merge(p_run app.sync_runs, p_step text, p_counts jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
    update app.sync_runs r
    set status = 'in_progress',
        processed_count = r.processed_count + coalesce((p_counts ->> 'processed')::integer, 0),
        created_count = r.created_count + coalesce((p_counts ->> 'created')::integer, 0),
        updated_count = r.updated_count + coalesce((p_counts ->> 'updated')::integer, 0),
        failed_count = r.failed_count + coalesce((p_counts ->> 'failed')::integer, 0),
        details = pg_catalog.jsonb_set(
            case when r.details ? 'merge' then r.details
                 else r.details || '{"merge": {}}'::jsonb end,
            array['merge', p_step], coalesce((
                select pg_catalog.jsonb_object_agg(n.key,
                           case when pg_catalog.jsonb_typeof(n.value) = 'number'
                                     and pg_catalog.jsonb_typeof(r.details #> array['merge', p_step, n.key]) = 'number'
                                then pg_catalog.to_jsonb((n.value #>> '{}')::numeric
                                                         + (r.details #>> array['merge', p_step, n.key])::numeric)
                                else n.value end)
                from pg_catalog.jsonb_each(p_counts) n), '{}'))
    where r.org_id = p_run.org_id and r.id = p_run.id;
end
$$;

-- Finish a run (its status: see sync.close_run). p_error is a run-level error to record first
-- (e.g. "stopped by SIGTERM"); p_interrupted says the worker was stopped on purpose (no
-- notification then). Releases this session's hold of the organisation's sync lock. Returns the
-- run's summary.
create or replace function sync.finish_run(
    p_run_id uuid, p_error text default null, p_interrupted boolean default false
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs := sync.open_run_for_update(p_run_id);
begin
    perform sync.close_run(v_run, p_error, not coalesce(p_interrupted, false));
    perform sync.unlock_org(v_run.org_id);
    return (
        select pg_catalog.jsonb_build_object(
            'run_id', r.id, 'org_id', r.org_id, 'type', r.type, 'source', r.source,
            'status', r.status, 'complete_fetch', r.complete_fetch,
            'processed', r.processed_count, 'created', r.created_count,
            'updated', r.updated_count, 'failed', r.failed_count,
            'warnings', coalesce((r.details ->> 'warnings_total')::integer, 0),
            'errors', coalesce((r.details ->> 'errors_total')::integer, 0),
            'first_errors', (select coalesce(pg_catalog.jsonb_agg(e.value), '[]')
                             from pg_catalog.jsonb_array_elements(r.errors) with ordinality e
                             where e.ordinality <= 5),
            'first_warnings', (select coalesce(pg_catalog.jsonb_agg(w.value), '[]')
                               from pg_catalog.jsonb_array_elements(r.warnings) with ordinality w
                               where w.ordinality <= 5),
            'merge', coalesce(r.details -> 'merge', '{}'),
            'seconds', pg_catalog.round(extract(epoch from r.duration)::numeric, 3))
        from app.sync_runs r where r.org_id = v_run.org_id and r.id = v_run.id);
end
$$;
comment on function sync.finish_run(uuid, text, boolean) is
    'Finishes a sync run (completed, partial or failed), notifies on failure, returns its summary.';
grant execute on function sync.finish_run(uuid, text, boolean) to sync_worker;
