-- Compliance figures, part 3: api.compliance_rate (DESIGN §5 "Compliance rate", §7).

-- One employee's own figure: their required assignments, exempted taken out of the denominator
-- (the same as employee_compliance_stats.training_rate). Used by compliance_rate for an
-- employee and by employee_detail.
create or replace function app.employee_training_counts(p_org_id uuid, p_employee_id uuid)
returns table (required bigint, completed bigint, in_progress bigint, not_started bigint,
               overdue bigint, exempted bigint, compliance_rate numeric)
language sql stable
set search_path = ''
as $$
    select pg_catalog.count(*),
           pg_catalog.count(*) filter (where a.status = 'completed'),
           pg_catalog.count(*) filter (where a.status = 'in_progress'),
           pg_catalog.count(*) filter (where a.status = 'not_started'),
           pg_catalog.count(*) filter (where a.status = 'overdue'),
           pg_catalog.count(*) filter (where a.status = 'exempted'),
           app.compliance_rate_of(pg_catalog.count(*) filter (where a.status = 'completed'),
                                  pg_catalog.count(*),
                                  pg_catalog.count(*) filter (where a.status = 'exempted'))
    from app.training_assignments a
    where a.org_id = p_org_id and a.employee_id = p_employee_id and a.is_required
$$;
comment on function app.employee_training_counts(uuid, uuid) is
    'One employee''s required assignments by status and their own compliance rate (RLS applies).';
grant execute on function app.employee_training_counts(uuid, uuid) to authenticated;

-- A department or location filter names one of the caller's organisation, or the figure would
-- be an answer about nothing (rate 100.00, target met): PT404 otherwise. Used by every figure
-- that takes these filters (api.compliance_rate, api.compliance_report).
create or replace function app.check_department_location(p_org_id uuid, p_department uuid, p_location uuid)
returns void
language plpgsql stable
set search_path = ''
as $$
begin
    if p_department is not null
       and not exists (select from app.departments d where d.org_id = p_org_id and d.id = p_department) then
        raise exception 'department % not found', p_department
            using errcode = 'PT404',
                  detail = pg_catalog.format('No department with id %s in your organisation.', p_department),
                  hint = 'List departments at /departments.';
    end if;
    if p_location is not null
       and not exists (select from app.locations l where l.org_id = p_org_id and l.id = p_location) then
        raise exception 'location % not found', p_location
            using errcode = 'PT404',
                  detail = pg_catalog.format('No location with id %s in your organisation.', p_location),
                  hint = 'List locations at /locations.';
    end if;
end
$$;
comment on function app.check_department_location(uuid, uuid, uuid) is
    'Raises PT404 when the department or location filter is not one of the organisation''s.';
grant execute on function app.check_department_location(uuid, uuid, uuid) to authenticated;

create or replace function api.compliance_rate(department uuid default null, location uuid default null)
returns numeric
language plpgsql stable
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_department uuid := compliance_rate.department;
    v_location uuid := compliance_rate.location;
    v_rate numeric;
begin
    perform app.check_department_location(v_org, v_department, v_location);
    if app.current_app_role() = 'employee' then
        -- An employee's figure is their own (DESIGN §6: own only).
        select c.compliance_rate into v_rate
        from app.employees e
        cross join lateral app.employee_training_counts(e.org_id, e.id) c
        where e.org_id = v_org and e.id = app.current_employee_id()
          and (v_department is null or e.department_id = v_department)
          and (v_location is null or e.location_id = v_location);
        return coalesce(v_rate, 100.00);
    end if;
    select app.compliance_rate_of(pg_catalog.sum(c.completed_count)::bigint,
                                  pg_catalog.sum(c.required_count)::bigint,
                                  pg_catalog.sum(c.exempted_count)::bigint)
    into v_rate
    from app.compliance_counters c
    where c.org_id = v_org
      and (v_department is null or c.department_id = v_department)
      and (v_location is null or c.location_id = v_location);
    return v_rate;
end
$$;
comment on function api.compliance_rate(uuid, uuid) is
$$Compliance rate (%) of the organisation, or of one department and/or location.

completed ÷ (required - exempted) assignments of active employees × 100, rounded to 2 decimals;
100.00 when there are none. Exempted assignments are not counted. An employee gets their own
rate (their required assignments). 404 when the department or location is not in your
organisation. Example: /rpc/compliance_rate?department=<id>.$$;
grant execute on function api.compliance_rate(uuid, uuid) to authenticated;
