-- The cached figures of ended days stay exact: after a year of history (completions on time,
-- late and recorded later, an exemption, moves, a termination) every ended day is cached, then
-- today's writes change past days (a back-dated completion across a move, a correction, a
-- withdrawn completion, a bulk completion of several rows, a deleted assignment, a completion of
-- today). Every day of the year, every group: the cache equals the computation from the history.
-- Organisations far from the server's zone (UTC+14 and UTC−12).
begin;
select plan(14);

-- Department × location groups: (General, Main), (Surgery, Main), (General, Annex).
create function pg_temp.scenario(p_slug text, p_zone text) returns void
language plpgsql as $$
declare
    v_org uuid := tests.create_org('cache-' || p_slug);
    v_t date;
    v_general uuid;
    v_surgery uuid;
    v_main uuid;
    v_annex uuid;
    e uuid[];
    m uuid[];
begin
    update app.organizations set timezone = p_zone where id = v_org;
    v_t := app.org_today(v_org);
    perform tests.set_var(p_slug || '_org', v_org::text);
    perform tests.set_var(p_slug || '_t', v_t::text);
    select id into v_general from app.departments where org_id = v_org;
    select id into v_main from app.locations where org_id = v_org;
    for i in 1..6 loop
        e := e || tests.create_employee(v_org, 'e' || i || '@' || p_slug || '.example');
    end loop;
    insert into app.departments (org_id, name) values (v_org, 'Surgery') returning id into v_surgery;
    insert into app.locations (org_id, name) values (v_org, 'Annex') returning id into v_annex;
    perform tests.set_var(p_slug || '_e', e::text);
    -- M1 due T-300 (grace 5), M2 due T-200, M3 due T-60 (grace 3), M4 due T+20.
    with x(n, due, grace) as (values (1, v_t - 300, 5), (2, v_t - 200, 0), (3, v_t - 60, 3), (4, v_t + 20, 0))
    insert into app.training_modules (org_id, name, month_key, due_date, grace_period_days)
    select v_org, 'M' || x.n, '2025-01', x.due, x.grace from x order by x.n;
    select array_agg(id order by name) into m from app.training_modules where org_id = v_org;
    perform tests.set_var(p_slug || '_m', m::text);
    insert into app.training_assignments (org_id, employee_id, module_id, due_date, grace_days)
    select v_org, ee, mm.id, mm.due_date, mm.grace_period_days
    from unnest(e) ee cross join app.training_modules mm where mm.org_id = v_org
    on conflict do nothing;
    -- No daily job runs: nothing is marked overdue (the as-of rule computes it).
    perform set_config('session_replication_role', 'replica', true);
    update app.training_assignments set status = 'not_started' where org_id = v_org;
    perform set_config('session_replication_role', 'origin', true);
    update app.assignment_history set status = 'not_started' where org_id = v_org;
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 370));

    -- T-320: e1 completes M1 on time (T-321).
    update app.training_assignments set status = 'completed', score = 90,
           completion_date = tests.local_noon(v_org, v_t - 321)
    where org_id = v_org and employee_id = e[1] and module_id = m[1];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 320));
    -- T-290: e2 moves to Surgery.
    update app.employees set department_id = v_surgery where org_id = v_org and id = e[2];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 290));
    -- T-250: e3 completes M1 late (T-251).
    update app.training_assignments set status = 'completed', score = 80,
           completion_date = tests.local_noon(v_org, v_t - 251)
    where org_id = v_org and employee_id = e[3] and module_id = m[1];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 250));
    -- T-220: e4 is exempted from M2.
    update app.training_assignments set status = 'exempted', exemption_reason = 'Covered elsewhere'
    where org_id = v_org and employee_id = e[4] and module_id = m[2];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 220));
    -- T-180: e5 is terminated.
    update app.employees set status = 'terminated' where org_id = v_org and id = e[5];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 180));
    -- T-150: e2's completion of M2 on T-170 is recorded.
    update app.training_assignments set status = 'completed', score = 75,
           completion_date = tests.local_noon(v_org, v_t - 170)
    where org_id = v_org and employee_id = e[2] and module_id = m[2];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 150));
    -- T-100: e6 moves to the Annex.
    update app.employees set location_id = v_annex where org_id = v_org and id = e[6];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 100));
    -- T-50: e1 completes M3 (T-52).
    update app.training_assignments set status = 'completed', score = 100,
           completion_date = tests.local_noon(v_org, v_t - 52)
    where org_id = v_org and employee_id = e[1] and module_id = m[3];
    perform tests.history_at(v_org, tests.local_noon(v_org, v_t - 50));

    -- The daily jobs of the year: every ended day cached.
    perform app.snapshot_compliance(d::date, v_org)
    from generate_series(v_t - 370, v_t - 1, interval '1 day') d;
    perform tests.set_var(p_slug || '_hr', tests.create_user(v_org, 'hr_admin')::text);
end
$$;
select pg_temp.scenario('east', 'Pacific/Kiritimati');
select pg_temp.scenario('west', 'Etc/GMT+12');

-- Days whose cached rows differ from the history's answer, for one organisation.
create function pg_temp.mismatched_days(p text) returns bigint
language sql as $$
    with history as materialized (
        select d::date as day, g.*
        from generate_series(tests.var(p || '_t')::date - 370, tests.var(p || '_t')::date - 1, interval '1 day') d
        cross join lateral app.compliance_groups_as_of(tests.var(p || '_org')::uuid, d::date) g
    ),
    cache as materialized (
        select s.snapshot_date, s.department_id, s.location_id, s.active_employees::bigint,
               s.required_assignments::bigint, s.completed_assignments::bigint,
               s.overdue_assignments::bigint, s.exempted_assignments::bigint,
               s.completed_recorded_later::bigint, s.corrected_later::bigint
        from app.compliance_snapshots s
        where s.org_id = tests.var(p || '_org')::uuid
    )
    select count(distinct x.day)
    from ((select * from history except select * from cache)
          union all
          (select * from cache except select * from history)) x
$$;

select is(pg_temp.mismatched_days(p), 0::bigint, p || ': the year cached equals the history, day by day')
from unnest(array['east', 'west']) p;
select is((select overdue_assignments from app.compliance_snapshots
           where org_id = tests.var(p || '_org')::uuid and snapshot_date = tests.var(p || '_t')::date - 280
             and department_id is null and location_id is null),
          5, p || ': T-280: five overdue on M1 (all but e1; e3 completes only on T-251)')
from unnest(array['east', 'west']) p;

create temporary table before_writes as
select * from app.compliance_snapshots
where org_id in (tests.var('east_org')::uuid, tests.var('west_org')::uuid);

-- Today's writes, for one organisation.
create function pg_temp.todays_writes(p text) returns void
language plpgsql as $$
declare
    v_org uuid := tests.var(p || '_org')::uuid;
    v_t date := tests.var(p || '_t')::date;
    e uuid[] := tests.var(p || '_e')::uuid[];
    m uuid[] := tests.var(p || '_m')::uuid[];
    v_id uuid;
begin
    perform tests.authenticate_as(tests.var(p || '_hr')::uuid, 'POST', '/rpc/record_completion');
    -- e6's M1, an in-person session of T-310 (before e6 moved to the Annex), keyed in today.
    select id into v_id from app.training_assignments where org_id = v_org and employee_id = e[6] and module_id = m[1];
    perform api.record_completion(v_id, tests.local_noon(v_org, v_t - 310), 'Sign-in sheet found');
    -- e1's M1 was really completed on T-280 (late), not T-321.
    select id into v_id from app.training_assignments where org_id = v_org and employee_id = e[1] and module_id = m[1];
    perform api.correct_completion(v_id, 'Wrong session on the sheet', completed_at => tests.local_noon(v_org, v_t - 280));
    -- e3 did not attend M1 after all: the completion is withdrawn.
    select id into v_id from app.training_assignments where org_id = v_org and employee_id = e[3] and module_id = m[1];
    perform api.correct_completion(v_id, 'Did not attend', attended => false);
    perform tests.clear_authentication();
    -- A sync merge: M3 completed by e2 (T-40) and e4 (T-10), and M4 by e3 today, in one statement.
    update app.training_assignments a
    set status = 'completed', score = 88, completion_date = x.at
    from (values (e[2], m[3], tests.local_noon(v_org, v_t - 40)),
                 (e[4], m[3], tests.local_noon(v_org, v_t - 10)),
                 (e[3], m[4], now())) x(employee_id, module_id, at)
    where a.org_id = v_org and a.employee_id = x.employee_id and a.module_id = x.module_id;
    -- e2's M2 (completed, recorded later) is deleted: what is known of it is what each version said.
    delete from app.training_assignments where org_id = v_org and employee_id = e[2] and module_id = m[2];
end
$$;
select pg_temp.todays_writes('east');
select pg_temp.todays_writes('west');

select is(pg_temp.mismatched_days(p), 0::bigint,
          p || ': after today''s writes the cached year still equals the history, day by day')
from unnest(array['east', 'west']) p;
select cmp_ok((select count(distinct b.snapshot_date)
               from before_writes b
               join app.compliance_snapshots s
                 on s.org_id = b.org_id and s.snapshot_date = b.snapshot_date
                and s.department_id is not distinct from b.department_id
                and s.location_id is not distinct from b.location_id
               where b.org_id = tests.var(p || '_org')::uuid
                 and (s.completed_assignments, s.overdue_assignments, s.completed_recorded_later, s.corrected_later)
                     is distinct from
                     (b.completed_assignments, b.overdue_assignments, b.completed_recorded_later, b.corrected_later)),
              '>=', 300::bigint, p || ': and today''s writes changed the cached figures of 300 days and more')
from unnest(array['east', 'west']) p;
-- T-300 (M1's due date): e6's back-dated completion counts in (General, Main), recorded later;
-- e1 is corrected later (the version of that day said completed on T-321).
select is((select (completed_assignments, completed_recorded_later, corrected_later)::text
           from app.compliance_snapshots s
           join app.departments d on d.org_id = s.org_id and d.id = s.department_id
           join app.locations l on l.org_id = s.org_id and l.id = s.location_id
           where s.org_id = tests.var(p || '_org')::uuid and s.snapshot_date = tests.var(p || '_t')::date - 300
             and d.name = 'General' and l.name = 'Main'),
          '(1,1,1)', p || ': T-300, (General, Main): e6 completed (recorded later); e1 not yet (corrected later)')
from unnest(array['east', 'west']) p;
-- T-50: e6 is in the Annex by then; the completion of M1 counts there.
select is((select completed_assignments from app.compliance_snapshots s
           join app.locations l on l.org_id = s.org_id and l.id = s.location_id
           where s.org_id = tests.var(p || '_org')::uuid and s.snapshot_date = tests.var(p || '_t')::date - 50
             and l.name = 'Annex'),
          1, p || ': T-50, the Annex: e6''s M1 counts in the group of that day')
from unnest(array['east', 'west']) p;
select is((select overdue_assignments from app.compliance_snapshots
           where org_id = tests.var(p || '_org')::uuid and snapshot_date = tests.var(p || '_t')::date - 280
             and department_id is null and location_id is null),
          4, p || ': T-280: four overdue (e2, e3, e4, e5): e1 completed that day, e6 on T-310')
from unnest(array['east', 'west']) p;

select * from finish();
rollback;
