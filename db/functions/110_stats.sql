-- The compliance engine, part 2: per-employee compliance stats (DESIGN §4).
--
-- app.employee_compliance_stats is kept current by the database: every statement that changes an
-- input of the figures (assignments, requirement records, the employee's tier, requirement points)
-- refreshes the stats of the employees it touched, in a statement-level trigger, by recomputing
-- them with app.stats_compute. app.verify_stats() recomputes everything from scratch and returns
-- the rows that differ from what is stored (none when the maintenance is right).
--
-- Semantics (helper views and api.compliance_rate rely on them):
--   training_assigned  = required assignments (is_required), any status, exempted included
--   training_completed = required and completed;  training_overdue = required and overdue
--   training_exempted  = required and exempted
--   training_rate      = completed / (assigned - exempted) * 100; 100.00 when that is 0
--   requirement figures count the employee's records of requirements of their tier AND THE TIERS
--   BELOW IT (tiers are cumulative) that
--   are not inactive and not legacy: total, completed (approved), in_progress (in_progress,
--   submitted, revision_required), pending; completion_pct = approved / total * 100, 100.00 when
--   total is 0 (nothing required, nothing missing: the same convention as training_rate);
--   total_points / earned_points = the requirements' points, all / approved.

create or replace function app.stats_compute(p_org_ids uuid[], p_employee_ids uuid[])
returns table (
    org_id uuid, employee_id uuid,
    total_requirements integer, completed_requirements integer, in_progress_requirements integer,
    pending_requirements integer, completion_pct numeric(5, 2), total_points integer,
    earned_points integer, training_assigned integer, training_completed integer,
    training_overdue integer, training_exempted integer, training_rate numeric(5, 2)
)
language sql stable
set search_path = ''
as $$
    -- One index lookup per employee (LATERAL), so the cost stays linear in the number of
    -- employees whatever the planner guesses about the arrays' length.
    select k.org_id, k.employee_id,
           coalesce(r.total, 0)::integer,
           coalesce(r.approved, 0)::integer,
           coalesce(r.in_progress, 0)::integer,
           coalesce(r.pending, 0)::integer,
           (case when coalesce(r.total, 0) = 0 then 100.00
                 else pg_catalog.round(100.0 * r.approved / r.total, 2) end)::numeric(5, 2),
           coalesce(r.points, 0)::integer,
           coalesce(r.earned, 0)::integer,
           t.assigned::integer,
           t.completed::integer,
           t.overdue::integer,
           t.exempted::integer,
           app.compliance_rate_of(t.completed, t.assigned, t.exempted)::numeric(5, 2)
    from (select distinct k.org_id, k.employee_id
          from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id)) k
    join app.employees e on e.org_id = k.org_id and e.id = k.employee_id
    cross join lateral (
        select pg_catalog.count(*) filter (where a.is_required) as assigned,
               pg_catalog.count(*) filter (where a.is_required and a.status = 'completed') as completed,
               pg_catalog.count(*) filter (where a.is_required and a.status = 'overdue') as overdue,
               pg_catalog.count(*) filter (where a.is_required and a.status = 'exempted') as exempted
        from app.training_assignments a
        where a.org_id = k.org_id and a.employee_id = k.employee_id
    ) t
    cross join lateral (
        select pg_catalog.count(*) as total,
               pg_catalog.count(*) filter (where er.status = 'approved') as approved,
               pg_catalog.count(*) filter (
                   where er.status in ('in_progress', 'submitted', 'revision_required')) as in_progress,
               pg_catalog.count(*) filter (where er.status = 'pending') as pending,
               pg_catalog.sum(cr.points) as points,
               pg_catalog.sum(cr.points) filter (where er.status = 'approved') as earned
        from app.employee_tiers et
        join app.employee_requirements er
          on er.org_id = et.org_id and er.employee_id = et.employee_id
        join app.compliance_tiers cur on cur.org_id = et.org_id and cur.id = et.tier_id
        join app.compliance_requirements cr on cr.org_id = er.org_id and cr.id = er.requirement_id
        -- tiers are cumulative: the current tier's requirements and every lower tier's
        join app.compliance_tiers rt on rt.org_id = cr.org_id and rt.id = cr.tier_id and rt.level <= cur.level
        where et.org_id = k.org_id and et.employee_id = k.employee_id
          and er.status <> 'inactive' and not er.is_legacy
    ) r
$$;
comment on function app.stats_compute(uuid[], uuid[]) is
    'Computes the compliance stats of the given employees (pairs of org_id[i], employee_id[i]) from scratch.';

-- Recompute and store the stats of the given employees; emits stats.updated for each row that
-- changed, and tells an employee once when their figures make them eligible for the next tier.
-- Concurrent refreshes of the same employee are serialised on the stats row, and the figures
-- are computed after the lock is held, so a concurrent commit is never lost.
create or replace function app.refresh_stats(p_org_ids uuid[], p_employee_ids uuid[])
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_changed integer := 0;
    r record;
begin
    if p_org_ids is null or pg_catalog.cardinality(p_org_ids) = 0 then
        return 0;
    end if;
    perform 1
    from app.employee_compliance_stats s
    where (s.org_id, s.employee_id) in (
        select k.org_id, k.employee_id
        from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id))
    order by s.org_id, s.employee_id
    for update;

    for r in
        with before as (
            select s.org_id, s.employee_id, s.completion_pct, s.earned_points
            from app.employee_compliance_stats s
            where (s.org_id, s.employee_id) in (
                select k.org_id, k.employee_id
                from unnest(p_org_ids, p_employee_ids) as k(org_id, employee_id))
        ),
        up as (
            insert into app.employee_compliance_stats as s (
                org_id, employee_id, total_requirements, completed_requirements,
                in_progress_requirements, pending_requirements, completion_pct, total_points,
                earned_points, training_assigned, training_completed, training_overdue,
                training_exempted, training_rate)
            select c.org_id, c.employee_id, c.total_requirements, c.completed_requirements,
                   c.in_progress_requirements, c.pending_requirements, c.completion_pct,
                   c.total_points, c.earned_points, c.training_assigned, c.training_completed,
                   c.training_overdue, c.training_exempted, c.training_rate
            from app.stats_compute(p_org_ids, p_employee_ids) c
            order by c.org_id, c.employee_id
            on conflict (org_id, employee_id) do update set
                total_requirements = excluded.total_requirements,
                completed_requirements = excluded.completed_requirements,
                in_progress_requirements = excluded.in_progress_requirements,
                pending_requirements = excluded.pending_requirements,
                completion_pct = excluded.completion_pct,
                total_points = excluded.total_points,
                earned_points = excluded.earned_points,
                training_assigned = excluded.training_assigned,
                training_completed = excluded.training_completed,
                training_overdue = excluded.training_overdue,
                training_exempted = excluded.training_exempted,
                training_rate = excluded.training_rate,
                updated_at = pg_catalog.now()
            where (s.total_requirements, s.completed_requirements, s.in_progress_requirements,
                   s.pending_requirements, s.completion_pct, s.total_points, s.earned_points,
                   s.training_assigned, s.training_completed, s.training_overdue,
                   s.training_exempted, s.training_rate)
                  is distinct from
                  (excluded.total_requirements, excluded.completed_requirements,
                   excluded.in_progress_requirements, excluded.pending_requirements,
                   excluded.completion_pct, excluded.total_points, excluded.earned_points,
                   excluded.training_assigned, excluded.training_completed,
                   excluded.training_overdue, excluded.training_exempted, excluded.training_rate)
            returning s.org_id, s.employee_id, s.completion_pct, s.earned_points,
                      s.training_rate, s.training_overdue
        ),
        ev as (
            insert into app.events (org_id, type, entity, entity_id, employee_id, payload)
            select up.org_id, 'stats.updated', 'employee_compliance_stats', up.employee_id::text,
                   up.employee_id,
                   pg_catalog.jsonb_build_object('training_rate', up.training_rate,
                                                 'completion_pct', up.completion_pct,
                                                 'earned_points', up.earned_points,
                                                 'training_overdue', up.training_overdue)
            from up
            order by up.org_id, up.employee_id
            returning id
        ),
        notified as (
            select pg_catalog.count(pg_catalog.pg_notify('compliance_events', ev.id::text)) as n
            from ev
        )
        select up.org_id, up.employee_id,
               -- eligible for the next tier now, and the figures that decide it just changed
               ((b.org_id is null or b.completion_pct is distinct from up.completion_pct
                 or b.earned_points is distinct from up.earned_points)
                and exists (
                    select
                    from app.employee_tiers et
                    join app.compliance_tiers cur on cur.org_id = et.org_id and cur.id = et.tier_id
                    cross join lateral (
                        select nt.min_completion_pct, nt.min_points
                        from app.compliance_tiers nt
                        where nt.org_id = cur.org_id and nt.level > cur.level
                        order by nt.level limit 1) nxt
                    where et.org_id = up.org_id and et.employee_id = up.employee_id
                      and et.status = 'active'
                      and up.completion_pct >= nxt.min_completion_pct
                      and up.earned_points >= nxt.min_points)) as may_advance,
               (select n from notified) as n
        from up
        left join before b on b.org_id = up.org_id and b.employee_id = up.employee_id
    loop
        v_changed := v_changed + 1;
        if r.may_advance then
            perform app.notify_if_tier_eligible(r.org_id, r.employee_id);
        end if;
    end loop;
    return v_changed;
end
$$;
comment on function app.refresh_stats(uuid[], uuid[]) is
    'Recomputes and stores the stats of the given employees; emits stats.updated for those that changed.';

-- The statement triggers' entry point: refresh unless an engine operation defers it.
create or replace function app.refresh_stats_unless_deferred(p_org_ids uuid[], p_employee_ids uuid[])
returns integer
language plpgsql volatile
set search_path = ''
as $$
begin
    if app.stats_deferred() then
        return 0;
    end if;
    return app.refresh_stats(p_org_ids, p_employee_ids);
end
$$;

-- Recompute every employee's stats from scratch and return those that differ from the stored
-- ones (stored is null when the stats row is missing). Empty when the maintenance is right.
create or replace function app.verify_stats()
returns table (org_id uuid, employee_id uuid, stored jsonb, computed jsonb)
language sql stable security definer
set search_path = ''
as $$
    with c as (
        select c.*
        from app.stats_compute(
            (select pg_catalog.array_agg(e.org_id order by e.org_id, e.id) from app.employees e),
            (select pg_catalog.array_agg(e.id order by e.org_id, e.id) from app.employees e)) c
    ),
    cj as (
        select c.org_id, c.employee_id,
               pg_catalog.to_jsonb(c) - 'org_id' - 'employee_id' as figures
        from c
    ),
    sj as (
        select s.org_id, s.employee_id,
               pg_catalog.jsonb_build_object(
                   'total_requirements', s.total_requirements,
                   'completed_requirements', s.completed_requirements,
                   'in_progress_requirements', s.in_progress_requirements,
                   'pending_requirements', s.pending_requirements,
                   'completion_pct', s.completion_pct,
                   'total_points', s.total_points,
                   'earned_points', s.earned_points,
                   'training_assigned', s.training_assigned,
                   'training_completed', s.training_completed,
                   'training_overdue', s.training_overdue,
                   'training_exempted', s.training_exempted,
                   'training_rate', s.training_rate) as figures
        from app.employee_compliance_stats s
    )
    select coalesce(sj.org_id, cj.org_id), coalesce(sj.employee_id, cj.employee_id),
           sj.figures, cj.figures
    from cj
    full join sj on sj.org_id = cj.org_id and sj.employee_id = cj.employee_id
    where sj.figures is distinct from cj.figures
    order by 1, 2
$$;
comment on function app.verify_stats() is
    'Recomputes all employees'' stats from scratch; returns the rows that differ from the stored ones (empty when right).';

-- PostgREST: recalculate one employee's stats (HR admins and superadmins).
create or replace function api.recalculate_employee(employee_id uuid) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_org uuid := app.current_org_id();
    v_employee_id uuid := recalculate_employee.employee_id;
    v_stats jsonb;
begin
    if not app.current_role_in('superadmin', 'hr_admin') then
        perform app.fail('42501', 'only HR admins and superadmins may recalculate stats',
            pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
            'Ask an HR admin; stats are kept current automatically.');
    end if;
    if not exists (select from app.employees e where e.org_id = v_org and e.id = v_employee_id) then
        perform app.fail('PT404', pg_catalog.format('employee %s not found', v_employee_id),
            pg_catalog.format('No employee with id %s in your organisation.', v_employee_id),
            'Check the id; list employees at /employees.');
    end if;
    perform app.refresh_stats(array[v_org], array[v_employee_id]);
    select pg_catalog.to_jsonb(s) - 'org_id' into v_stats
    from app.employee_compliance_stats s
    where s.org_id = v_org and s.employee_id = v_employee_id;
    return v_stats;
end
$$;
comment on function api.recalculate_employee(uuid) is
$$Recalculates one employee's compliance stats from scratch and returns them.

HR admins and superadmins only (403 otherwise); 404 when the employee is not in your organisation.
The database keeps stats current on every change: this is a repair tool, not a routine call.$$;
grant execute on function api.recalculate_employee(uuid) to authenticated;
