-- The compliance engine, part 8: the daily job (DESIGN §12, issue 3 item 11).
--
-- app.run_daily_jobs(day) runs, for the given day (so tests can run tomorrow), in one transaction:
--   0. next cycle: completed assignments whose module validity lapsed by the day get the next
--      assignment (due = completion date + validity days), once — first, so that a new cycle
--      already past its deadline is marked overdue and notified by this run, not the next;
--   1. overdue: open assignments of active employees past due date + the module's grace period;
--   2. due-soon reminders: open required assignments due within the department rule's
--      reminder_days_before (else the organisation's reminder_days);
--   3. overdue notifications to the employee;
--   4. escalations: overdue for more than the organisation's escalation_days -> the acting manager
--      (the nearest active one up the chain), else the HR admins;
--   5. certifications expiring within 30 days -> the employee;
--   7. requirement expiry: approved records whose expires_at is on or before the day -> pending;
--   8. the day's compliance snapshots (app.take_compliance_snapshots(day), helper-5's).
-- Idempotent: a second run for the same day changes nothing and notifies nobody again (every
-- notification carries a dedupe key). Returns the counts of each step.

create or replace function app.run_daily_jobs(p_day date default current_date) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_previous_today text := coalesce(pg_catalog.current_setting('app.today', true), '');
    v_overdue integer;
    v_due_soon integer;
    v_overdue_notified integer;
    v_escalated integer;
    v_expiring integer;
    v_next_cycle integer;
    v_expired integer;
    v_snapshots jsonb;
begin
    if p_day is null then
        perform app.fail('22023', 'run_daily_jobs needs a day', 'p_day was null.',
                         'Pass the date to run for, usually current_date.');
    end if;
    perform pg_catalog.set_config('app.today', p_day::text, true);

    -- 0. Next cycle for completed modules whose validity lapsed (see the header).
    insert into app.training_assignments (org_id, employee_id, module_id, due_date, is_required)
    select a.org_id, a.employee_id, a.module_id,
           a.completion_date::date + m.validity_days, a.is_required
    from app.training_assignments a
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
                               and m.active and m.validity_days is not null
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
    where a.status = 'completed'
      and a.completion_date::date + m.validity_days <= p_day
      and not exists (select from app.training_assignments later
                      where later.org_id = a.org_id and later.employee_id = a.employee_id
                        and later.module_id = a.module_id and later.id <> a.id
                        and (later.due_date > a.due_date
                             or later.due_date >= a.completion_date::date + m.validity_days))
    order by a.org_id, a.employee_id, a.module_id
    on conflict (org_id, employee_id, module_id, due_date) do nothing;
    get diagnostics v_next_cycle = row_count;

    -- 1. Overdue.
    update app.training_assignments a
    set status = 'overdue'
    from app.training_modules m, app.employees e
    where m.org_id = a.org_id and m.id = a.module_id
      and e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
      and a.status in ('not_started', 'in_progress')
      and a.due_date + a.grace_days < p_day;
    get diagnostics v_overdue = row_count;

    -- 2. Due-soon reminders.
    select pg_catalog.count(app.notify_employee(a.org_id, a.employee_id, 'assignment.due_soon',
               pg_catalog.format('%s is due %s', m.name, pg_catalog.to_char(a.due_date, 'YYYY-MM-DD')),
               pg_catalog.format('Your training %s is due on %s (in %s days).', m.name,
                                 pg_catalog.to_char(a.due_date, 'YYYY-MM-DD'), a.due_date - p_day),
               pg_catalog.format('/assignments/%s', a.id), 'medium',
               pg_catalog.format('assignment.due_soon:%s:%s', a.id, a.due_date)))
    into v_due_soon
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
    join app.organizations o on o.id = a.org_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.department_training_requirements r
      on r.org_id = a.org_id and r.department_id = e.department_id and r.module_id = a.module_id
    where a.status in ('not_started', 'in_progress') and a.is_required
      and a.due_date >= p_day
      and a.due_date <= p_day + coalesce(r.reminder_days_before, o.reminder_days);

    -- 3. Overdue notifications.
    select pg_catalog.count(app.notify_employee(a.org_id, a.employee_id, 'assignment.overdue',
               pg_catalog.format('%s is overdue', m.name),
               pg_catalog.format('Your training %s was due on %s.', m.name,
                                 pg_catalog.to_char(a.due_date, 'YYYY-MM-DD')),
               pg_catalog.format('/assignments/%s', a.id), 'high',
               pg_catalog.format('assignment.overdue:%s:%s', a.id, a.due_date)))
    into v_overdue_notified
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    where a.status = 'overdue';

    -- 4. Escalations to the manager.
    select pg_catalog.count(app.notify_user(a.org_id, mu.id, 'assignment.escalated',
               pg_catalog.format('%s is %s days overdue on %s', e.full_name,
                                 p_day - a.due_date - a.grace_days, m.name),
               pg_catalog.format('%s has not completed %s, due on %s (more than %s days past the grace period).',
                                 e.full_name, m.name, pg_catalog.to_char(a.due_date, 'YYYY-MM-DD'),
                                 o.escalation_days),
               pg_catalog.format('/employees/%s', e.id), 'high', e.id,
               pg_catalog.format('assignment.escalated:%s:%s', a.id, a.due_date)))
    into v_escalated
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
    join app.organizations o on o.id = a.org_id
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    -- the acting manager up the chain, else the organisation's HR admins
    cross join lateral (
        select app.acting_manager_user_id(e.org_id, e.id) as id
        where app.acting_manager_user_id(e.org_id, e.id) is not null
        union all
        select h.id from app.app_users h
        where h.org_id = e.org_id and h.app_role = 'hr_admin' and h.active
          and h.employee_id is distinct from e.id
          and app.acting_manager_user_id(e.org_id, e.id) is null
    ) mu
    where a.status = 'overdue'
      and p_day > a.due_date + a.grace_days + o.escalation_days;

    -- 5. Certifications expiring within 30 days.
    select pg_catalog.count(app.notify_employee(er.org_id, er.employee_id, 'certification.expiring',
               pg_catalog.format('%s expires %s', cr.name, pg_catalog.to_char(er.expires_at, 'YYYY-MM-DD')),
               pg_catalog.format('Your certification %s expires on %s; renew it and submit the new one.',
                                 cr.name, pg_catalog.to_char(er.expires_at, 'YYYY-MM-DD')),
               pg_catalog.format('/requirements/%s', er.id), 'high',
               pg_catalog.format('certification.expiring:%s:%s', er.id, er.expires_at::date)))
    into v_expiring
    from app.employee_requirements er
    join app.employees e on e.org_id = er.org_id and e.id = er.employee_id and e.status = 'active'
    join app.compliance_requirements cr
      on cr.org_id = er.org_id and cr.id = er.requirement_id and cr.type = 'certification'
    where er.status = 'approved'
      and er.expires_at::date >= p_day and er.expires_at::date <= p_day + 30;

    -- 7. Requirement expiry.
    update app.employee_requirements er
    set status = 'pending'
    from app.employees e
    where e.org_id = er.org_id and e.id = er.employee_id and e.status = 'active'
      and er.status = 'approved' and er.expires_at is not null and er.expires_at::date <= p_day;
    get diagnostics v_expired = row_count;

    -- 8. Snapshots (app.take_compliance_snapshots: the compliance figures' part of issue 3,
    -- db/functions/270_figures_snapshots.sql; it returns the number of snapshot rows).
    v_snapshots := pg_catalog.to_jsonb(app.take_compliance_snapshots(p_day));

    perform pg_catalog.set_config('app.today', v_previous_today, true);
    return pg_catalog.jsonb_build_object(
        'day', p_day, 'overdue', v_overdue, 'due_soon_notified', v_due_soon,
        'overdue_notified', v_overdue_notified, 'escalated', v_escalated,
        'certifications_expiring', v_expiring, 'next_cycle_assignments', v_next_cycle,
        'requirements_expired', v_expired, 'snapshots', v_snapshots);
end
$$;
comment on function app.run_daily_jobs(date) is
    'The daily job for a given day: overdue, reminders, escalations, expiring certifications, next cycles, expiry, snapshots. Idempotent.';
grant execute on function app.run_daily_jobs(date) to sync_worker;
