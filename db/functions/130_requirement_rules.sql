-- The compliance engine, part 4: the requirement status machine (DESIGN §5), enforced for every
-- writer of app.employee_requirements by a BEFORE ROW trigger; an AFTER STATEMENT trigger emits
-- requirement.updated, records the named audit event requirement_status_change and refreshes stats.
--
--   pending -> in_progress | submitted;  in_progress -> submitted;
--   submitted -> approved | revision_required | rejected;  revision_required -> in_progress | submitted;
--   approved -> pending (expiry);  any -> inactive (deactivation, legacy after a tier change);
--   inactive -> pending (re-activation, back in the tier);
--   by the database: a training requirement -> approved when its module's assignment completes
--   (from any state but inactive, or from inactive when it comes back already completed); a
--   requirement without review_required -> approved when submitted.
--   New records start pending (or approved: a training already completed, or inactive).

create or replace function app.requirement_transition_refused(
    p_id uuid, p_from app.requirement_status, p_to app.requirement_status, p_why text default null,
    p_hint text default null
) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
    raise exception using
        errcode = 'PT409',
        message = pg_catalog.format('requirement record %s cannot move from %s to %s', p_id, p_from, p_to),
        detail = pg_catalog.format('Requirement record %s is %s; the change asked for %s.%s', p_id,
                                   p_from, p_to, coalesce(' ' || p_why, '')),
        hint = coalesce(p_hint,
            'Allowed: pending -> in_progress/submitted, in_progress -> submitted, '
            'submitted -> approved/revision_required/rejected (reviewers), '
            'revision_required -> in_progress/submitted.');
end
$$;

create or replace function app.employee_requirement_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_from app.requirement_status;
    v_to app.requirement_status := new.status;
    v_type app.requirement_type;
    v_review_required boolean;
begin
    if tg_op = 'INSERT' then
        if v_to in ('pending', 'inactive') then
            return new;
        end if;
        v_from := 'pending';
    else
        v_from := old.status;
    end if;
    if v_to = 'approved' and v_from <> 'submitted' then
        select cr.type, cr.review_required into v_type, v_review_required
        from app.compliance_requirements cr
        where cr.org_id = new.org_id and cr.id = new.requirement_id;
    end if;
    if not (
        (v_from = 'pending' and v_to in ('in_progress', 'submitted'))
        or (v_from = 'in_progress' and v_to = 'submitted')
        or (v_from = 'submitted' and v_to in ('approved', 'revision_required', 'rejected'))
        or (v_from = 'revision_required' and v_to in ('in_progress', 'submitted'))
        or (v_from = 'approved' and v_to = 'pending')
        or v_to = 'inactive'
        or (v_from = 'inactive' and v_to = 'pending')
        or (v_to = 'approved' and v_type = 'training')
        or (v_to = 'approved' and v_from in ('pending', 'in_progress', 'revision_required')
            and v_review_required is false and new.submitted_at is not null)
    ) then
        perform app.requirement_transition_refused(new.id, v_from, v_to,
            case when v_to = 'approved' and v_type = 'training'
                 then 'Training requirements are approved when their module is completed.' end);
    end if;
    return new;
end
$$;
comment on function app.employee_requirement_rules() is
    'BEFORE ROW trigger of employee_requirements: the requirement status machine (DESIGN §5).';

create or replace trigger requirement_rules_on_insert
    before insert on app.employee_requirements
    for each row execute function app.employee_requirement_rules();

create or replace trigger requirement_rules_on_update
    before update on app.employee_requirements
    for each row when (old.status is distinct from new.status)
    execute function app.employee_requirement_rules();

create or replace function app.employee_requirements_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_n integer;
    v_changes app.requirement_change[];
    v_orgs uuid[];
    v_emps uuid[];
begin
    if tg_op = 'INSERT' then
        select pg_catalog.array_agg(row(n.org_id, n.id, n.employee_id, n.requirement_id, n.status,
                                        null, n.is_legacy, null, 'insert')::app.requirement_change)
        into v_changes from new_rows n;
    elsif tg_op = 'UPDATE' then
        select pg_catalog.array_agg(row(n.org_id, n.id, n.employee_id, n.requirement_id, n.status,
                                        o.status, n.is_legacy, o.employee_id,
                                        'update')::app.requirement_change)
        into v_changes
        from new_rows n
        join old_rows o on o.org_id = n.org_id and o.id = n.id
        where n.status is distinct from o.status
           or n.is_legacy is distinct from o.is_legacy
           or n.employee_id is distinct from o.employee_id
           or n.requirement_id is distinct from o.requirement_id;
    else
        select pg_catalog.array_agg(row(o.org_id, o.id, null, o.requirement_id, null, o.status,
                                        o.is_legacy, o.employee_id, 'delete')::app.requirement_change)
        into v_changes from old_rows o;
    end if;
    if v_changes is null then
        return null;
    end if;

    with ev as (
        insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
        select c.org_id, 'requirement.updated', 'employee_requirement', c.id::text,
               coalesce(c.employee_id, c.old_employee_id),
               pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                   'op', c.op, 'requirement_id', c.requirement_id, 'status', c.status,
                   'previous_status', c.old_status, 'is_legacy', c.is_legacy))
        from unnest(v_changes) c
        order by c.org_id, c.id
        returning id
    )
    select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) into v_n from ev;

    -- The named audit event of every status change, whoever made it (a reviewer, the database).
    perform audit.record_event(c.org_id, 'requirement_status_change', c.employee_id,
                               'employee_requirements', c.id::text,
                               pg_catalog.jsonb_build_object('requirement_id', c.requirement_id,
                                                             'from', c.old_status, 'to', c.status,
                                                             'is_legacy', c.is_legacy))
    from unnest(v_changes) c
    where c.op = 'update' and c.status is distinct from c.old_status;

    select pg_catalog.array_agg(k.org_id), pg_catalog.array_agg(k.employee_id)
    into v_orgs, v_emps
    from (select c.org_id, c.employee_id from unnest(v_changes) c
          where c.employee_id is not null
          union
          select c.org_id, c.old_employee_id from unnest(v_changes) c
          where c.old_employee_id is not null) k;
    perform app.refresh_stats_unless_deferred(v_orgs, v_emps);
    return null;
end
$$;
comment on function app.employee_requirements_changed() is
    'AFTER STATEMENT trigger of employee_requirements: events, audit requirement_status_change, stats.';

create or replace trigger requirements_changed_on_insert
    after insert on app.employee_requirements
    referencing new table as new_rows
    for each statement execute function app.employee_requirements_changed();

create or replace trigger requirements_changed_on_update
    after update on app.employee_requirements
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.employee_requirements_changed();

create or replace trigger requirements_changed_on_delete
    after delete on app.employee_requirements
    referencing old table as old_rows
    for each statement execute function app.employee_requirements_changed();

-- Give employees the records of their tier's active requirements and every lower tier's (tiers are
-- cumulative): new ones pending (or approved at once when a training requirement's module is
-- already completed and still valid); records of those tiers that were legacy or inactive come back
-- the same way. Only for employees
-- whose tier is active. Returns the number of records added or brought back.
create or replace function app.add_tier_requirements(p_org_ids uuid[], p_employee_ids uuid[])
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_count integer;
begin
    insert into app.employee_requirements as er (org_id, employee_id, requirement_id, status,
                                                 submitted_at, reviewed_at, expires_at, evidence)
    select et.org_id, et.employee_id, cr.id,
           case when done.completion_date is null then 'pending' else 'approved' end::app.requirement_status,
           done.completion_date, done.completion_date, done.expires_at,
           case when done.completion_date is not null
                then pg_catalog.jsonb_build_object('assignment_id', done.id, 'score', done.score) end
    from (select distinct k.org_id, k.employee_id
          from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id)) k
    join app.employee_tiers et
      on et.org_id = k.org_id and et.employee_id = k.employee_id and et.status = 'active'
    -- tiers are cumulative: the current tier's requirements and every lower tier's
    join app.compliance_tiers cur on cur.org_id = et.org_id and cur.id = et.tier_id
    join app.compliance_tiers lt on lt.org_id = et.org_id and lt.level <= cur.level
    join app.compliance_requirements cr
      on cr.org_id = et.org_id and cr.tier_id = lt.id and cr.active
    left join app.training_modules m on m.org_id = cr.org_id and m.id = cr.module_id
    left join lateral (
        select a.id, a.score, a.completion_date,
               a.completion_date + pg_catalog.make_interval(
                   days => coalesce(cr.validity_days, m.validity_days)) as expires_at
        from app.training_assignments a
        where cr.type = 'training' and a.org_id = et.org_id and a.employee_id = et.employee_id
          and a.module_id = cr.module_id and a.status = 'completed'
          and (coalesce(cr.validity_days, m.validity_days) is null
               or a.completion_date + pg_catalog.make_interval(
                      days => coalesce(cr.validity_days, m.validity_days)) > pg_catalog.now())
        order by a.completion_date desc
        limit 1
    ) done on true
    order by et.org_id, et.employee_id, cr.id
    on conflict (org_id, employee_id, requirement_id) do update
        set is_legacy = false,
            status = excluded.status,
            submitted_at = coalesce(excluded.submitted_at, er.submitted_at),
            reviewed_at = coalesce(excluded.reviewed_at, er.reviewed_at),
            expires_at = excluded.expires_at,
            evidence = coalesce(excluded.evidence, er.evidence)
        where er.is_legacy or er.status = 'inactive';
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function app.add_tier_requirements(uuid[], uuid[]) is
    'Adds (or brings back) the records of the requirements of the employees'' tier and the tiers below it, pending or already approved.';
