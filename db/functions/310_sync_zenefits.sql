-- Zenefits roster -> departments, locations, employees (DESIGN §10, docs/sync.md).
--
-- sync.apply_zenefits_people(run_id) merges what the worker staged for the run (kinds
-- zenefits_department, zenefits_location, zenefits_employment, zenefits_person) in set-based
-- statements. It writes only rows that change (`is distinct from`), so the same roster twice writes
-- nothing the second time, and it holds no rule of the engine: a new active employee, a status
-- change to inactive/terminated etc. set off the engine's triggers on app.employees.
--
-- Matching: departments and locations by Zenefits id, else by name (case-insensitive); people by
-- Zenefits id, else by e-mail (an employee not yet linked to Zenefits). The hire date is the
-- person's active employment's hire_date, else the most recent one.
-- Status: active -> active; leave_of_absence, requested, setup -> inactive; terminated, deleted ->
-- terminated; a missing or unknown status changes nothing (a new person with one is not imported,
-- with a warning). Only a COMPLETE fetch (fetch.zenefits.complete) changes the status of people
-- already known, and only a complete fetch terminates the people it no longer lists; an
-- incomplete fetch still creates and updates the people it did get.
-- A record that cannot be applied (no name, no or a malformed e-mail, an e-mail that belongs to
-- someone else, a constraint or rule of the engine refusing it) is counted failed with an error
-- naming the person, and marked sync_status 'error' when the employee exists; the rest is applied.
-- Duplicate people are never merged silently (exception case duplicate_person, 182_sync_exceptions.sql):
-- of records sharing an e-mail, the one linked to an employee (else the lowest id) is the person and
-- the others are not imported (a warning, not a failure); so is, from a complete roster, a new
-- record with the e-mail of an employee whose own record the roster no longer lists; records with
-- the same name and date of birth are both imported. A case each, closed when a complete roster no
-- longer holds the two alike.

create or replace function sync.apply_zenefits_people(p_run_id uuid) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set work_mem = '64MB'
as $$
declare
    v_run app.sync_runs := sync.open_run_of_part(p_run_id, 'zenefits');
    v_org uuid := v_run.org_id;
    v_complete boolean := coalesce((v_run.details #>> '{fetch,zenefits,complete}')::boolean, false);
    v_now timestamptz := pg_catalog.now();
    v_today date := app.org_today(v_org);
    v_processed integer;
    v_created integer := 0;
    v_updated integer := 0;
    v_failed integer := 0;
    v_terminated integer := 0;
    v_dept_created integer := 0;
    v_dept_updated integer := 0;
    v_loc_created integer := 0;
    v_loc_updated integer := 0;
    v_marked integer := 0;
    v_rows integer;
    v_fallback boolean := false;
    v_row record;
    v_warnings jsonb := '[]';
    v_errors jsonb := '[]';
    v_counts jsonb;
    v_cases integer := 0;
begin
    -- Fresh statistics of the staging table (it was just filled): the plans below depend on them.
    analyze sync.staged_records;

    -- Departments and locations ------------------------------------------------------------
    if pg_catalog.to_regclass('pg_temp.sync_z_units') is not null then drop table pg_temp.sync_z_units; end if;
    create temp table sync_z_units on commit drop as
    select distinct on (u.kind, u.zid) u.kind, u.zid, u.name, u.address, null::uuid as unit_id,
           null::text as problem
    from (
        select case s.kind when 'zenefits_department' then 'department' else 'location' end as kind,
               s.payload ->> 'id' as zid,
               nullif(pg_catalog.btrim(s.payload ->> 'name'), '') as name,
               nullif(pg_catalog.concat_ws(', ',
                   nullif(pg_catalog.btrim(s.payload ->> 'street1'), ''),
                   nullif(pg_catalog.btrim(s.payload ->> 'street2'), ''),
                   nullif(pg_catalog.btrim(s.payload ->> 'city'), ''),
                   nullif(pg_catalog.concat_ws(' ', nullif(pg_catalog.btrim(s.payload ->> 'state'), ''),
                                               nullif(pg_catalog.btrim(s.payload ->> 'zip'), '')), '')),
                   '') as address,
               s.page, s.item
        from sync.staged_records s
        where s.org_id = v_org and s.run_id = p_run_id
          and s.kind in ('zenefits_department', 'zenefits_location')
    ) u
    where u.zid is not null
    order by u.kind, u.zid, u.page desc, u.item desc;
    analyze sync_z_units;

    update sync_z_units u set problem = pg_catalog.format('%s %s has no name', u.kind, u.zid)
    where u.name is null;
    update sync_z_units u set unit_id = d.id
    from app.departments d
    where u.kind = 'department' and d.org_id = v_org and d.zenefits_id = u.zid;
    update sync_z_units u set unit_id = l.id
    from app.locations l
    where u.kind = 'location' and l.org_id = v_org and l.zenefits_id = u.zid;
    -- By name: a unit not yet linked to Zenefits; the first Zenefits id of a name wins it.
    update sync_z_units u set unit_id = m.id
    from (
        select distinct on (d.id) d.id, x.zid
        from app.departments d
        join sync_z_units x on x.kind = 'department' and x.unit_id is null and x.problem is null
                            and pg_catalog.lower(x.name) = pg_catalog.lower(d.name)
        where d.org_id = v_org and d.zenefits_id is null
        order by d.id, x.zid
    ) m
    where u.kind = 'department' and u.zid = m.zid;
    update sync_z_units u set unit_id = m.id
    from (
        select distinct on (l.id) l.id, x.zid
        from app.locations l
        join sync_z_units x on x.kind = 'location' and x.unit_id is null and x.problem is null
                            and pg_catalog.lower(x.name) = pg_catalog.lower(l.name)
        where l.org_id = v_org and l.zenefits_id is null
        order by l.id, x.zid
    ) m
    where u.kind = 'location' and u.zid = m.zid;
    -- A name another unit already has (in the organisation, or earlier in this roster).
    update sync_z_units u
    set problem = pg_catalog.format('%s %s is named %L like another %s', u.kind, u.zid, u.name, u.kind)
    where u.problem is null and (
        (u.kind = 'department' and exists (
            select from app.departments d
            where d.org_id = v_org and d.name = u.name and d.id is distinct from u.unit_id))
        or (u.kind = 'location' and exists (
            select from app.locations l
            where l.org_id = v_org and l.name = u.name and l.id is distinct from u.unit_id))
        or exists (select from sync_z_units o
                   where o.kind = u.kind and o.name = u.name and o.zid < u.zid and o.problem is null));

    if exists (select from sync_z_units u join app.departments d on d.org_id = v_org and d.id = u.unit_id
               where u.kind = 'department' and u.problem is null
                 and (d.name, d.zenefits_id) is distinct from (u.name, u.zid)) then
        update app.departments d set name = u.name, zenefits_id = u.zid
        from sync_z_units u
        where u.kind = 'department' and u.problem is null and d.org_id = v_org and d.id = u.unit_id
          and (d.name, d.zenefits_id) is distinct from (u.name, u.zid);
        get diagnostics v_dept_updated = row_count;
    end if;
    if exists (select from sync_z_units u where u.kind = 'department' and u.problem is null and u.unit_id is null) then
        with ins as (
            insert into app.departments (org_id, name, zenefits_id)
            select v_org, u.name, u.zid from sync_z_units u
            where u.kind = 'department' and u.problem is null and u.unit_id is null
            returning id, zenefits_id
        )
        update sync_z_units u set unit_id = ins.id from ins where u.kind = 'department' and u.zid = ins.zenefits_id;
        get diagnostics v_dept_created = row_count;
    end if;

    if exists (select from sync_z_units u join app.locations l on l.org_id = v_org and l.id = u.unit_id
               where u.kind = 'location' and u.problem is null
                 and (l.name, l.zenefits_id, l.address) is distinct from (u.name, u.zid, coalesce(u.address, l.address))) then
        update app.locations l set name = u.name, zenefits_id = u.zid,
                                   address = coalesce(u.address, l.address)
        from sync_z_units u
        where u.kind = 'location' and u.problem is null and l.org_id = v_org and l.id = u.unit_id
          and (l.name, l.zenefits_id, l.address) is distinct from (u.name, u.zid, coalesce(u.address, l.address));
        get diagnostics v_loc_updated = row_count;
    end if;
    if exists (select from sync_z_units u where u.kind = 'location' and u.problem is null and u.unit_id is null) then
        with ins as (
            insert into app.locations (org_id, name, zenefits_id, address)
            select v_org, u.name, u.zid, u.address from sync_z_units u
            where u.kind = 'location' and u.problem is null and u.unit_id is null
            returning id, zenefits_id
        )
        update sync_z_units u set unit_id = ins.id from ins where u.kind = 'location' and u.zid = ins.zenefits_id;
        get diagnostics v_loc_created = row_count;
    end if;

    v_warnings := v_warnings || coalesce((
        select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
                   'record', u.kind || ' ' || u.zid, 'message', u.problem || '; it was not imported')
               order by u.kind, u.zid)
        from sync_z_units u where u.problem is not null), '[]');

    -- People ------------------------------------------------------------------------------
    -- One pass builds everything that can be resolved at once (few later statements touch more
    -- than the rows they fix: rewriting every row of a temp table is what costs time here).
    if pg_catalog.to_regclass('pg_temp.sync_z_src') is not null then drop table pg_temp.sync_z_src; end if;
    create temp table sync_z_src on commit drop as
        select distinct on (x.zid) x.*
        from (
            select s.payload ->> 'id' as zid,
                   nullif(pg_catalog.btrim(s.payload ->> 'work_email'), '') as work_email,
                   nullif(pg_catalog.btrim(s.payload ->> 'personal_email'), '') as personal_email,
                   nullif(pg_catalog.btrim(s.payload ->> 'first_name'), '') as first_name,
                   nullif(pg_catalog.btrim(s.payload ->> 'last_name'), '') as last_name,
                   nullif(pg_catalog.btrim(s.payload ->> 'title'), '') as title,
                   sync.to_date(s.payload ->> 'date_of_birth') as birth_date,
                   s.payload ->> 'status' as zstatus,
                   pg_catalog.substring(s.payload #>> '{department,url}', '([^/]+)/?$') as dept_zid,
                   pg_catalog.substring(s.payload #>> '{location,url}', '([^/]+)/?$') as loc_zid,
                   pg_catalog.substring(s.payload #>> '{manager,url}', '([^/]+)/?$') as mgr_zid,
                   s.payload as raw, s.page, s.item
            from sync.staged_records s
            where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'zenefits_person'
        ) x
        where x.zid is not null
        order by x.zid, x.page desc, x.item desc;
    analyze sync_z_src;
    -- Hire dates from the employments: the active one, else the most recent.
    if pg_catalog.to_regclass('pg_temp.sync_z_hire') is not null then drop table pg_temp.sync_z_hire; end if;
    create temp table sync_z_hire on commit drop as
        select distinct on (e.person_zid) e.person_zid, e.hire_date
        from (
            select pg_catalog.substring(s.payload #>> '{person,url}', '([^/]+)/?$') as person_zid,
                   sync.to_date(s.payload ->> 'hire_date') as hire_date,
                   coalesce(s.payload ->> 'is_active', '') = 'true'
                       or (s.payload ->> 'termination_date') is null as active
            from sync.staged_records s
            where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'zenefits_employment'
        ) e
        where e.person_zid is not null and e.hire_date is not null
        order by e.person_zid, e.active desc, e.hire_date desc;
    analyze sync_z_hire;
    if pg_catalog.to_regclass('pg_temp.sync_z_people') is not null then drop table pg_temp.sync_z_people; end if;
    create temp table sync_z_people on commit drop as
    select src.zid, src.first_name, src.last_name, src.title, src.zstatus, src.dept_zid,
           src.loc_zid, src.mgr_zid, src.raw,
           coalesce(src.work_email, src.personal_email) as email,
           case pg_catalog.lower(src.zstatus)
               when 'active' then 'active'
               when 'leave_of_absence' then 'inactive'
               when 'requested' then 'inactive'
               when 'setup' then 'inactive'
               when 'terminated' then 'terminated'
               when 'deleted' then 'terminated'
           end::app.employee_status as status,
           hire.hire_date, d.unit_id as dept_id, l.unit_id as loc_id,
           e.id as employee_id,
           false as is_new,
           case
               when src.first_name is null then 'has no first name'
               when src.last_name is null then 'has no last name'
               when coalesce(src.work_email, src.personal_email) is null then 'has no work e-mail'
               when coalesce(src.work_email, src.personal_email) !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'
                   then pg_catalog.format('has a malformed e-mail %L', coalesce(src.work_email, src.personal_email))
           end as problem,
           null::text as skip, false as inserted,
           src.birth_date, null::text as dup_of, null::text as dup_rule
    from sync_z_src src
    left join sync_z_hire hire on hire.person_zid = src.zid
    left join sync_z_units d on d.kind = 'department' and d.zid = src.dept_zid
    left join sync_z_units l on l.kind = 'location' and l.zid = src.loc_zid
    left join app.employees e on e.org_id = v_org and e.zenefits_id = src.zid;
    get diagnostics v_processed = row_count;
    create unique index on sync_z_people (zid);
    analyze sync_z_people;

    -- Two records of the roster that look like one person are never merged silently: of records
    -- sharing an e-mail, the one already linked to an employee (else the lowest id) is the
    -- person; the others are not imported and each raises a duplicate_person case.
    update sync_z_people p
    set problem = pg_catalog.format('shares e-mail %s with person %s', p.email, d.first_zid),
        dup_of = d.first_zid, dup_rule = 'same_email'
    from (
        select x.zid, pg_catalog.first_value(x.zid) over (
                   partition by pg_catalog.lower(x.email)
                   order by x.employee_id is null, x.zid) as first_zid
        from sync_z_people x
        where x.problem is null
          and pg_catalog.lower(x.email) in (select pg_catalog.lower(y.email) from sync_z_people y
                                            where y.problem is null
                                            group by pg_catalog.lower(y.email) having pg_catalog.count(*) > 1)
    ) d
    where p.zid = d.zid and d.zid <> d.first_zid;

    -- Matching by e-mail: an employee not linked to Zenefits yet.
    update sync_z_people p set employee_id = m.id
    from (
        select distinct on (e.id) e.id, x.zid
        from app.employees e
        join sync_z_people x on x.employee_id is null and x.problem is null
                             and pg_catalog.lower(x.email) = pg_catalog.lower(e.email)
        where e.org_id = v_org and e.zenefits_id is null
        order by e.id, x.zid
    ) m
    where p.zid = m.zid;
    update sync_z_people p
    set problem = pg_catalog.format('has e-mail %s, which belongs to employee %s (Zenefits id %s)',
                                    p.email, e.full_name, coalesce(e.zenefits_id, 'none')),
        -- the e-mail's employee came from another Zenefits record the roster no longer lists
        -- under another e-mail: two records of one person (a rehire under a new id, typically)
        -- (known only from a complete roster: an incomplete one may hold that record unfetched)
        dup_of = case when v_complete and e.zenefits_id is not null and e.zenefits_id <> p.zid
                           and not exists (select from sync_z_people o where o.zid = e.zenefits_id)
                      then e.zenefits_id end,
        dup_rule = case when v_complete and e.zenefits_id is not null and e.zenefits_id <> p.zid
                             and not exists (select from sync_z_people o where o.zid = e.zenefits_id)
                        then 'same_email' end
    from app.employees e
    where p.problem is null and e.org_id = v_org and pg_catalog.lower(e.email) = pg_catalog.lower(p.email)
      and e.id is distinct from p.employee_id;

    -- Same name and date of birth under different ids and e-mails: both are imported (they may be
    -- two people), and a case asks a person to decide.
    update sync_z_people p
    set dup_of = d.first_zid, dup_rule = 'same_name_and_date_of_birth'
    from (
        select x.zid, pg_catalog.first_value(x.zid) over (
                   partition by pg_catalog.lower(x.first_name), pg_catalog.lower(x.last_name), x.birth_date
                   order by x.employee_id is null, x.zid) as first_zid
        from sync_z_people x
        where x.problem is null and x.birth_date is not null
          and (pg_catalog.lower(x.first_name), pg_catalog.lower(x.last_name), x.birth_date) in (
              select pg_catalog.lower(y.first_name), pg_catalog.lower(y.last_name), y.birth_date
              from sync_z_people y
              where y.problem is null and y.birth_date is not null
              group by 1, 2, 3 having pg_catalog.count(*) > 1)
    ) d
    where p.zid = d.zid and d.zid <> d.first_zid;

    -- New people: only with a known status; ids taken now so that managers among them resolve.
    update sync_z_people p
    set skip = case when p.status is null
                    then pg_catalog.format('has status %s, which the sync does not import',
                                           coalesce(pg_catalog.quote_literal(p.zstatus), 'null')) end,
        is_new = p.status is not null,
        employee_id = case when p.status is not null then pg_catalog.gen_random_uuid() end
    where p.employee_id is null and p.problem is null;

    -- What each person's employee row must hold (employee_id is set for every row that exists,
    -- or will, after the merge).
    if pg_catalog.to_regclass('pg_temp.sync_z_target') is not null then drop table pg_temp.sync_z_target; end if;
    create temp table sync_z_target on commit drop as
    select p.zid, p.employee_id, p.is_new, p.email, p.first_name, p.last_name, p.title, p.raw,
           p.mgr_zid, coalesce(m.employee_id, em.id) as manager_id,
           case when p.dept_zid is null then null else coalesce(p.dept_id, e.department_id) end as n_department_id,
           case when p.loc_zid is null then null else coalesce(p.loc_id, e.location_id) end as n_location_id,
           case when p.mgr_zid is null or p.mgr_zid = p.zid then null
                when coalesce(m.employee_id, em.id) is not null then coalesce(m.employee_id, em.id)
                when v_complete or p.is_new then null
                else e.manager_id end as n_manager_id,
           case when p.is_new then p.status
                when v_complete and p.status is not null then p.status
                else e.status end as n_status,
           coalesce(p.hire_date, e.start_date, v_today) as n_start_date
    from sync_z_people p
    left join app.employees e on not p.is_new and e.org_id = v_org and e.id = p.employee_id
    left join sync_z_people m
      on m.zid = p.mgr_zid and m.zid <> p.zid and m.employee_id is not null
     and (m.problem is null or not m.is_new)
    left join app.employees em
      on m.zid is null and p.mgr_zid is not null and p.mgr_zid <> p.zid
     and em.org_id = v_org and em.zenefits_id = p.mgr_zid
    where p.problem is null and p.employee_id is not null;
    create unique index on sync_z_target (zid);
    analyze sync_z_target;

    v_warnings := v_warnings || coalesce((
        select pg_catalog.jsonb_agg(w.msg order by w.zid, w.n)
        from (
            select p.zid, 1 as n, pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
                       'record', 'person ' || p.zid,
                       'message', pg_catalog.format('person %s (%s %s) %s; not imported', p.zid,
                                                    p.first_name, p.last_name, p.skip)) as msg
            from sync_z_people p where p.skip is not null
            union all
            select p.zid, 2, pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
                       'record', 'person ' || p.zid,
                       'message', pg_catalog.format('person %s (%s %s) has no hire date in Zenefits; start date set to %s',
                                                    p.zid, p.first_name, p.last_name, v_today))
            from sync_z_people p where p.is_new and p.problem is null and p.hire_date is null
            union all
            select p.zid, 3, pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
                       'record', 'person ' || p.zid,
                       'message', pg_catalog.format('manager %s of person %s (%s %s) is not an employee',
                                                    p.mgr_zid, p.zid, p.first_name, p.last_name))
            from sync_z_target p
            where p.mgr_zid is not null and p.mgr_zid <> p.zid and p.manager_id is null
              and (v_complete or p.is_new)
            union all
            select p.zid, 4, pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
                       'record', 'person ' || p.zid,
                       'message', pg_catalog.format('%s %s of person %s (%s %s) is unknown; it was left as it was',
                                                    k.kind, k.zid, p.zid, p.first_name, p.last_name))
            from sync_z_people p
            cross join lateral (values ('department', p.dept_zid, p.dept_id),
                                       ('location', p.loc_zid, p.loc_id)) k(kind, zid, unit_id)
            where p.problem is null and p.employee_id is not null and k.zid is not null and k.unit_id is null
            union all
            select p.zid, 5, pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
                       'record', 'person ' || p.zid,
                       'message', pg_catalog.format('person %s (%s %s) reports status %s; the fetch was incomplete, so the status was left as it was',
                                                    p.zid, p.first_name, p.last_name, p.status))
            from sync_z_people p
            join app.employees e on e.org_id = v_org and e.id = p.employee_id
            where not v_complete and not p.is_new and p.problem is null and p.status is not null
              and p.status <> e.status
        ) w), '[]');

    -- Insert the new people (one statement; row by row only when it fails, to name the culprit).
    -- Every write below runs only when it has rows to write: a statement that writes nothing
    -- still fires the engine's and the audit trail's statement triggers.
    begin
        if not exists (select from sync_z_target t where t.is_new) then
            raise exception using errcode = 'P0000', message = 'nothing to insert';
        end if;
        insert into app.employees (org_id, id, zenefits_id, email, first_name, last_name,
                                   department_id, location_id, job_title, start_date, status,
                                   manager_id, source_record, last_synced_at, sync_status, sync_errors)
        select v_org, t.employee_id, t.zid, t.email, t.first_name, t.last_name, t.n_department_id,
               t.n_location_id, t.title, t.n_start_date, t.n_status, t.n_manager_id, t.raw, v_now,
               'synced', null
        from sync_z_target t
        where t.is_new;
        get diagnostics v_created = row_count;
    exception
        when sqlstate 'P0000' then null;
        when others then v_fallback := true;
    end;
    if v_fallback then
        -- Without managers first (a manager may be a new person further down), then managers.
        for v_row in select * from sync_z_target t where t.is_new order by t.zid loop
            begin
                insert into app.employees (org_id, id, zenefits_id, email, first_name, last_name,
                                           department_id, location_id, job_title, start_date, status,
                                           manager_id, source_record, last_synced_at, sync_status,
                                           sync_errors)
                values (v_org, v_row.employee_id, v_row.zid, v_row.email, v_row.first_name,
                        v_row.last_name, v_row.n_department_id, v_row.n_location_id, v_row.title,
                        v_row.n_start_date, v_row.n_status,
                        (select e.id from app.employees e
                         where e.org_id = v_org and e.id = v_row.n_manager_id),
                        v_row.raw, v_now, 'synced', null);
                update sync_z_people p set inserted = true where p.zid = v_row.zid;
                v_created := v_created + 1;
            exception when others then
                update sync_z_people p set problem = 'could not be created: ' || sqlerrm where p.zid = v_row.zid;
            end;
        end loop;
        for v_row in
            select t.* from sync_z_target t
            join sync_z_people p on p.zid = t.zid and p.inserted
            join app.employees e on e.org_id = v_org and e.id = t.employee_id
            where e.manager_id is distinct from t.n_manager_id
        loop
            begin
                update app.employees e set manager_id = v_row.n_manager_id
                where e.org_id = v_org and e.id = v_row.employee_id;
            exception when others then
                v_warnings := v_warnings || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                    'part', 'zenefits', 'stage', 'merge', 'record', 'person ' || v_row.zid,
                    'message', pg_catalog.format('manager of person %s could not be set: %s', v_row.zid, sqlerrm)));
            end;
        end loop;
    end if;

    -- Update the people already known, where something changed.
    v_fallback := false;
    if pg_catalog.to_regclass('pg_temp.sync_z_changed') is not null then drop table pg_temp.sync_z_changed; end if;
    create temp table sync_z_changed on commit drop as
    select p.*
    from sync_z_target p
    join app.employees e on e.org_id = v_org and e.id = p.employee_id
    where not p.is_new
      and (e.zenefits_id, e.email, e.first_name, e.last_name, e.department_id, e.location_id,
           e.job_title, e.start_date, e.status, e.manager_id, e.source_record, e.sync_status,
           e.sync_errors)
          is distinct from
          (p.zid, p.email, p.first_name, p.last_name, p.n_department_id, p.n_location_id,
           p.title, p.n_start_date, p.n_status, p.n_manager_id, p.raw, 'synced'::app.record_sync_status,
           null::jsonb);
    get diagnostics v_rows = row_count;
    if v_rows > 0 then
        begin
            update app.employees e
            set zenefits_id = p.zid, email = p.email, first_name = p.first_name, last_name = p.last_name,
                department_id = p.n_department_id, location_id = p.n_location_id, job_title = p.title,
                start_date = p.n_start_date, status = p.n_status, manager_id = p.n_manager_id,
                source_record = p.raw, last_synced_at = v_now, sync_status = 'synced', sync_errors = null
            from sync_z_changed p
            where e.org_id = v_org and e.id = p.employee_id;
            get diagnostics v_updated = row_count;
        exception when others then
            v_fallback := true;
        end;
    end if;
    if v_fallback then
        v_updated := 0;
        for v_row in select p.* from sync_z_changed p order by p.zid loop
            begin
                update app.employees e
                set zenefits_id = v_row.zid, email = v_row.email, first_name = v_row.first_name,
                    last_name = v_row.last_name, department_id = v_row.n_department_id,
                    location_id = v_row.n_location_id, job_title = v_row.title,
                    start_date = v_row.n_start_date, status = v_row.n_status,
                    manager_id = v_row.n_manager_id, source_record = v_row.raw,
                    last_synced_at = v_now, sync_status = 'synced', sync_errors = null
                where e.org_id = v_org and e.id = v_row.employee_id;
                v_updated := v_updated + 1;
            exception when others then
                update sync_z_people p set problem = 'could not be updated: ' || sqlerrm where p.zid = v_row.zid;
            end;
        end loop;
    end if;

    -- Records that failed: counted, named in the errors, and marked on the employee if it exists.
    select pg_catalog.count(*)::integer,
           coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
               'record', 'person ' || p.zid,
               'message', pg_catalog.format('person %s (%s %s) %s', p.zid,
                                            coalesce(p.first_name, '?'), coalesce(p.last_name, '?'), p.problem))
               order by p.zid), '[]')
    into v_failed, v_errors
    from sync_z_people p where p.problem is not null and p.dup_rule is distinct from 'same_email';
    -- (a duplicate record is no failure: it is not imported, named in a warning and a case)
    v_warnings := v_warnings || coalesce((
        select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('part', 'zenefits', 'stage', 'merge',
                   'record', 'person ' || p.zid,
                   'message', pg_catalog.format('person %s (%s %s) %s; it looks like the same person, so it was not imported (see the exception report)',
                                                p.zid, coalesce(p.first_name, '?'), coalesce(p.last_name, '?'), p.problem))
               order by p.zid)
        from sync_z_people p where p.problem is not null and p.dup_rule = 'same_email'), '[]');
    if exists (select from sync_z_people p
               join app.employees e on e.org_id = v_org and e.id = p.employee_id
               where p.problem is not null and p.dup_rule is distinct from 'same_email' and not p.is_new
                 and (e.sync_status, e.sync_errors) is distinct from
                     ('error'::app.record_sync_status, pg_catalog.jsonb_build_array(p.problem))) then
        update app.employees e
        set sync_status = 'error', sync_errors = pg_catalog.jsonb_build_array(p.problem), last_synced_at = v_now
        from sync_z_people p
        where p.problem is not null and p.dup_rule is distinct from 'same_email' and p.employee_id is not null and not p.is_new
          and e.org_id = v_org and e.id = p.employee_id
          and (e.sync_status, e.sync_errors) is distinct from
              ('error'::app.record_sync_status, pg_catalog.jsonb_build_array(p.problem));
        get diagnostics v_marked = row_count;
    end if;

    -- People no longer in a complete roster are terminated (never on an incomplete fetch, and
    -- never when the complete roster came back empty: that is a misconfiguration, not a layoff).
    if v_complete and v_processed = 0 then
        if exists (select from app.employees e
                   where e.org_id = v_org and e.zenefits_id is not null and e.status <> 'terminated') then
            v_errors := v_errors || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'part', 'zenefits', 'stage', 'merge',
                'message', 'Zenefits returned an empty roster; nobody was terminated (check ZENEFITS_COMPANY_ID and the token''s scopes)'));
        end if;
    elsif v_complete and exists (
            select from app.employees e
            where e.org_id = v_org and e.zenefits_id is not null and e.status <> 'terminated'
              and not exists (select from sync_z_people p where p.zid = e.zenefits_id)) then
        begin
            update app.employees e
            set status = 'terminated', last_synced_at = v_now, sync_status = 'synced', sync_errors = null
            where e.org_id = v_org and e.zenefits_id is not null and e.status <> 'terminated'
              and not exists (select from sync_z_people p where p.zid = e.zenefits_id);
            get diagnostics v_terminated = row_count;
        exception when others then
            v_errors := v_errors || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                'part', 'zenefits', 'stage', 'merge',
                'message', 'terminating the people missing from the roster failed: ' || sqlerrm));
        end;
    end if;

    -- Duplicate people: a case each (idempotent per pair of ids; a person's decision stands).
    select pg_catalog.count(app.raise_sync_exception(v_org, 'duplicate_person',
               app.duplicate_person_subject(p.dup_of, p.zid),
               case p.dup_rule when 'same_email' then 'zenefits_duplicate_email'
                               else 'zenefits_duplicate_name_and_date_of_birth' end,
               case p.dup_rule
                   when 'same_email' then pg_catalog.format(
                       'Zenefits people %s (%s %s) and %s (%s %s) have the same e-mail %s: they look like one person. Person %s is the employee; person %s was not imported.',
                       p.dup_of, coalesce(f.first_name, fe.first_name, '?'), coalesce(f.last_name, fe.last_name, '?'),
                       p.zid, coalesce(p.first_name, '?'), coalesce(p.last_name, '?'), p.email, p.dup_of, p.zid)
                   else pg_catalog.format(
                       'Zenefits people %s (%s %s, %s) and %s (%s %s, %s) have the same name and date of birth %s: they look like one person. Both were imported.',
                       p.dup_of, f.first_name, f.last_name, f.email, p.zid, p.first_name, p.last_name, p.email,
                       pg_catalog.to_char(p.birth_date, 'YYYY-MM-DD'))
               end,
               case p.dup_rule
                   when 'same_email' then pg_catalog.format(
                       'If they are one person: remove the duplicate record in Zenefits, or, if %s is the record to keep, link it to the employee (set their zenefits_id to %s, PATCH /employees); the next sync then closes this case. If they are two people, give each their own e-mail in Zenefits. If the records must stay as they are, resolve the case with a note: it is not raised again.',
                       p.zid, p.zid)
                   else 'If they are one person, remove the duplicate record in Zenefits (the next sync terminates its employee and closes this case). If they are two people, resolve the case with a note saying so: it is not raised again.'
               end,
               coalesce(fe.id, (select e.id from app.employees e
                                where e.org_id = v_org and e.id = f.employee_id)),
               null, null,
               pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                   'rule', p.dup_rule,
                   'zenefits_ids', pg_catalog.jsonb_build_array(p.dup_of, p.zid),
                   'kept', p.dup_of,
                   'imported', pg_catalog.jsonb_build_array(p.dup_of)
                               || case when p.dup_rule = 'same_email' then '[]'::jsonb
                                       else pg_catalog.jsonb_build_array(p.zid) end,
                   'people', pg_catalog.jsonb_build_array(
                       pg_catalog.jsonb_build_object('zenefits_id', p.dup_of,
                           'name', coalesce(f.first_name || ' ' || f.last_name, fe.full_name),
                           'email', coalesce(f.email, fe.email),
                           'date_of_birth', f.birth_date),
                       pg_catalog.jsonb_build_object('zenefits_id', p.zid,
                           'name', p.first_name || ' ' || p.last_name, 'email', p.email,
                           'date_of_birth', p.birth_date))))))::integer
    into v_cases
    from sync_z_people p
    left join sync_z_people f on f.zid = p.dup_of
    left join app.employees fe on f.zid is null and fe.org_id = v_org and fe.zenefits_id = p.dup_of
    where p.dup_of is not null;
    -- A complete roster that no longer holds a pair alike closes its case.
    if v_complete then
        perform app.close_assignment_exception(v_org, 'duplicate_person', x.subject_key,
                    'The Zenefits roster no longer holds the two records alike.')
        from app.assignment_exceptions x
        where x.org_id = v_org and x.kind = 'duplicate_person' and x.resolved_at is null
          and x.subject_key like 'zenefits:%'
          and not exists (select from sync_z_people p
                          where p.dup_of is not null
                            and app.duplicate_person_subject(p.dup_of, p.zid) = x.subject_key);
    end if;

    perform sync.add_messages(v_org, p_run_id, 'warning', v_warnings);
    perform sync.add_messages(v_org, p_run_id, 'error', v_errors);
    v_counts := pg_catalog.jsonb_build_object(
        'processed', v_processed,
        'created', v_created + v_dept_created + v_loc_created,
        'updated', v_updated + v_terminated + v_marked + v_dept_updated + v_loc_updated,
        'failed', v_failed,
        'complete_fetch', v_complete,
        'employees_created', v_created, 'employees_updated', v_updated,
        'employees_terminated', v_terminated, 'employees_marked_error', v_marked,
        'departments_created', v_dept_created, 'departments_updated', v_dept_updated,
        'locations_created', v_loc_created, 'locations_updated', v_loc_updated,
        'skipped', (select pg_catalog.count(*) from sync_z_people p
                    where p.skip is not null or (p.problem is not null and p.dup_rule = 'same_email')),
        'duplicate_people', (select pg_catalog.count(*) from sync_z_people p where p.dup_of is not null),
        'exception_cases', v_cases,
        'warnings', pg_catalog.jsonb_array_length(v_warnings));
    perform sync.record_merge(v_run, 'zenefits', v_counts);
    return v_counts;
end
$$;
comment on function sync.apply_zenefits_people(uuid) is
    'Merges the Zenefits roster staged for a run into departments, locations and employees.';
grant execute on function sync.apply_zenefits_people(uuid) to sync_worker;
