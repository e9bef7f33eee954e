-- The compliance engine: recertification as certification periods (DESIGN §5, issue 13 item 3).
-- A completion of a module with validity_days is valid from its completion's local date for that
-- many days; it expires on completion date + validity_days. One counting cycle per employee x
-- module at a time:
--   * the window opens recertification_window_days (module setting, default 30) before expiry:
--     app.open_recertification_windows creates the next cycle's assignment, due on the expiry
--     date, NOT counting yet (is_required false, reason next_cycle), and tells the employee and
--     their manager once;
--   * at expiry (expiry date <= the day) app.lapse_expired_completions makes the old cycle stop
--     counting (reason lapsed, required_until = the start of the expiry day) and the next cycle
--     count (overdue after its grace like any other);
--   * a next cycle completed before expiry counts at once and the old cycle stops counting
--     (reason renewed): app.assignment_renewed, a trigger for every writer.
-- Every cycle stays in the history. Both jobs run per organisation from app.run_daily_jobs.

create or replace function app.open_recertification_windows(p_org_id uuid, p_day date)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_count integer;
    v_notified integer;
    k record;
begin
    select * into k from app.active_employee_keys(array[p_org_id]);
    if k.org_ids is null then
        return 0;
    end if;
    with req as (
        select * from app.required_assignments(k.org_ids, k.employee_ids,
            (select pg_catalog.array_agg(m.id) from app.training_modules m
             where m.org_id = p_org_id and m.active and m.validity_days is not null))
    ),
    due as (
        select a.org_id, a.employee_id, a.module_id, r.grace_days, m.name as module_name,
               app.local_date(a.org_id, a.completion_date) + m.validity_days as expires_on
        from app.training_assignments a
        join req r on r.org_id = a.org_id and r.employee_id = a.employee_id and r.module_id = a.module_id
        join app.training_modules m on m.org_id = a.org_id and m.id = a.module_id
        where a.org_id = p_org_id and a.is_required and a.status = 'completed'
          and app.local_date(a.org_id, a.completion_date) + m.validity_days
              - m.recertification_window_days <= p_day
          and not exists (select from app.training_assignments b
                          where b.org_id = a.org_id and b.employee_id = a.employee_id
                            and b.module_id = a.module_id and b.id <> a.id
                            and (b.is_required or b.not_required_reason = 'next_cycle'))
    ),
    ins as (
        insert into app.training_assignments (org_id, employee_id, module_id, due_date, grace_days,
                                              is_required, not_required_reason)
        select d.org_id, d.employee_id, d.module_id,
               case when d.expires_on >= p_day then d.expires_on else p_day + d.grace_days end,
               d.grace_days, false, 'next_cycle'
        from due d
        order by d.org_id, d.employee_id, d.module_id
        on conflict (org_id, employee_id, module_id, due_date)
            where not_required_reason is distinct from 'superseded_by_rehire' do nothing
        returning org_id, id, employee_id, module_id, due_date
    ),
    told as (
        select i.*, d.module_name, d.expires_on, e.full_name,
               app.notify_employee(i.org_id, i.employee_id, 'assignment.recertification_due',
                   pg_catalog.format('Renew %s by %s', d.module_name, pg_catalog.to_char(d.expires_on, 'YYYY-MM-DD')),
                   pg_catalog.format('Your %s certification expires on %s; complete the training again by then to stay compliant.',
                                     d.module_name, pg_catalog.to_char(d.expires_on, 'YYYY-MM-DD')),
                   pg_catalog.format('/assignments/%s', i.id), 'medium',
                   pg_catalog.format('assignment.recertification_due:%s', i.id)) as employee_notice,
               (select app.notify_user(i.org_id, mu.id, 'assignment.recertification_due',
                    pg_catalog.format('%s must renew %s by %s', e.full_name, d.module_name,
                                      pg_catalog.to_char(d.expires_on, 'YYYY-MM-DD')),
                    pg_catalog.format('The %s certification of %s expires on %s; the renewal is assigned.',
                                      d.module_name, e.full_name, pg_catalog.to_char(d.expires_on, 'YYYY-MM-DD')),
                    pg_catalog.format('/employees/%s', e.id), 'medium', e.id,
                    pg_catalog.format('assignment.recertification_due:%s:manager', i.id))
                from app.app_users mu
                where mu.org_id = e.org_id and mu.employee_id = e.manager_id and mu.active
                limit 1) as manager_notice
        from ins i
        join due d on d.org_id = i.org_id and d.employee_id = i.employee_id and d.module_id = i.module_id
        join app.employees e on e.org_id = i.org_id and e.id = i.employee_id
    )
    select pg_catalog.count(*), pg_catalog.count(t.employee_notice) + pg_catalog.count(t.manager_notice)
    into v_count, v_notified
    from told t;
    return v_count;
end
$$;
comment on function app.open_recertification_windows(uuid, date) is
    'Creates the next cycle (not counting yet, due on the expiry date) of completions whose recertification window opens by the day; notifies employee and manager once.';

create or replace function app.lapse_expired_completions(p_org_id uuid, p_day date)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_tz text := app.org_timezone(p_org_id);
    v_count integer;
begin
    with lapsed as (
        update app.training_assignments a
        set is_required = false, not_required_reason = 'lapsed',
            required_until = pg_catalog.timezone(v_tz,
                (app.local_date(a.org_id, a.completion_date) + m.validity_days)::timestamp)
        from app.training_modules m
        where m.org_id = a.org_id and m.id = a.module_id and m.validity_days is not null
          and a.org_id = p_org_id and a.is_required and a.status = 'completed'
          and app.local_date(a.org_id, a.completion_date) + m.validity_days <= p_day
        returning a.org_id, a.employee_id, a.module_id
    )
    select pg_catalog.count(*) into v_count from lapsed;

    -- The next cycle counts now (the latest one, if several were ever created).
    update app.training_assignments a
    set is_required = true, not_required_reason = null, required_until = null
    from (select distinct on (b.org_id, b.employee_id, b.module_id) b.org_id, b.id
          from app.training_assignments b
          where b.org_id = p_org_id and b.not_required_reason = 'next_cycle'
            and not exists (select from app.training_assignments c
                            where c.org_id = b.org_id and c.employee_id = b.employee_id
                              and c.module_id = b.module_id and c.is_required)
          order by b.org_id, b.employee_id, b.module_id, b.due_date desc) nx
    where a.org_id = nx.org_id and a.id = nx.id;
    return v_count;
end
$$;
comment on function app.lapse_expired_completions(uuid, date) is
    'Completions whose validity ran out by the day stop counting (lapsed); their next cycle counts instead.';

-- A next cycle completed before the current completion lapses counts at once; the completion it
-- renews stops counting (reason renewed). For every writer (API, sync, operator).
create or replace function app.assignment_renewed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
    update app.training_assignments a
    set is_required = false, not_required_reason = 'renewed', required_until = new.completion_date
    where a.org_id = new.org_id and a.employee_id = new.employee_id and a.module_id = new.module_id
      and a.id <> new.id and a.is_required and a.status = 'completed';
    new.is_required := true;
    new.not_required_reason := null;
    new.required_until := null;
    return new;
end
$$;
comment on function app.assignment_renewed() is
    'BEFORE UPDATE trigger of training_assignments: a completed next cycle renews the certification.';

-- Named after the status machine's trigger (assignment_rules_on_update) so that it runs after it,
-- when the status the rules derived is known.
create or replace trigger assignments_renewed_on_update
    before update on app.training_assignments
    for each row
    when (new.status = 'completed' and old.status <> 'completed'
          and new.not_required_reason = 'next_cycle')
    execute function app.assignment_renewed();
