-- The compliance engine, part 5: tiers (DESIGN §5 "Tiers").
--
-- The next tier is the one with the smallest level above the current tier's. An employee is
-- eligible for it when their stats' completion_pct >= its min_completion_pct and earned_points >=
-- its min_points. A switch (manual, advancement, role_change) is one transaction:
-- app.apply_tier_switch.

-- The advancement check, in the seed's shape:
-- {eligible, currentTier{id,name,level}, nextTier{id,name,level,minCompletionPct,minPoints},
--  requirements{current{completionPct,earnedPoints,totalPoints,completed,total},
--               required{completionPct,points}}, message}
create or replace function app.tier_eligibility(p_org_id uuid, p_employee_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_employee app.employees;
    v_tier app.compliance_tiers;
    v_tier_status app.tier_status;
    v_next app.compliance_tiers;
    v_stats app.employee_compliance_stats;
    v_eligible boolean := false;
    v_message text;
begin
    select * into v_employee from app.employees e where e.org_id = p_org_id and e.id = p_employee_id;
    select et.status into v_tier_status
    from app.employee_tiers et where et.org_id = p_org_id and et.employee_id = p_employee_id;
    select t.* into v_tier
    from app.employee_tiers et
    join app.compliance_tiers t on t.org_id = et.org_id and t.id = et.tier_id
    where et.org_id = p_org_id and et.employee_id = p_employee_id;
    select * into v_stats from app.employee_compliance_stats s
    where s.org_id = p_org_id and s.employee_id = p_employee_id;
    if v_tier.id is not null then
        select * into v_next from app.compliance_tiers t
        where t.org_id = p_org_id and t.level > v_tier.level
        order by t.level
        limit 1;
    end if;

    if v_tier.id is null then
        v_message := pg_catalog.format('%s has no compliance tier yet.', v_employee.full_name);
    elsif v_employee.status <> 'active' or v_tier_status <> 'active' then
        v_message := pg_catalog.format('%s is %s: tiers do not advance.', v_employee.full_name,
                                       v_employee.status);
    elsif v_next.id is null then
        v_message := pg_catalog.format('%s is at the highest tier, %s.', v_employee.full_name, v_tier.name);
    else
        v_eligible := coalesce(v_stats.completion_pct, 0) >= v_next.min_completion_pct
                      and coalesce(v_stats.earned_points, 0) >= v_next.min_points;
        if v_eligible then
            v_message := pg_catalog.format(
                '%s is eligible to advance from %s to %s: %s%% completion (needs %s%%) and %s points (needs %s).',
                v_employee.full_name, v_tier.name, v_next.name, v_stats.completion_pct,
                v_next.min_completion_pct, v_stats.earned_points, v_next.min_points);
        else
            v_message := pg_catalog.format(
                '%s needs %s%% completion and %s points for %s; now %s%% and %s points.',
                v_employee.full_name, v_next.min_completion_pct, v_next.min_points, v_next.name,
                coalesce(v_stats.completion_pct, 0), coalesce(v_stats.earned_points, 0));
        end if;
    end if;

    return pg_catalog.jsonb_build_object(
        'employeeId', p_employee_id,
        'eligible', v_eligible,
        'currentTier', case when v_tier.id is not null then pg_catalog.jsonb_build_object(
            'id', v_tier.id, 'name', v_tier.name, 'level', v_tier.level) end,
        'nextTier', case when v_next.id is not null then pg_catalog.jsonb_build_object(
            'id', v_next.id, 'name', v_next.name, 'level', v_next.level,
            'minCompletionPct', v_next.min_completion_pct, 'minPoints', v_next.min_points) end,
        'requirements', pg_catalog.jsonb_build_object(
            'current', pg_catalog.jsonb_build_object(
                'completionPct', coalesce(v_stats.completion_pct, 0),
                'earnedPoints', coalesce(v_stats.earned_points, 0),
                'totalPoints', coalesce(v_stats.total_points, 0),
                'completed', coalesce(v_stats.completed_requirements, 0),
                'total', coalesce(v_stats.total_requirements, 0)),
            'required', case when v_next.id is not null then pg_catalog.jsonb_build_object(
                'completionPct', v_next.min_completion_pct, 'points', v_next.min_points) end),
        'message', v_message);
end
$$;
comment on function app.tier_eligibility(uuid, uuid) is
    'Whether an employee is eligible for the next tier, with current and required figures and a sentence.';

-- Tell an employee (once per next tier) that they may advance.
create or replace function app.notify_if_tier_eligible(p_org_id uuid, p_employee_id uuid)
returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_check jsonb := app.tier_eligibility(p_org_id, p_employee_id);
begin
    if not (v_check ->> 'eligible')::boolean then
        return false;
    end if;
    perform app.notify_employee(p_org_id, p_employee_id, 'tier.eligible',
        pg_catalog.format('You can advance to %s', v_check -> 'nextTier' ->> 'name'),
        v_check ->> 'message',
        '/tiers', 'medium',
        pg_catalog.format('tier.eligible:%s:%s', p_employee_id, v_check -> 'nextTier' ->> 'id'));
    return true;
end
$$;

-- Switch an employee's tier, as one transaction (DESIGN §5): the tier record, a history row, the
-- new tier's requirements and every lower tier's pending (tiers are cumulative; already completed
-- trainings approved), the records of tiers above the new one legacy + inactive, stats, a notification, audit tier_change, event
-- tier.changed. The caller checks rights; this checks the facts.
create or replace function app.apply_tier_switch(
    p_org_id uuid, p_employee_id uuid, p_tier_id uuid, p_kind app.tier_change_kind,
    p_reason text default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_from uuid;
    v_from_name text;
    v_to app.compliance_tiers;
    v_history_id bigint;
    v_legacy integer;
    v_added integer;
    v_deferred text;
begin
    select * into v_to from app.compliance_tiers t where t.org_id = p_org_id and t.id = p_tier_id;
    if v_to.id is null then
        perform app.fail('PT404', pg_catalog.format('tier %s not found', p_tier_id),
            pg_catalog.format('No compliance tier with id %s in your organisation.', p_tier_id),
            'List the tiers at /compliance_tiers.');
    end if;
    select et.tier_id, t.name into v_from, v_from_name
    from app.employee_tiers et
    join app.compliance_tiers t on t.org_id = et.org_id and t.id = et.tier_id
    where et.org_id = p_org_id and et.employee_id = p_employee_id
    for update of et;
    if v_from = p_tier_id then
        perform app.fail('PT409',
            pg_catalog.format('employee %s is already in tier %s', p_employee_id, v_to.name),
            pg_catalog.format('Employee %s: current tier %s (%s), requested the same.',
                              p_employee_id, v_to.name, p_tier_id),
            'Choose another tier.');
    end if;

    v_deferred := app.defer_stats();
    if v_from is null then
        insert into app.employee_tiers (org_id, employee_id, tier_id, status)
        values (p_org_id, p_employee_id, p_tier_id, 'active');
    else
        update app.employee_tiers et
        set tier_id = p_tier_id, status = 'active', since = pg_catalog.now()
        where et.org_id = p_org_id and et.employee_id = p_employee_id;
    end if;
    insert into app.employee_tier_history (org_id, employee_id, from_tier_id, to_tier_id, kind,
                                           reason, changed_by)
    values (p_org_id, p_employee_id, v_from, p_tier_id, p_kind, nullif(pg_catalog.btrim(p_reason), ''),
            app.current_user_id())
    returning id into v_history_id;

    -- Tiers are cumulative: only the records of tiers above the new one become legacy; an approved
    -- lower-tier requirement stays approved.
    update app.employee_requirements er
    set is_legacy = true, status = 'inactive'
    from app.compliance_requirements cr
    join app.compliance_tiers rt on rt.org_id = cr.org_id and rt.id = cr.tier_id
    where er.org_id = p_org_id and er.employee_id = p_employee_id
      and cr.org_id = er.org_id and cr.id = er.requirement_id and rt.level > v_to.level
      and (not er.is_legacy or er.status <> 'inactive');
    get diagnostics v_legacy = row_count;

    v_added := app.add_tier_requirements(array[p_org_id], array[p_employee_id]);
    perform app.undefer_stats(v_deferred);
    perform app.refresh_stats_unless_deferred(array[p_org_id], array[p_employee_id]);

    perform app.notify_employee(p_org_id, p_employee_id, 'tier.changed',
        pg_catalog.format('Your compliance tier is now %s', v_to.name),
        pg_catalog.format('Your tier changed from %s to %s (%s)%s.', coalesce(v_from_name, 'none'),
                          v_to.name, p_kind, coalesce(': ' || nullif(pg_catalog.btrim(p_reason), ''), '')),
        '/tiers', 'medium', pg_catalog.format('tier.changed:%s', v_history_id));
    perform audit.record_event(p_org_id, 'tier_change', p_employee_id, 'employee_tiers',
        p_employee_id::text,
        pg_catalog.jsonb_build_object('from_tier_id', v_from, 'to_tier_id', p_tier_id,
                                      'kind', p_kind, 'reason', p_reason,
                                      'legacy_requirements', v_legacy,
                                      'new_requirements', v_added));
    perform app.emit_event(p_org_id, 'tier.changed', 'employee_tier', p_employee_id::text,
        p_employee_id,
        pg_catalog.jsonb_build_object('from_tier_id', v_from, 'to_tier_id', p_tier_id, 'kind', p_kind));
    return pg_catalog.jsonb_build_object(
        'employeeId', p_employee_id, 'fromTierId', v_from, 'toTierId', p_tier_id,
        'tier', v_to.name, 'kind', p_kind, 'legacyRequirements', v_legacy,
        'newRequirements', v_added);
end
$$;
comment on function app.apply_tier_switch(uuid, uuid, uuid, app.tier_change_kind, text) is
    'Switches an employee''s tier as one transaction (history, requirements, stats, notification, audit, event).';

-- Stats follow the tier record whoever changes it.
create or replace function app.employee_tiers_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_orgs uuid[];
    v_emps uuid[];
begin
    if tg_op = 'INSERT' then
        select pg_catalog.array_agg(n.org_id), pg_catalog.array_agg(n.employee_id)
        into v_orgs, v_emps from new_rows n;
    else
        select pg_catalog.array_agg(n.org_id), pg_catalog.array_agg(n.employee_id)
        into v_orgs, v_emps
        from new_rows n join old_rows o on o.org_id = n.org_id and o.employee_id = n.employee_id
        where n.tier_id is distinct from o.tier_id;
    end if;
    perform app.refresh_stats_unless_deferred(v_orgs, v_emps);
    return null;
end
$$;

create or replace trigger employee_tiers_changed_on_insert
    after insert on app.employee_tiers
    referencing new table as new_rows
    for each statement execute function app.employee_tiers_changed();

create or replace trigger employee_tiers_changed_on_update
    after update on app.employee_tiers
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.employee_tiers_changed();

-- A requirement added to a tier (or moved to another, or re-activated) reaches the active
-- employees of that tier and of every higher tier (tiers are cumulative) at once; a change of points or tier refreshes the stats it feeds.
create or replace function app.compliance_requirements_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
    v_orgs uuid[];
    v_emps uuid[];
begin
    if tg_op = 'INSERT' then
        select pg_catalog.array_agg(et.org_id), pg_catalog.array_agg(et.employee_id)
        into v_orgs, v_emps
        from (select distinct n.org_id, n.tier_id from new_rows n where n.active) n
        join app.compliance_tiers rt on rt.org_id = n.org_id and rt.id = n.tier_id
        join app.compliance_tiers t on t.org_id = n.org_id and t.level >= rt.level
        join app.employee_tiers et
          on et.org_id = n.org_id and et.tier_id = t.id and et.status = 'active';
        perform app.add_tier_requirements(v_orgs, v_emps);
        return null;
    end if;

    select pg_catalog.array_agg(et.org_id), pg_catalog.array_agg(et.employee_id)
    into v_orgs, v_emps
    from (select distinct n.org_id, n.tier_id
          from new_rows n join old_rows o on o.org_id = n.org_id and o.id = n.id
          where n.active and (n.tier_id <> o.tier_id or not o.active)) n
    join app.compliance_tiers rt on rt.org_id = n.org_id and rt.id = n.tier_id
    join app.compliance_tiers t on t.org_id = n.org_id and t.level >= rt.level
    join app.employee_tiers et
      on et.org_id = n.org_id and et.tier_id = t.id and et.status = 'active';
    perform app.add_tier_requirements(v_orgs, v_emps);

    select pg_catalog.array_agg(k.org_id), pg_catalog.array_agg(k.employee_id)
    into v_orgs, v_emps
    from (select distinct er.org_id, er.employee_id
          from new_rows n join old_rows o on o.org_id = n.org_id and o.id = n.id
          join app.employee_requirements er on er.org_id = n.org_id and er.requirement_id = n.id
          where n.points <> o.points or n.tier_id <> o.tier_id) k;
    perform app.refresh_stats_unless_deferred(v_orgs, v_emps);
    return null;
end
$$;

create or replace trigger compliance_requirements_changed_on_insert
    after insert on app.compliance_requirements
    referencing new table as new_rows
    for each statement execute function app.compliance_requirements_changed();

create or replace trigger compliance_requirements_changed_on_update
    after update on app.compliance_requirements
    referencing old table as old_rows new table as new_rows
    for each statement execute function app.compliance_requirements_changed();

-- PostgREST --------------------------------------------------------------------------------------

create or replace function api.check_tier_advancement(employee_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_org uuid := app.current_org_id();
    v_employee_id uuid := check_tier_advancement.employee_id;
begin
    if not exists (select from app.employees e where e.org_id = v_org and e.id = v_employee_id)
       or (app.current_role_in('employee') and not app.is_own_employee(v_employee_id)) then
        perform app.fail('PT404', pg_catalog.format('employee %s not found', v_employee_id),
            pg_catalog.format('No employee with id %s that you may read.', v_employee_id),
            'Employees may check only themselves.');
    end if;
    return app.tier_eligibility(v_org, v_employee_id);
end
$$;
comment on function api.check_tier_advancement(uuid) is
$$Whether an employee is eligible for the next compliance tier.

Answers {eligible, currentTier{id,name,level}, nextTier{id,name,level,minCompletionPct,minPoints},
requirements{current{completionPct,earnedPoints,totalPoints,completed,total},
required{completionPct,points}}, message}. Eligible when completion % and earned points reach the
next tier's minimums. Employees may check only themselves (404 otherwise).$$;
grant execute on function api.check_tier_advancement(uuid) to authenticated;

create or replace function api.switch_tier(employee_id uuid, tier_id uuid, reason app.reason default null)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_org uuid := app.current_org_id();
    v_employee_id uuid := switch_tier.employee_id;
    v_tier_id uuid := switch_tier.tier_id;
    v_employee app.employees;
    v_check jsonb;
    v_kind app.tier_change_kind;
begin
    select * into v_employee from app.employees e where e.org_id = v_org and e.id = v_employee_id;
    if v_employee.id is null
       or (app.current_role_in('employee') and not app.is_own_employee(v_employee_id)) then
        perform app.fail('PT404', pg_catalog.format('employee %s not found', v_employee_id),
            pg_catalog.format('No employee with id %s that you may read.', v_employee_id),
            'Check the id; list employees at /employees.');
    end if;
    if v_tier_id is null then
        perform app.fail('22023', 'tier_id is required', 'tier_id was null.',
                         'Pass the id of a tier from /compliance_tiers.');
    end if;
    if v_employee.status <> 'active' then
        perform app.fail('PT409',
            pg_catalog.format('employee %s is %s: their tier cannot change', v_employee.full_name,
                              v_employee.status),
            pg_catalog.format('Employee %s has status %s.', v_employee_id, v_employee.status),
            'Reactivate the employee first.');
    end if;

    -- HR admins and superadmins switch anyone (themselves only with hr_self_evidence: evidence
    -- about oneself needs another person, 125_assignment_api.sql); everyone but a viewer may
    -- advance themselves to the next tier when eligible.
    if app.admin_may_act_on(v_org, v_employee_id) then
        v_kind := 'manual';
    elsif app.is_own_employee(v_employee_id) and not app.current_role_in('viewer') then
        v_check := app.tier_eligibility(v_org, v_employee_id);
        if (v_check -> 'nextTier' ->> 'id') is distinct from v_tier_id::text then
            perform app.fail('42501', 'you may only advance yourself to the next tier',
                pg_catalog.format('Requested tier %s; your next tier is %s.%s', v_tier_id,
                                  coalesce(v_check -> 'nextTier' ->> 'name', 'none (highest tier)'),
                                  case when app.current_role_in('superadmin', 'hr_admin')
                                       then ' Evidence about yourself needs another person: HR admins switch'
                                            ' their own tier by hand only when the organisation enables'
                                            ' hr_self_evidence.' else '' end),
                'Ask an HR admin for any other tier change.');
        end if;
        if not (v_check ->> 'eligible')::boolean then
            perform app.fail('PT409',
                pg_catalog.format('%s is not yet eligible for %s', v_employee.full_name,
                                  v_check -> 'nextTier' ->> 'name'),
                v_check ->> 'message',
                'Complete more requirements; /rpc/check_tier_advancement shows what is missing.');
        end if;
        v_kind := 'advancement';
    else
        perform app.fail('42501',
            case when app.is_own_employee(v_employee_id) then 'viewers may not switch tiers, not even their own'
                 else 'only HR admins and superadmins may switch another employee''s tier' end,
            pg_catalog.format('Your role is %s%s; employee %s is %s.',
                              coalesce(app.current_app_role()::text, 'none'),
                              case when app.current_employee_id() is null
                                   then ' with no linked employee record' else '' end,
                              v_employee_id,
                              case when app.is_own_employee(v_employee_id)
                                   then 'your own, and viewers only read' else 'not you' end),
            'Ask an HR admin.');
    end if;
    return app.apply_tier_switch(v_org, v_employee_id, v_tier_id, v_kind, reason);
end
$$;
comment on function api.switch_tier(uuid, uuid, app.reason) is
$$Moves an employee to another compliance tier, as one transaction.

HR admins and superadmins switch anyone to any tier (kind manual), themselves only when the
organisation enables hr_self_evidence. Everyone but a viewer (HR admins and superadmins too, on
their own record) may advance themselves to the next tier when eligible (kind advancement; 409
when not yet eligible, 403 for any other tier). The new tier's requirements become pending (completed trainings count at
once), the old tier's become legacy and inactive, stats are recalculated, the employee is notified
and the change is audited (tier_change) and kept in /employee_tier_history. 409 when the employee
is inactive or already in that tier; 404 for an unknown employee or tier.$$;
grant execute on function api.switch_tier(uuid, uuid, app.reason) to authenticated;
