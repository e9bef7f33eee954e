-- The compliance engine, part 8: the daily job (DESIGN §12).
--
-- app.run_daily_jobs(org, day) runs, for one organisation and one of its LOCAL days (the worker
-- calls it after the organisation's local midnight, once per day, catching up missed days in
-- order: sync.run_daily_jobs_due, db/functions/340_sync_jobs.sql; tests pass a later day to run
-- tomorrow), in one transaction, with the day pinned as app.today for the rules:
--   0. assignment rules of the day: recertification windows opening (the next cycle assigned,
--      due on the expiry date, not counting yet), completions lapsing (the next cycle counts
--      instead), department rules whose effective dates start or end (reconciled) — first, so
--      that a cycle already past its deadline is marked overdue by this run;
--   1. overdue: open assignments of active employees past due date + their grace_days;
--   2. due-soon reminders: open required assignments due within the department rule's
--      reminder_days_before (else the organisation's reminder_days);
--   3. overdue notifications to the employee (required assignments only);
--   4. escalations (required assignments only): overdue for more than the organisation's
--      escalation_days past due + grace -> the acting manager (the nearest active one up the
--      chain), else the HR admins; the message says the days overdue (app.days_overdue, counted
--      from the due date);
--   5. certifications expiring within 30 days -> the employee;
--   7. requirement expiry: approved records whose expires_at is on or before the day -> pending;
--   8. the organisation's figures of the day that ended cached from the history
--      (app.take_compliance_snapshots(day, org)).
-- Instants (completion, expiry) become days in the organisation's zone (app.local_date).
-- Idempotent: a second run for the same day changes nothing and notifies nobody again (every
-- notification carries a dedupe key). Returns the counts of each step.

-- (Before per-organisation days: one argument, the server's date by default.)
drop function if exists app.run_daily_jobs(date);
create or replace function app.run_daily_jobs(p_org_id uuid, p_day date) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_previous_today text := coalesce(pg_catalog.current_setting('app.today', true), '');
    v_org app.organizations;
    v_overdue integer;
    v_due_soon integer;
    v_overdue_notified integer;
    v_escalated integer;
    v_expiring integer;
    v_next_cycle integer;
    v_lapsed integer;
    v_rule_dates integer;
    v_expired integer;
    v_snapshots jsonb;
begin
    select * into v_org from app.organizations o where o.id = p_org_id;
    if p_org_id is null or v_org.id is null or p_day is null then
        perform app.fail('22023',
            pg_catalog.format('run_daily_jobs needs an organisation and one of its days, not (%s, %s)',
                              coalesce(p_org_id::text, 'null'), coalesce(p_day::text, 'null')),
            case when p_org_id is null then 'p_org_id was null.'
                 when v_org.id is null then pg_catalog.format('No organisation has id %s.', p_org_id)
                 else 'p_day was null.' end,
            'Pass the organisation''s id and its local day (app.org_today(org)).');
    end if;
    perform pg_catalog.set_config('app.today', p_day::text, true);

    -- 0. Assignment rules of the day (152_reconcile.sql, 154_recertification.sql).
    v_rule_dates := coalesce((app.reconcile_rule_dates(p_org_id, p_day) ->> 'created')::integer, 0);
    v_next_cycle := app.open_recertification_windows(p_org_id, p_day);
    v_lapsed := app.lapse_expired_completions(p_org_id, p_day);

    -- 1. Overdue.
    update app.training_assignments a
    set status = 'overdue'
    from app.employees e
    where a.org_id = p_org_id
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
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    left join app.department_training_requirements r
      on r.org_id = a.org_id and r.department_id = e.department_id and r.module_id = a.module_id
    where a.org_id = p_org_id and a.status in ('not_started', 'in_progress') and a.is_required
      and a.due_date >= p_day
      and a.due_date <= p_day + coalesce(r.reminder_days_before, v_org.reminder_days);

    -- 3. Overdue notifications.
    select pg_catalog.count(app.notify_employee(a.org_id, a.employee_id, 'assignment.overdue',
               pg_catalog.format('%s is overdue', m.name),
               pg_catalog.format('Your training %s was due on %s (%s days overdue).', m.name,
                                 pg_catalog.to_char(a.due_date, 'YYYY-MM-DD'),
                                 app.days_overdue(a.due_date, p_day)),
               pg_catalog.format('/assignments/%s', a.id), 'high',
               pg_catalog.format('assignment.overdue:%s:%s', a.id, a.due_date)))
    into v_overdue_notified
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
    join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
    where a.org_id = p_org_id and a.status = 'overdue' and a.is_required;

    -- 4. Escalations to the manager.
    select pg_catalog.count(app.notify_user(a.org_id, mu.id, 'assignment.escalated',
               pg_catalog.format('%s is %s days overdue on %s', e.full_name,
                                 app.days_overdue(a.due_date, p_day), m.name),
               pg_catalog.format('%s has not completed %s, due on %s (more than %s days past the grace period).',
                                 e.full_name, m.name, pg_catalog.to_char(a.due_date, 'YYYY-MM-DD'),
                                 v_org.escalation_days),
               pg_catalog.format('/employees/%s', e.id), 'high', e.id,
               pg_catalog.format('assignment.escalated:%s:%s', a.id, a.due_date)))
    into v_escalated
    from app.training_assignments a
    join app.employees e on e.org_id = a.org_id and e.id = a.employee_id and e.status = 'active'
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
    where a.org_id = p_org_id and a.status = 'overdue' and a.is_required
      and p_day > a.due_date + a.grace_days + v_org.escalation_days;

    -- 5. Certifications expiring within 30 days (local days of the expiry instant).
    select pg_catalog.count(app.notify_employee(er.org_id, er.employee_id, 'certification.expiring',
               pg_catalog.format('%s expires %s', cr.name,
                                 pg_catalog.to_char(app.local_date(er.org_id, er.expires_at), 'YYYY-MM-DD')),
               pg_catalog.format('Your certification %s expires on %s; renew it and submit the new one.',
                                 cr.name, pg_catalog.to_char(app.local_date(er.org_id, er.expires_at), 'YYYY-MM-DD')),
               pg_catalog.format('/requirements/%s', er.id), 'high',
               pg_catalog.format('certification.expiring:%s:%s', er.id, app.local_date(er.org_id, er.expires_at))))
    into v_expiring
    from app.employee_requirements er
    join app.employees e on e.org_id = er.org_id and e.id = er.employee_id and e.status = 'active'
    join app.compliance_requirements cr
      on cr.org_id = er.org_id and cr.id = er.requirement_id and cr.type = 'certification'
    where er.org_id = p_org_id and er.status = 'approved'
      and app.local_date(er.org_id, er.expires_at) between p_day and p_day + 30;

    -- 7. Requirement expiry.
    update app.employee_requirements er
    set status = 'pending'
    from app.employees e
    where er.org_id = p_org_id
      and e.org_id = er.org_id and e.id = er.employee_id and e.status = 'active'
      and er.status = 'approved' and er.expires_at is not null
      and app.local_date(er.org_id, er.expires_at) <= p_day;
    get diagnostics v_expired = row_count;

    -- 8. The figures of the day that ended (day - 1), cached from the history
    -- (db/functions/270_figures_snapshots.sql): exact whenever the job runs, so a catch-up run
    -- never records later events as an earlier day's. Returns the number of snapshot rows.
    v_snapshots := pg_catalog.to_jsonb(app.take_compliance_snapshots(p_day, p_org_id));

    perform pg_catalog.set_config('app.today', v_previous_today, true);
    return pg_catalog.jsonb_build_object(
        'day', p_day, 'overdue', v_overdue, 'due_soon_notified', v_due_soon,
        'overdue_notified', v_overdue_notified, 'escalated', v_escalated,
        'certifications_expiring', v_expiring, 'next_cycle_assignments', v_next_cycle,
        'lapsed_completions', v_lapsed, 'rule_date_assignments', v_rule_dates,
        'requirements_expired', v_expired, 'snapshots', v_snapshots);
end
$$;
comment on function app.run_daily_jobs(uuid, date) is
    'The daily job of one organisation for one of its local days: overdue, reminders, escalations, expiring certifications, next cycles, expiry, snapshot. Idempotent.';
grant execute on function app.run_daily_jobs(uuid, date) to sync_worker;
