-- Google Classroom -> training modules and results (DESIGN §10, docs/sync.md).
--
-- sync.apply_classroom_coursework(run_id): course work (kind classroom_coursework) -> modules,
-- matched by (course id, course-work id), else by name (a module not linked to Classroom yet).
-- Name, link, due date (and its month), description and maxPoints follow Classroom when it has
-- them. Classroom's due date and time are UTC: the module keeps the instant (classroom_due_at)
-- and its due date is that instant's LOCAL date in the organisation's zone (a 00:00 UTC due time
-- is the previous evening in Detroit); a due date without a time stays that date; a PUBLISHED course work is an active module. When the course-work fetch was complete,
-- a module of a fetched course whose course work is gone is made inactive (nothing is deleted).
--
-- sync.apply_classroom_submissions(run_id): student submissions -> training_assignments.
-- Students are matched by Classroom user id, else by profile e-mail (and then linked: the
-- employee's classroom_user_id is set). A student matching no employee becomes ONE warning naming
-- the student and the number of submissions not recorded, and an unmatched_student case; a result
-- of a matched student for course work that is no module, an unknown_module_result case (with the
-- submission as sent); the sync that records them closes them (182_sync_exceptions.sql). A submission updates the assignment
-- holding its id, else the employee's latest assignment of the module without a submission; a
-- result (TURNED_IN or RETURNED with an assignedGrade) with no assignment creates one (due date:
-- the module's, else the turn-in date). A result writes score = assignedGrade / maxPoints * 100
-- (capped to 0..100; the grade itself when the course work has no maxPoints and it is 0..100)
-- and completion_date = the last TURNED_IN time of the submission history (else updateTime), and
-- attempts = the TURNED_IN entries of the history (a regrade of the same turn-in is no attempt;
-- the merge tells the engine it counts attempts itself: app.attempts_counted_by_writer); the
-- engine's triggers decide what that means (completed, a failed attempt, late, refused...). Results
-- never go to exempted assignments. A COMPLETED result is never undone by Classroom: a regrade
-- below the passing score, or a grade removed, records the submission and grade (the change) but
-- keeps score and completion as evidence, and raises an exception case (regrade_below_passing,
-- grade_removed; subject: the submission id) for a person to decide; a later passing grade closes
-- the case. A row is written only when the submission changed (its id,
-- raw JSON or grade), so the same data twice writes nothing.
--
-- A large merge can run in parts (p_parts, one call per part p_part = 0 .. p_parts - 1, each in
-- its own transaction, at the same time): a part takes the submissions of the students whose
-- Classroom user id hashes to it, so parts share no student, no employee and no assignment, and
-- each adds its figures to the run. Together they write what one call writes.

-- Classroom's due instant: dueDate + dueTime, both UTC (a dueTime of 00:00 may arrive as {});
-- null without a dueTime or with a malformed one.
create or replace function sync.classroom_due_at(p_due_date date, p_due_time jsonb) returns timestamptz
language sql immutable parallel safe
set search_path = ''
as $$
    select case
        when p_due_date is null or pg_catalog.jsonb_typeof(p_due_time) is distinct from 'object' then null
        when coalesce(pg_catalog.jsonb_typeof(p_due_time -> 'hours'), 'number') <> 'number'
             or coalesce(pg_catalog.jsonb_typeof(p_due_time -> 'minutes'), 'number') <> 'number'
             or coalesce(pg_catalog.jsonb_typeof(p_due_time -> 'seconds'), 'number') <> 'number'
             or coalesce((p_due_time ->> 'hours')::numeric, 0) not between 0 and 23
             or coalesce((p_due_time ->> 'minutes')::numeric, 0) not between 0 and 59
             or coalesce((p_due_time ->> 'seconds')::numeric, 0) not between 0 and 59 then null
        else pg_catalog.timezone('UTC', p_due_date
             operator(pg_catalog.+) pg_catalog.make_interval(
                 hours => coalesce((p_due_time ->> 'hours')::numeric, 0)::integer,
                 mins => coalesce((p_due_time ->> 'minutes')::numeric, 0)::integer,
                 secs => coalesce((p_due_time ->> 'seconds')::numeric, 0)::integer))
    end
$$;
comment on function sync.classroom_due_at(date, jsonb) is
    'The instant of a Classroom due date and due time (both UTC); null without a valid due time.';

create or replace function sync.apply_classroom_coursework(p_run_id uuid) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs := sync.open_run_of_part(p_run_id, 'classroom');
    v_org uuid := v_run.org_id;
    v_complete boolean := coalesce((v_run.details #>> '{fetch,classroom,coursework_complete}')::boolean,
                                   (v_run.details #>> '{fetch,classroom,complete}')::boolean, false);
    v_now timestamptz := pg_catalog.now();
    v_processed integer;
    v_created integer := 0;
    v_updated integer := 0;
    v_retired integer := 0;
    v_failed integer := 0;
    v_fallback boolean := false;
    v_row record;
    v_errors jsonb := '[]';
    v_counts jsonb;
begin
    analyze sync.staged_records;
    if pg_catalog.to_regclass('pg_temp.sync_c_coursework') is not null then drop table pg_temp.sync_c_coursework; end if;
    create temp table sync_c_coursework on commit drop as
    select distinct on (c.course_id, c.cw_id) c.*,
           coalesce(app.local_date(v_org, c.due_at), c.due_raw) as due_date
    from (
        select s.payload ->> 'courseId' as course_id,
               s.payload ->> 'id' as cw_id,
               nullif(pg_catalog.btrim(s.payload ->> 'title'), '') as title,
               nullif(pg_catalog.btrim(s.payload ->> 'description'), '') as description,
               nullif(s.payload ->> 'alternateLink', '') as url,
               coalesce(s.payload ->> 'state', 'PUBLISHED') as state,
               sync.to_date(pg_catalog.format('%s-%s-%s',
                   pg_catalog.lpad(s.payload #>> '{dueDate,year}', 4, '0'),
                   pg_catalog.lpad(s.payload #>> '{dueDate,month}', 2, '0'),
                   pg_catalog.lpad(s.payload #>> '{dueDate,day}', 2, '0'))) as due_raw,
               sync.classroom_due_at(sync.to_date(pg_catalog.format('%s-%s-%s',
                   pg_catalog.lpad(s.payload #>> '{dueDate,year}', 4, '0'),
                   pg_catalog.lpad(s.payload #>> '{dueDate,month}', 2, '0'),
                   pg_catalog.lpad(s.payload #>> '{dueDate,day}', 2, '0'))),
                   s.payload -> 'dueTime') as due_at,
               case when pg_catalog.jsonb_typeof(s.payload -> 'maxPoints') = 'number'
                         and (s.payload ->> 'maxPoints')::numeric > 0
                         and (s.payload ->> 'maxPoints')::numeric < 10000000
                    then pg_catalog.round((s.payload ->> 'maxPoints')::numeric, 2) end as max_points,
               s.page, s.item
        from sync.staged_records s
        where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'classroom_coursework'
    ) c
    where c.course_id is not null and c.cw_id is not null
    order by c.course_id, c.cw_id, c.page desc, c.item desc;
    get diagnostics v_processed = row_count;
    analyze sync_c_coursework;
    if pg_catalog.to_regclass('pg_temp.sync_c_coursework_all') is not null then drop table pg_temp.sync_c_coursework_all; end if;
    create temp table sync_c_coursework_all on commit drop as
    select c.course_id, c.cw_id from sync_c_coursework c;

    alter table sync_c_coursework add column module_id uuid, add column problem text,
                                  add column n_name text, add column n_url text, add column n_due_date date,
                                  add column n_due_at timestamptz,
                                  add column n_month_key text, add column n_description text,
                                  add column n_max_points numeric(9, 2), add column n_active boolean;
    update sync_c_coursework c set problem = 'has no title' where c.title is null;
    update sync_c_coursework c set module_id = m.id
    from app.training_modules m
    where m.org_id = v_org and m.classroom_course_id = c.course_id and m.classroom_coursework_id = c.cw_id;
    update sync_c_coursework c set module_id = x.id
    from (
        select distinct on (m.id) m.id, c2.course_id, c2.cw_id
        from app.training_modules m
        join sync_c_coursework c2 on c2.module_id is null and c2.problem is null
                                  and pg_catalog.lower(c2.title) = pg_catalog.lower(m.name)
        where m.org_id = v_org and m.classroom_coursework_id is null
        order by m.id, c2.course_id, c2.cw_id
    ) x
    where c.course_id = x.course_id and c.cw_id = x.cw_id;

    update sync_c_coursework c
    set n_name = c.title,
        n_url = coalesce(c.url, m.classroom_url),
        n_due_date = coalesce(c.due_date, m.due_date),
        n_due_at = case when c.due_date is null then m.classroom_due_at else c.due_at end,
        n_month_key = coalesce(pg_catalog.to_char(c.due_date, 'YYYY-MM'), m.month_key),
        n_description = coalesce(c.description, m.description),
        n_max_points = coalesce(c.max_points, m.classroom_max_points),
        n_active = c.state = 'PUBLISHED'
    from app.training_modules m
    where c.problem is null and m.org_id = v_org and m.id = c.module_id;
    update sync_c_coursework c
    set n_name = c.title, n_url = c.url, n_due_date = c.due_date, n_due_at = c.due_at,
        n_month_key = pg_catalog.to_char(c.due_date, 'YYYY-MM'), n_description = c.description,
        n_max_points = c.max_points, n_active = c.state = 'PUBLISHED'
    where c.problem is null and c.module_id is null;

    -- Writes run only when they have rows: an empty statement still fires statement triggers.
    delete from sync_c_coursework c
    using app.training_modules m
    where c.problem is null and m.org_id = v_org and m.id = c.module_id
      and (m.name, m.classroom_course_id, m.classroom_coursework_id, m.classroom_url, m.due_date,
           m.month_key, m.description, m.classroom_max_points, m.active, m.classroom_due_at)
          is not distinct from
          (c.n_name, c.course_id, c.cw_id, c.n_url, c.n_due_date, c.n_month_key,
           c.n_description, c.n_max_points, c.n_active, c.n_due_at);
    begin
        if exists (select from sync_c_coursework c where c.problem is null and c.module_id is null) then
            insert into app.training_modules (org_id, name, month_key, due_date, classroom_course_id,
                                              classroom_coursework_id, classroom_url, description,
                                              classroom_max_points, active, last_synced_at,
                                              classroom_due_at)
            select v_org, c.n_name, c.n_month_key, c.n_due_date, c.course_id, c.cw_id, c.n_url,
                   c.n_description, c.n_max_points, c.n_active, v_now, c.n_due_at
            from sync_c_coursework c
            where c.problem is null and c.module_id is null;
            get diagnostics v_created = row_count;
        end if;
        if exists (select from sync_c_coursework c where c.problem is null and c.module_id is not null) then
        update app.training_modules m
        set name = c.n_name, classroom_course_id = c.course_id, classroom_coursework_id = c.cw_id,
            classroom_url = c.n_url, due_date = c.n_due_date, month_key = c.n_month_key,
            description = c.n_description, classroom_max_points = c.n_max_points,
            active = c.n_active, last_synced_at = v_now, classroom_due_at = c.n_due_at
        from sync_c_coursework c
        where c.problem is null and c.module_id is not null and m.org_id = v_org and m.id = c.module_id
          and (m.name, m.classroom_course_id, m.classroom_coursework_id, m.classroom_url, m.due_date,
               m.month_key, m.description, m.classroom_max_points, m.active, m.classroom_due_at)
              is distinct from
              (c.n_name, c.course_id, c.cw_id, c.n_url, c.n_due_date, c.n_month_key,
               c.n_description, c.n_max_points, c.n_active, c.n_due_at);
        get diagnostics v_updated = row_count;
        end if;
    exception when others then
        v_fallback := true;
    end;
    if v_fallback then
        v_created := 0;
        v_updated := 0;
        for v_row in select * from sync_c_coursework c where c.problem is null order by c.course_id, c.cw_id loop
            begin
                if v_row.module_id is null then
                    insert into app.training_modules (org_id, name, month_key, due_date,
                        classroom_course_id, classroom_coursework_id, classroom_url, description,
                        classroom_max_points, active, last_synced_at, classroom_due_at)
                    values (v_org, v_row.n_name, v_row.n_month_key, v_row.n_due_date, v_row.course_id,
                            v_row.cw_id, v_row.n_url, v_row.n_description, v_row.n_max_points,
                            v_row.n_active, v_now, v_row.n_due_at);
                    v_created := v_created + 1;
                else
                    update app.training_modules m
                    set name = v_row.n_name, classroom_course_id = v_row.course_id,
                        classroom_coursework_id = v_row.cw_id, classroom_url = v_row.n_url,
                        due_date = v_row.n_due_date, month_key = v_row.n_month_key,
                        description = v_row.n_description, classroom_max_points = v_row.n_max_points,
                        active = v_row.n_active, last_synced_at = v_now, classroom_due_at = v_row.n_due_at
                    where m.org_id = v_org and m.id = v_row.module_id
                      and (m.name, m.classroom_course_id, m.classroom_coursework_id, m.classroom_url,
                           m.due_date, m.month_key, m.description, m.classroom_max_points, m.active,
                           m.classroom_due_at)
                          is distinct from
                          (v_row.n_name, v_row.course_id, v_row.cw_id, v_row.n_url, v_row.n_due_date,
                           v_row.n_month_key, v_row.n_description, v_row.n_max_points, v_row.n_active,
                           v_row.n_due_at);
                    if found then
                        v_updated := v_updated + 1;
                    end if;
                end if;
            exception when others then
                update sync_c_coursework c set problem = 'could not be recorded: ' || sqlerrm
                where c.course_id = v_row.course_id and c.cw_id = v_row.cw_id;
            end;
        end loop;
    end if;

    -- Course work gone from a completely fetched course: its module is retired (made inactive).
    if v_complete and exists (
            select from app.training_modules m
            where m.org_id = v_org and m.active and m.classroom_coursework_id is not null
              and m.classroom_course_id in (
                  select s.payload ->> 'id' from sync.staged_records s
                  where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'classroom_course')
              and not exists (select from sync_c_coursework_all c
                              where c.course_id = m.classroom_course_id and c.cw_id = m.classroom_coursework_id)) then
        update app.training_modules m
        set active = false, last_synced_at = v_now
        where m.org_id = v_org and m.active and m.classroom_coursework_id is not null
          and m.classroom_course_id in (
              select s.payload ->> 'id' from sync.staged_records s
              where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'classroom_course')
          and not exists (select from sync_c_coursework_all c
                          where c.course_id = m.classroom_course_id and c.cw_id = m.classroom_coursework_id);
        get diagnostics v_retired = row_count;
    end if;

    -- The course's teacher (its owner's profile name) is the trainer of its modules that have
    -- none: a trainer HR wrote stays (one line, at most 200 characters, as the column allows).
    if pg_catalog.to_regclass('pg_temp.sync_c_teachers') is not null then drop table pg_temp.sync_c_teachers; end if;
    create temp table sync_c_teachers on commit drop as
    select distinct on (c.course_id) c.course_id,
           pg_catalog.left(pg_catalog.btrim(pg_catalog.regexp_replace(
               p.payload #>> '{name,fullName}', E'[\\x01-\\x1f\\x7f]+', ' ', 'g')), 200) as trainer
    from (select s.payload ->> 'id' as course_id, s.payload ->> 'ownerId' as owner_id
          from sync.staged_records s
          where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'classroom_course') c
    join sync.staged_records p
      on p.org_id = v_org and p.run_id = p_run_id and p.kind = 'classroom_profile'
     and p.payload ->> 'id' = c.owner_id
    where c.course_id is not null
      and pg_catalog.btrim(coalesce(p.payload #>> '{name,fullName}', '')) <> ''
    order by c.course_id, p.page desc, p.item desc;
    if exists (select from app.training_modules m join sync_c_teachers t on t.course_id = m.classroom_course_id
               where m.org_id = v_org and m.trainer is null) then
        update app.training_modules m set trainer = t.trainer, last_synced_at = v_now
        from sync_c_teachers t
        where m.org_id = v_org and m.classroom_course_id = t.course_id and m.trainer is null;
    end if;

    select pg_catalog.count(*)::integer,
           coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('part', 'classroom', 'stage', 'merge',
               'record', 'courseWork ' || c.course_id || '/' || c.cw_id,
               'message', pg_catalog.format('course work %s of course %s (%s) %s', c.cw_id, c.course_id,
                                            coalesce(c.title, 'untitled'), c.problem))
               order by c.course_id, c.cw_id), '[]')
    into v_failed, v_errors
    from sync_c_coursework c where c.problem is not null;
    perform sync.add_messages(v_org, p_run_id, 'error', v_errors);

    v_counts := pg_catalog.jsonb_build_object(
        'processed', v_processed, 'created', v_created, 'updated', v_updated + v_retired,
        'failed', v_failed, 'retired', v_retired, 'complete_fetch', v_complete);
    perform sync.record_merge(v_run, 'classroom_coursework', v_counts);
    return v_counts;
end
$$;
comment on function sync.apply_classroom_coursework(uuid) is
    'Merges the Classroom course work staged for a run into training modules.';
grant execute on function sync.apply_classroom_coursework(uuid) to sync_worker;


-- (Before parts: one argument. Re-applied on every migrate, so the old signature goes first.)
drop function if exists sync.apply_classroom_submissions(uuid);
create or replace function sync.apply_classroom_submissions(
    p_run_id uuid, p_part integer default 0, p_parts integer default 1
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set work_mem = '128MB'
as $$
declare
    -- Parts run concurrently in their own transactions: none may hold the run row for its whole
    -- merge (each adds its figures to it at its end, sync.record_merge).
    v_run app.sync_runs := sync.open_run_of_part(p_run_id, 'classroom', p_parts > 1);
    v_org uuid := v_run.org_id;
    v_complete boolean := coalesce((v_run.details #>> '{fetch,classroom,complete}')::boolean, false);
    v_cw_complete boolean := coalesce((v_run.details #>> '{fetch,classroom,coursework_complete}')::boolean,
                                      (v_run.details #>> '{fetch,classroom,complete}')::boolean, false);
    v_now timestamptz := pg_catalog.now();
    v_processed integer;
    v_linked integer := 0;
    v_created integer := 0;
    v_updated integer := 0;
    v_failed integer := 0;
    v_cases integer := 0;
    v_rows integer;
    v_inserted integer;
    v_has_updates boolean;
    v_has_inserts boolean;
    v_chunk integer;
    v_chunks integer;
    v_row record;
    v_warnings jsonb := '[]';
    v_errors jsonb := '[]';
    v_counts jsonb;
begin
    if p_parts is null or p_parts < 1 or p_parts > 64 or p_part is null or p_part < 0 or p_part >= p_parts then
        raise exception 'part % of % is not a part of a Classroom submissions merge', p_part, p_parts
            using errcode = '22023',
                  detail = pg_catalog.format('Asked for part %s of %s.', p_part, p_parts),
                  hint = 'Parts are numbered 0 to parts - 1, with 1 to 64 parts.';
    end if;

    -- (Parts leave it to the course work merge that ran before them: two concurrent ANALYZEs of
    -- one table would queue the second part behind the first one's whole transaction.)
    if p_parts = 1 then
        analyze sync.staged_records;
    end if;
    -- The submissions (the last staged copy of each): what the merge reads of each body, read in
    -- this one pass, and where the body is (its row's ctid: the staged rows do not move while the
    -- run is open, and fetching one by ctid costs no index probe). The grade is computed once a
    -- row (OFFSET 0 keeps the planner from copying its expression into each place that uses it).
    if pg_catalog.to_regclass('pg_temp.sync_c_subs') is not null then drop table pg_temp.sync_c_subs; end if;
    create temp table sync_c_subs on commit drop as
    select distinct on (x.sub_id) x.*
    from (
        select s.payload ->> 'id' as sub_id, s.payload ->> 'courseId' as course_id,
               s.payload ->> 'courseWorkId' as cw_id, s.payload ->> 'userId' as user_id,
               s.payload ->> 'state' as state, s.page, s.item, s.ctid as staged, g.grade,
               case when g.grade is not null and s.payload ->> 'state' in ('TURNED_IN', 'RETURNED')
                    then coalesce(sync.to_timestamptz(g.turn_ins ->> -1),
                                  sync.to_timestamptz(s.payload ->> 'updateTime')) end as completion,
               pg_catalog.jsonb_array_length(g.turn_ins) as turn_ins
        from sync.staged_records s
        cross join lateral (
            select case when pg_catalog.jsonb_typeof(s.payload -> 'assignedGrade') = 'number'
                             and pg_catalog.abs((s.payload ->> 'assignedGrade')::numeric) < 100000
                        then pg_catalog.round((s.payload ->> 'assignedGrade')::numeric, 2) end as grade,
                   -- the turn-in times, in order: one attempt each (a regrade adds none)
                   pg_catalog.jsonb_path_query_array(s.payload,
                       '$.submissionHistory[*].stateHistory ? (@.state == "TURNED_IN").stateTimestamp') as turn_ins
            offset 0
        ) g
        where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'classroom_submission'
          and (p_parts = 1 or (pg_catalog.hashtext(s.payload ->> 'userId') & 2147483647) % p_parts = p_part)
    ) x
    where x.sub_id is not null
    order by x.sub_id, x.page desc, x.item desc;
    get diagnostics v_processed = row_count;
    analyze sync_c_subs;

    -- The students: Classroom user id, else profile e-mail.
    if pg_catalog.to_regclass('pg_temp.sync_c_profiles') is not null then drop table pg_temp.sync_c_profiles; end if;
    create temp table sync_c_profiles on commit drop as
        select distinct on (q.user_id) q.user_id, q.email, q.full_name
        from (
            select coalesce(s.payload ->> 'userId', s.payload #>> '{profile,id}', s.payload ->> 'id') as user_id,
                   nullif(pg_catalog.btrim(coalesce(s.payload #>> '{profile,emailAddress}',
                                                    s.payload ->> 'emailAddress')), '') as email,
                   nullif(pg_catalog.btrim(coalesce(s.payload #>> '{profile,name,fullName}',
                                                    s.payload #>> '{name,fullName}')), '') as full_name,
                   s.kind, s.page, s.item
            from sync.staged_records s
            where s.org_id = v_org and s.run_id = p_run_id
              and s.kind in ('classroom_student', 'classroom_profile')
        ) q
        where q.user_id is not null
        order by q.user_id, (q.email is not null) desc, q.kind = 'classroom_profile' desc, q.page desc, q.item desc;
    analyze sync_c_profiles;
    if pg_catalog.to_regclass('pg_temp.sync_c_students') is not null then drop table pg_temp.sync_c_students; end if;
    create temp table sync_c_students on commit drop as
    select u.user_id, p.email, p.full_name, u.submissions,
           null::uuid as employee_id, null::text as matched, null::text as reason
    from (select s.user_id, pg_catalog.count(*)::integer as submissions
          from sync_c_subs s where s.user_id is not null group by s.user_id) u
    left join sync_c_profiles p on p.user_id = u.user_id;
    create unique index on sync_c_students (user_id);
    analyze sync_c_students;

    update sync_c_students st set employee_id = e.id, matched = 'classroom_user_id'
    from app.employees e
    where e.org_id = v_org and e.classroom_user_id = st.user_id;
    update sync_c_students st set employee_id = m.id, matched = 'email'
    from (
        select distinct on (e.id) e.id, x.user_id
        from app.employees e
        join sync_c_students x on x.employee_id is null and x.email is not null
                               and pg_catalog.lower(x.email) = pg_catalog.lower(e.email)
        where e.org_id = v_org and e.classroom_user_id is null
        order by e.id, x.user_id
    ) m
    where st.user_id = m.user_id;
    analyze sync_c_students;
    update sync_c_students st
    set reason = case
        when st.email is null then 'has no profile e-mail and no employee has its Classroom user id'
        when exists (select from app.employees e
                     where e.org_id = v_org and pg_catalog.lower(e.email) = pg_catalog.lower(st.email))
            then 'has the e-mail of an employee already linked to another Classroom user'
        else 'matches no employee by Classroom user id or e-mail' end
    where st.employee_id is null;

    -- Link the employees found by e-mail to their Classroom user id.
    begin
        if exists (select from sync_c_students st where st.matched = 'email') then
            update app.employees e set classroom_user_id = st.user_id, last_synced_at = v_now
            from sync_c_students st
            where st.matched = 'email' and e.org_id = v_org and e.id = st.employee_id
              and e.classroom_user_id is distinct from st.user_id;
            get diagnostics v_linked = row_count;
        end if;
    exception when others then
        v_linked := 0;
        for v_row in select * from sync_c_students st where st.matched = 'email' order by st.user_id loop
            begin
                update app.employees e set classroom_user_id = v_row.user_id, last_synced_at = v_now
                where e.org_id = v_org and e.id = v_row.employee_id
                  and e.classroom_user_id is distinct from v_row.user_id;
                v_linked := v_linked + 1;
            exception when others then
                update sync_c_students st
                set employee_id = null, matched = null, reason = 'could not be linked: ' || sqlerrm
                where st.user_id = v_row.user_id;
            end;
        end loop;
    end;

    v_warnings := v_warnings || coalesce((
        select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('part', 'classroom', 'stage', 'merge',
                   'record', 'student ' || st.user_id,
                   'student', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'user_id', st.user_id, 'name', st.full_name, 'email', st.email)),
                   'message', pg_catalog.format('Classroom student %s (%s) %s: %s submission(s) not recorded',
                       st.user_id, coalesce(st.full_name || ', ' || st.email, st.full_name, st.email, 'no profile'),
                       st.reason, st.submissions))
               order by st.user_id)
        from sync_c_students st where st.employee_id is null), '[]');

    -- Modules of the course works.
    if pg_catalog.to_regclass('pg_temp.sync_c_modules') is not null then drop table pg_temp.sync_c_modules; end if;
    create temp table sync_c_modules on commit drop as
    select k.course_id, k.cw_id, k.submissions, m.id as module_id, m.due_date, m.classroom_max_points,
           m.passing_score
    from (select s.course_id, s.cw_id, pg_catalog.count(*)::integer as submissions
          from sync_c_subs s group by s.course_id, s.cw_id) k
    left join app.training_modules m
      on m.org_id = v_org and m.classroom_course_id = k.course_id and m.classroom_coursework_id = k.cw_id;
    analyze sync_c_modules;
    -- Course work that is no module: one warning each, with all its submissions. A part sees only
    -- its students' submissions, so of several parts the first reports them all, counted over
    -- every staged submission, and the others none.
    if pg_catalog.to_regclass('pg_temp.sync_c_unknown') is not null then drop table pg_temp.sync_c_unknown; end if;
    create temp table sync_c_unknown on commit drop as
    select k.course_id, k.cw_id, k.submissions
    from sync_c_modules k where k.module_id is null and p_parts = 1
    union all
    select u.course_id, u.cw_id, pg_catalog.count(distinct u.sub_id)::integer
    from (select s.payload ->> 'courseId' as course_id, s.payload ->> 'courseWorkId' as cw_id,
                 s.payload ->> 'id' as sub_id
          from sync.staged_records s
          where p_parts > 1 and p_part = 0
            and s.org_id = v_org and s.run_id = p_run_id and s.kind = 'classroom_submission') u
    where u.sub_id is not null
      and not exists (select from app.training_modules m
                      where m.org_id = v_org and m.classroom_course_id = u.course_id
                        and m.classroom_coursework_id = u.cw_id)
    group by u.course_id, u.cw_id;
    v_warnings := v_warnings || coalesce((
        select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('part', 'classroom', 'stage', 'merge',
                   'record', 'courseWork ' || coalesce(k.course_id, '?') || '/' || coalesce(k.cw_id, '?'),
                   'message', pg_catalog.format('course work %s of course %s is not a training module: %s submission(s) not recorded',
                                                coalesce(k.cw_id, '?'), coalesce(k.course_id, '?'), k.submissions))
               order by k.course_id, k.cw_id)
        from sync_c_unknown k), '[]');

    -- Exception cases (182_sync_exceptions.sql): nothing the sync cannot record is dropped in
    -- silence. A student who matches no employee is a case (with their results); a result of a
    -- matched student for course work that is no module is a case (with the submission as sent).
    -- The next sync that can record them closes them; a person's resolution stands. Raised from
    -- complete fetches only: a student or course work on a page that failed is no case.
    if v_complete and (exists (select from sync_c_students st where st.employee_id is null)
                       or exists (select from sync_c_modules k where k.module_id is null)) then
        if pg_catalog.to_regclass('pg_temp.sync_c_titles') is not null then drop table pg_temp.sync_c_titles; end if;
        create temp table sync_c_titles on commit drop as
        select distinct on (s.payload ->> 'courseId', s.payload ->> 'id')
               s.payload ->> 'courseId' as course_id, s.payload ->> 'id' as cw_id,
               nullif(pg_catalog.btrim(s.payload ->> 'title'), '') as title
        from sync.staged_records s
        where s.org_id = v_org and s.run_id = p_run_id and s.kind = 'classroom_coursework'
        order by s.payload ->> 'courseId', s.payload ->> 'id', s.page desc, s.item desc;

        select v_cases + pg_catalog.count(app.raise_sync_exception(v_org, 'unmatched_student',
                   'classroom:student:' || st.user_id, 'classroom_student_matching',
                   pg_catalog.format('Classroom student %s (%s) %s: %s submission(s), %s of them result(s), not recorded.',
                       st.user_id, coalesce(st.full_name || ', ' || st.email, st.full_name, st.email, 'no profile'),
                       st.reason, st.submissions, pg_catalog.jsonb_array_length(r.results)),
                   pg_catalog.format('If the student is an employee, link them: set the employee''s classroom_user_id to %s (PATCH /employees), or correct the e-mail in Zenefits; the next Classroom sync records their results and closes this case. If the student is no employee, resolve the case with a note: it is not raised again.',
                       st.user_id),
                   null, null, null,
                   pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'rule', 'match by Classroom user id, else by profile e-mail',
                       'reason', st.reason,
                       'student', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                           'user_id', st.user_id, 'name', st.full_name, 'email', st.email)),
                       'submissions', st.submissions, 'results', r.results))))::integer
        into v_cases
        from sync_c_students st
        left join (
            -- (one pass over the submissions for all unmatched students)
            select s.user_id,
                   pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'submission_id', s.sub_id, 'course_id', s.course_id, 'coursework_id', s.cw_id,
                       'coursework_title', t.title, 'grade', s.grade, 'turned_in', s.completion))
                       order by s.course_id, s.cw_id, s.sub_id) as results
            from sync_c_subs s
            join sync_c_students u on u.user_id = s.user_id and u.employee_id is null
            left join sync_c_titles t on t.course_id = s.course_id and t.cw_id = s.cw_id
            where s.state in ('TURNED_IN', 'RETURNED') and s.grade is not null
            group by s.user_id
        ) g on g.user_id = st.user_id
        cross join lateral (select coalesce(g.results, '[]'::jsonb) as results) r
        where st.employee_id is null;

        select v_cases + pg_catalog.count(app.raise_sync_exception(v_org, 'unknown_module_result',
                   'classroom:submission:' || s.sub_id, 'classroom_result_module',
                   pg_catalog.format('A Classroom result of %s (grade %s, turned in %s) for course work %s (%s) of course %s maps to no training module; it was not recorded.',
                       e.full_name, s.grade,
                       coalesce(pg_catalog.to_char(app.local_date(v_org, s.completion), 'YYYY-MM-DD'), 'at an unknown time'),
                       s.cw_id, coalesce(pg_catalog.quote_literal(t.title), 'title unknown: not among the published course work'),
                       s.course_id),
                   pg_catalog.format('If it is a training, map it: set a module''s classroom_course_id to %s and classroom_coursework_id to %s (PATCH /training_modules), or publish the course work in Classroom; the next Classroom sync records the result and closes this case. If it is no training, resolve the case with a note: it is not raised again.',
                       s.course_id, s.cw_id),
                   e.id, null, null,
                   pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'rule', 'a result goes to the module of its (course id, course-work id)',
                       'course_id', s.course_id, 'coursework_id', s.cw_id, 'coursework_title', t.title,
                       'student', pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                           'user_id', st.user_id, 'name', st.full_name, 'email', st.email)),
                       'submission_id', s.sub_id, 'grade', s.grade, 'turned_in', s.completion,
                       'submission', (select r.payload from sync.staged_records r where r.ctid = s.staged)))))::integer
        into v_cases
        from sync_c_subs s
        join sync_c_students st on st.user_id = s.user_id and st.employee_id is not null and v_cw_complete
        join sync_c_modules k on k.course_id = s.course_id and k.cw_id = s.cw_id and k.module_id is null
        join app.employees e on e.org_id = v_org and e.id = st.employee_id
        left join sync_c_titles t on t.course_id = s.course_id and t.cw_id = s.cw_id
        where s.state in ('TURNED_IN', 'RETURNED') and s.grade is not null;
    end if;
    -- Students matched now close their case.
    perform app.close_assignment_exception(v_org, 'unmatched_student', 'classroom:student:' || st.user_id,
                pg_catalog.format('Matched to employee %s by %s; the results are recorded.',
                                  e.full_name, case st.matched when 'email' then 'e-mail' else 'Classroom user id' end))
    from app.assignment_exceptions x
    join sync_c_students st on 'classroom:student:' || st.user_id = x.subject_key
    join app.employees e on e.org_id = v_org and e.id = st.employee_id
    where x.org_id = v_org and x.kind = 'unmatched_student' and x.resolved_at is null;

    -- What each matched submission maps to (its assignment: the one holding its id).
    if pg_catalog.to_regclass('pg_temp.sync_c_work') is not null then drop table pg_temp.sync_c_work; end if;
    create temp table sync_c_work on commit drop as
    select s.sub_id, s.state, s.staged, s.grade, s.completion, s.user_id, s.turn_ins,
           st.employee_id, k.module_id, k.due_date as module_due_date,
           k.classroom_max_points as max_points, k.passing_score, a.id as assignment_id
    from sync_c_subs s
    join sync_c_students st on st.user_id = s.user_id and st.employee_id is not null
    join sync_c_modules k on k.course_id = s.course_id and k.cw_id = s.cw_id and k.module_id is not null
    left join app.training_assignments a on a.org_id = v_org and a.classroom_submission_id = s.sub_id;
    analyze sync_c_work;

    -- Else the employee's latest assignment of the module that holds no submission yet.
    update sync_c_work w set assignment_id = x.id
    from (
        select distinct on (a.employee_id, a.module_id) a.employee_id, a.module_id, a.id
        from app.training_assignments a
        join (select distinct w2.employee_id, w2.module_id from sync_c_work w2 where w2.assignment_id is null) n
          on n.employee_id = a.employee_id and n.module_id = a.module_id
        where a.org_id = v_org and a.classroom_submission_id is null
        order by a.employee_id, a.module_id, a.due_date desc
    ) x
    where w.assignment_id is null and w.employee_id = x.employee_id and w.module_id = x.module_id;

    -- Only what changed: a new result, or a submission whose id, grade or body differ (the body,
    -- fetched by ctid, is compared only when the rest is the same).
    if pg_catalog.to_regclass('pg_temp.sync_c_write') is not null then drop table pg_temp.sync_c_write; end if;
    create temp table sync_c_write on commit drop as
    select w.sub_id, w.staged, w.user_id, w.employee_id, w.module_id, w.assignment_id,
           w.grade, r.is_result, c.score, w.completion, w.passing_score,
           -- attempts = turn-ins (a result without any history is one)
           greatest(w.turn_ins, case when r.is_result then 1 else 0 end) as attempts,
           -- a completed result Classroom would undo: kept, and a case raised (see the header)
           case
               when a.status is distinct from 'completed' then null
               when r.is_result and c.score is not null and c.score < w.passing_score then 'regrade_below_passing'
               when not r.is_result and a.classroom_grade is not null
                    and a.classroom_submission_id = w.sub_id then 'grade_removed'
           end::app.exception_kind as kept,
           a.score as kept_score, a.classroom_grade as previous_grade, a.completion_date as kept_completion,
           a.status = 'completed' and r.is_result and c.score >= w.passing_score as passing_again,
           case
               when not r.is_result then null
               when c.score is null then pg_catalog.format('has grade %s but its course work has no maxPoints', w.grade)
               when w.completion is null then 'has no turn-in time'
           end as problem,
           coalesce(w.module_due_date, app.local_date(v_org, w.completion)) as due_date,
           null::integer as chunk
    from sync_c_work w
    cross join lateral (
        select w.state in ('TURNED_IN', 'RETURNED') and w.grade is not null as is_result
    ) r
    cross join lateral (
        select case when not r.is_result then null
                    when w.max_points > 0
                        then pg_catalog.round(greatest(0, least(100, w.grade / w.max_points * 100)), 2)
                    when w.grade between 0 and 100 then w.grade end::numeric(5, 2) as score
    ) c
    left join app.training_assignments a on a.org_id = v_org and a.id = w.assignment_id
    where (w.assignment_id is null and r.is_result)
       or (w.assignment_id is not null
           and ((a.classroom_submission_id, a.classroom_grade) is distinct from (w.sub_id, w.grade)
                or a.classroom_submission is distinct from (select s.payload from sync.staged_records s
                                                            where s.ctid = w.staged)));
    analyze sync_c_write;

    -- Write: all at once; when that fails, chunk by chunk, and row by row in a failing chunk
    -- (to name the records the engine refuses and write all the others).
    v_has_updates := exists (select from sync_c_write w where w.problem is null and w.assignment_id is not null);
    v_has_inserts := exists (select from sync_c_write w where w.problem is null and w.assignment_id is null);
    v_chunk := -1;                              -- -1 = everything
    v_chunks := 0;
    perform pg_catalog.set_config('app.attempts_counted_by_writer', 'on', true);
    while v_chunk < v_chunks loop
        begin
            v_rows := 0;
            v_inserted := 0;
            if v_has_updates then
                update app.training_assignments a
                set classroom_submission_id = w.sub_id, classroom_submission = s.payload,
                    classroom_grade = w.grade,
                    score = case when w.is_result and w.kept is null and a.status <> 'exempted'
                                 then w.score else a.score end,
                    completion_date = case when w.is_result and w.kept is null and a.status <> 'exempted'
                                           then w.completion else a.completion_date end,
                    attempts = case when w.attempts > 0 and w.kept is null and a.status <> 'exempted'
                                    then w.attempts else a.attempts end,
                    last_synced_at = v_now, sync_status = 'synced', sync_errors = null
                from sync_c_write w
                join sync.staged_records s on s.ctid = w.staged
                where w.assignment_id is not null and w.problem is null and (v_chunk < 0 or w.chunk = v_chunk)
                  and a.org_id = v_org and a.id = w.assignment_id;
                get diagnostics v_rows = row_count;
            end if;
            if v_has_inserts then
                -- (an assignment only where none exists: the rules keep one for every required
                -- module, so a result for any other is an optional completion)
                insert into app.training_assignments (org_id, employee_id, module_id, due_date, score,
                    completion_date, classroom_submission_id, classroom_submission, classroom_grade,
                    last_synced_at, sync_status, attempts, is_required, not_required_reason)
                select v_org, w.employee_id, w.module_id, w.due_date, w.score, w.completion, w.sub_id,
                       s.payload, w.grade, v_now, 'synced', w.attempts, false, 'optional'
                from sync_c_write w
                join sync.staged_records s on s.ctid = w.staged
                where w.assignment_id is null and w.problem is null and (v_chunk < 0 or w.chunk = v_chunk);
                get diagnostics v_inserted = row_count;
            end if;
            -- (counted only now: a block that fails rolls its writes back, not these variables)
            v_updated := v_updated + v_rows;
            v_created := v_created + v_inserted;
            exit when v_chunk < 0;              -- all written at once
        exception when others then
            if v_chunk < 0 then
                -- Number the rows into chunks of 2,000 now that chunks are needed.
                update sync_c_write w set chunk = c.n / 2000
                from (select w2.sub_id, (pg_catalog.row_number() over (order by w2.sub_id) - 1)::integer as n
                      from sync_c_write w2 where w2.problem is null) c
                where c.sub_id = w.sub_id;
                select coalesce(pg_catalog.max(w.chunk), -1) + 1 into v_chunks from sync_c_write w;
            else
                for v_row in
                    select w.*, s.payload as raw
                    from sync_c_write w
                    join sync.staged_records s on s.ctid = w.staged
                    where w.problem is null and w.chunk = v_chunk order by w.sub_id
                loop
                    begin
                        if v_row.assignment_id is not null then
                            update app.training_assignments a
                            set classroom_submission_id = v_row.sub_id, classroom_submission = v_row.raw,
                                classroom_grade = v_row.grade,
                                score = case when v_row.is_result and v_row.kept is null and a.status <> 'exempted'
                                             then v_row.score else a.score end,
                                completion_date = case when v_row.is_result and v_row.kept is null
                                                            and a.status <> 'exempted'
                                                       then v_row.completion else a.completion_date end,
                                attempts = case when v_row.attempts > 0 and v_row.kept is null
                                                     and a.status <> 'exempted'
                                                then v_row.attempts else a.attempts end,
                                last_synced_at = v_now, sync_status = 'synced', sync_errors = null
                            where a.org_id = v_org and a.id = v_row.assignment_id;
                            v_updated := v_updated + 1;
                        else
                            insert into app.training_assignments (org_id, employee_id, module_id, due_date,
                                score, completion_date, classroom_submission_id, classroom_submission,
                                classroom_grade, last_synced_at, sync_status, attempts, is_required,
                                not_required_reason)
                            values (v_org, v_row.employee_id, v_row.module_id, v_row.due_date, v_row.score,
                                    v_row.completion, v_row.sub_id, v_row.raw, v_row.grade, v_now, 'synced',
                                    v_row.attempts, false, 'optional');
                            v_created := v_created + 1;
                        end if;
                    exception when others then
                        update sync_c_write w set problem = 'could not be recorded: ' || sqlerrm
                        where w.sub_id = v_row.sub_id;
                    end;
                end loop;
            end if;
        end;
        v_chunk := v_chunk + 1;
    end loop;

    perform pg_catalog.set_config('app.attempts_counted_by_writer', '', true);

    -- Completed results Classroom would undo: a case each for a person to decide (idempotent per
    -- submission); a passing grade again closes the submission's open cases.
    select v_cases + pg_catalog.count(app.raise_assignment_exception(v_org, w.kept, w.sub_id, 'classroom_grading',
               case w.kept
                   when 'regrade_below_passing' then pg_catalog.format(
                       'The completed result of %s for %s was regraded in Classroom to %s (score %s), below the passing score %s; the completion of %s with score %s stands as evidence.',
                       e.full_name, m.name, w.grade, w.score, w.passing_score,
                       pg_catalog.to_char(app.local_date(v_org, w.kept_completion), 'YYYY-MM-DD'), w.kept_score)
                   else pg_catalog.format(
                       'The grade %s of the completed result of %s for %s was removed in Classroom; the completion of %s with score %s stands as evidence.',
                       w.previous_grade, e.full_name, m.name,
                       pg_catalog.to_char(app.local_date(v_org, w.kept_completion), 'YYYY-MM-DD'), w.kept_score)
               end,
               'Decide whether the completion stands: resolve this case with a note, or have HR correct the result or re-assign the training.',
               w.employee_id, w.module_id, w.assignment_id,
               pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                   'submission_id', w.sub_id, 'new_grade', w.grade, 'new_score', w.score,
                   'previous_grade', w.previous_grade, 'kept_score', w.kept_score,
                   'completion_date', w.kept_completion, 'passing_score', w.passing_score))))::integer
    into v_cases
    from sync_c_write w
    join app.employees e on e.org_id = v_org and e.id = w.employee_id
    join app.training_modules m on m.org_id = v_org and m.id = w.module_id
    where w.kept is not null and w.problem is null;
    perform app.close_assignment_exception(v_org, k.kind, w.sub_id,
                'Classroom gave the completed result a passing grade again.')
    from sync_c_write w
    cross join (values ('regrade_below_passing'::app.exception_kind), ('grade_removed')) k(kind)
    where w.passing_again and w.problem is null
      and exists (select from app.assignment_exceptions x
                  where x.org_id = v_org and x.kind = k.kind and x.subject_key = w.sub_id
                    and x.resolved_at is null);

    -- Results of course work that maps to a module now: recorded, so their cases close.
    perform app.close_assignment_exception(v_org, 'unknown_module_result', 'classroom:submission:' || w.sub_id,
                pg_catalog.format('The course work maps to module %s now; the result is recorded.', m.name))
    from app.assignment_exceptions x
    join sync_c_work w on 'classroom:submission:' || w.sub_id = x.subject_key
    join app.training_modules m on m.org_id = v_org and m.id = w.module_id
    where x.org_id = v_org and x.kind = 'unknown_module_result' and x.resolved_at is null
      and not exists (select from sync_c_write f where f.sub_id = w.sub_id and f.problem is not null);

    select pg_catalog.count(*)::integer,
           coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('part', 'classroom', 'stage', 'merge',
               'record', 'submission ' || w.sub_id,
               'message', pg_catalog.format('submission %s of student %s (%s) for %s: %s', w.sub_id, w.user_id,
                   e.full_name, m.name, w.problem))
               order by w.sub_id), '[]')
    into v_failed, v_errors
    from sync_c_write w
    left join app.employees e on e.org_id = v_org and e.id = w.employee_id
    left join app.training_modules m on m.org_id = v_org and m.id = w.module_id
    where w.problem is not null;
    -- Mark the assignments whose submission could not be recorded (once: only when it changes).
    if v_failed > 0 then
        update app.training_assignments a
        set sync_status = 'error', sync_errors = pg_catalog.jsonb_build_array(w.problem)
        from sync_c_write w
        where w.problem is not null and w.assignment_id is not null and a.org_id = v_org and a.id = w.assignment_id
          and (a.sync_status, a.sync_errors) is distinct from ('error'::app.record_sync_status,
                                                               pg_catalog.jsonb_build_array(w.problem));
    end if;

    perform sync.add_messages(v_org, p_run_id, 'warning', v_warnings);
    perform sync.add_messages(v_org, p_run_id, 'error', v_errors);
    v_counts := pg_catalog.jsonb_build_object(
        'processed', v_processed, 'created', v_created, 'updated', v_updated + v_linked,
        'failed', v_failed,
        'assignments_created', v_created, 'assignments_updated', v_updated,
        'students_linked', v_linked,
        'exception_cases', v_cases,
        'results', (select pg_catalog.count(*) from sync_c_write w where w.is_result and w.problem is null),
        'unmatched_students', (select pg_catalog.count(*) from sync_c_students st where st.employee_id is null),
        'unmatched_submissions', (select coalesce(pg_catalog.sum(st.submissions), 0)
                                  from sync_c_students st where st.employee_id is null),
        'unknown_coursework_submissions', (select coalesce(pg_catalog.sum(k.submissions), 0)
                                           from sync_c_unknown k),
        'warnings', pg_catalog.jsonb_array_length(v_warnings));
    perform sync.record_merge(v_run, 'classroom_submissions', v_counts);
    return v_counts;
end
$$;
comment on function sync.apply_classroom_submissions(uuid, integer, integer) is
    'Merges the Classroom submissions staged for a run into training assignments (results); of p_parts concurrent parts, the students of part p_part.';
grant execute on function sync.apply_classroom_submissions(uuid, integer, integer) to sync_worker;
