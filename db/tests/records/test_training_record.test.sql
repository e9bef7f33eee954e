-- api.training_record (db/functions/440_training_record.sql): the whole history of an employee
-- (every cycle, not required ones included; lateness, exemption, validity, corrections;
-- requirements with their reviews; tier history), who may read it, and the audit chain head it
-- carries, which audit.verify_chain accepts.
begin;
select plan(27);

select set_config('app.today', '2026-03-10', true);
select tests.set_var('org', tests.create_org('record-a')::text);
select tests.set_var('b', tests.create_org('record-b')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@rec-a.example')::text);
select tests.set_var('viewer', tests.create_user(tests.var('org')::uuid, 'viewer', 'viewer@rec-a.example')::text);
select tests.set_var('mgr', tests.create_user(tests.var('org')::uuid, 'manager', 'mgr@rec-a.example')::text);
select tests.set_var('mgr_e', (select employee_id::text from app.app_users where id = tests.var('mgr')::uuid));
select tests.set_var('emp_e', tests.create_employee(tests.var('org')::uuid, 'emp@rec-a.example', tests.var('mgr_e')::uuid, 'Dental Hygienist')::text);
select tests.set_var('emp', tests.create_user(tests.var('org')::uuid, 'employee', 'emp@rec-a.example', tests.var('emp_e')::uuid)::text);
select tests.set_var('other_e', tests.create_employee(tests.var('org')::uuid, 'other@rec-a.example')::text);
select tests.set_var('other', tests.create_user(tests.var('org')::uuid, 'employee', 'other@rec-a.example', tests.var('other_e')::uuid)::text);
select tests.set_var('b_hr', tests.create_user(tests.var('b')::uuid, 'hr_admin', 'hr@rec-b.example')::text);
update app.organizations set timezone = 'America/Detroit' where id = tests.var('org')::uuid;

insert into app.training_modules (org_id, name, month_key, due_date, validity_days, grace_period_days)
values (tests.var('org')::uuid, 'Bloodborne Pathogens', '2025-01', '2025-01-31', 365, 0),
       (tests.var('org')::uuid, 'HIPAA Privacy', '2025-02', '2025-02-28', null, 0);
select tests.set_var('bbp', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'Bloodborne Pathogens'));
select tests.set_var('hipaa', (select id::text from app.training_modules where org_id = tests.var('org')::uuid and name = 'HIPAA Privacy'));

-- completed three local days late, at local noon
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status, completion_date, score, attempts, is_late)
values (tests.var('org')::uuid, tests.var('emp_e')::uuid, tests.var('bbp')::uuid, '2025-01-31', 'completed',
        tests.local_noon(tests.var('org')::uuid, '2025-02-03'), 88.5, 2, true);
-- an exemption by the HR admin
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status)
values (tests.var('org')::uuid, tests.var('emp_e')::uuid, tests.var('hipaa')::uuid, '2025-02-28', 'not_started');
select tests.authenticate_as(tests.var('hr')::uuid);
select api.exempt_assignment(assignment_id => (select id from app.training_assignments
                                               where employee_id = tests.var('emp_e')::uuid and due_date = '2025-02-28'),
                             reason => 'Certified elsewhere');
select tests.clear_authentication();
-- a cycle that stopped counting, and one overdue since 2026-03-01
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status, is_required, not_required_reason)
values (tests.var('org')::uuid, tests.var('emp_e')::uuid, tests.var('hipaa')::uuid, '2024-02-28', 'not_started', false, 'superseded_by_rehire');
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status)
values (tests.var('org')::uuid, tests.var('emp_e')::uuid, tests.var('bbp')::uuid, '2026-03-01', 'overdue');
select tests.set_var('done', (select id::text from app.training_assignments
                              where employee_id = tests.var('emp_e')::uuid and due_date = '2025-01-31'));
insert into app.completion_corrections (org_id, assignment_id, employee_id, kind, previous_status,
    previous_completion_date, previous_score, attended, completion_date, score, reason, corrected_by)
values (tests.var('org')::uuid, tests.var('done')::uuid, tests.var('emp_e')::uuid, 'corrected', 'completed',
        tests.local_noon(tests.var('org')::uuid, '2025-02-04'), 80, true,
        tests.local_noon(tests.var('org')::uuid, '2025-02-03'), 88.5, 'Sign-in sheet shows the 3rd', tests.var('hr')::uuid);

-- a requirement reviewed twice (the trail keeps both decisions), and a tier change
insert into app.compliance_tiers (org_id, name, level, is_default) values
    (tests.var('org')::uuid, 'Foundation', 1, true), (tests.var('org')::uuid, 'Advanced', 2, false);
insert into app.compliance_requirements (org_id, name, type, tier_id)
values (tests.var('org')::uuid, 'CPR card', 'certification',
        (select id from app.compliance_tiers where org_id = tests.var('org')::uuid and level = 1));
insert into app.employee_requirements (org_id, employee_id, requirement_id, status, submitted_at)
values (tests.var('org')::uuid, tests.var('emp_e')::uuid,
        (select id from app.compliance_requirements where org_id = tests.var('org')::uuid),
        'submitted', now());
select tests.set_var('er', (select id::text from app.employee_requirements where employee_id = tests.var('emp_e')::uuid));
insert into audit.log (org_id, actor_user_id, actor_role, event_type, table_name, entity_id, employee_id, details, occurred_at)
values (tests.var('org')::uuid, tests.var('mgr')::uuid, 'manager', 'requirement_review', 'employee_requirements', tests.var('er'),
        tests.var('emp_e')::uuid, '{"decision": "revision_required", "comments": "Card expired"}', now() - interval '2 days');
select tests.authenticate_as(tests.var('hr')::uuid);
select api.review_requirement(id => tests.var('er')::uuid, decision => 'approved');
select tests.clear_authentication();
insert into app.employee_tier_history (org_id, employee_id, from_tier_id, to_tier_id, kind, reason, changed_by)
values (tests.var('org')::uuid, tests.var('emp_e')::uuid,
        (select id from app.compliance_tiers where org_id = tests.var('org')::uuid and level = 1),
        (select id from app.compliance_tiers where org_id = tests.var('org')::uuid and level = 2),
        'manual', 'Promotion', tests.var('hr')::uuid);
-- (sealing chains finished transactions only: this one's rows stay unsealed)
select audit.seal(tests.var('org')::uuid);

-- The employee reads their own record.
select tests.authenticate_as(tests.var('emp')::uuid, 'GET');
select tests.set_var('rec', api.training_record(employee_id => tests.var('emp_e')::uuid)::text);
select tests.clear_authentication();
create temp table rec as select tests.var('rec')::jsonb as r;
create temp table cyc as
    select c.value as c from rec, jsonb_array_elements(r -> 'cycles') c;

select is((select r #>> '{employee,name}' from rec), 'Emp Test', 'the employee''s name');
select is((select r #>> '{employee,job_title}' from rec), 'Dental Hygienist', 'their job title');
select is((select r #>> '{employee,department}' from rec), 'General', 'their department');
select is((select r ->> 'time_zone' from rec), 'America/Detroit', 'the zone of every local time');
select is((select count(*)::int from cyc), 4, 'every cycle, the one no longer required included');
select is((select c ->> 'not_required_reason' from cyc where c ->> 'due_date' = '2024-02-28'),
          'superseded_by_rehire', 'a cycle that stopped counting says why');
select is((select c ->> 'completed_at' from cyc where c ->> 'due_date' = '2025-01-31'),
          '2025-02-03T12:00:00', 'completed_at in local time');
select is((select (c ->> 'days_late')::int from cyc where c ->> 'due_date' = '2025-01-31'), 3,
          'late by three local days');
select is((select c ->> 'score' from cyc where c ->> 'due_date' = '2025-01-31'), '88.50', 'the score');
select is((select c ->> 'valid_until' from cyc where c ->> 'due_date' = '2025-01-31'), '2026-02-03',
          'valid until the completion''s local date plus validity_days');
select is((select (c ->> 'days_late')::int from cyc where c ->> 'due_date' = '2026-03-01'), 9,
          'an overdue cycle: days from its due date to the organisation''s today');
select is((select c -> 'exemption' from cyc where c ->> 'status' = 'exempted'),
          jsonb_build_object('at', to_char(now() at time zone 'America/Detroit', 'YYYY-MM-DD"T"HH24:MI:SS'),
                             'by', jsonb_build_object('name', 'Hr_Admin User', 'role', 'hr_admin'),
                             'reason', 'Certified elsewhere'),
          'the exemption: reason, by whom, when (local time)');
select is((select (c #> '{corrections,0}') - 'at'::text from cyc where c ->> 'due_date' = '2025-01-31'),
          jsonb_build_object('by', jsonb_build_object('name', 'Hr_Admin User', 'role', 'hr_admin'),
                             'kind', 'corrected', 'reason', 'Sign-in sheet shows the 3rd',
                             'before', jsonb_build_object('status', 'completed', 'completed_at', '2025-02-04T12:00:00', 'score', 80.00),
                             'after', jsonb_build_object('attended', true, 'completed_at', '2025-02-03T12:00:00', 'score', 88.50)),
          'the correction: by, reason, before and after');
select is((select jsonb_path_query_array(r, '$.requirements[0].reviews[*].decision') from rec),
          '["revision_required", "approved"]'::jsonb, 'every review of the requirement, in order');
select is((select r #>> '{requirements,0,reviews,0,comments}' from rec), 'Card expired', 'with its comments');
select is((select r #>> '{tier_history,0,to}' from rec), 'Advanced', 'the tier history');
select is((select r #> '{generated_by}' from rec), '{"name": "Employee User", "role": "employee"}'::jsonb,
          'generated by the caller');
select is((select (r #>> '{verification,chain_seq}')::bigint from rec),
          coalesce((select max(seq) from audit.chain where org_id = tests.var('org')::uuid),
                   (select seq from audit.chain_start(tests.var('org')::uuid))),
          'the verification names the sealed head of the chain (its start while nothing is sealed)');
select is((select count(*)::int from rec, audit.verify_chain(tests.var('org')::uuid,
                                                             (r #>> '{verification,chain_seq}')::bigint,
                                                             r #>> '{verification,chain_hash}')),
          0, 'which audit.verify_chain accepts');

-- Who may read it.
select tests.authenticate_as(tests.var('mgr')::uuid, 'GET');
select ok(api.training_record(employee_id => tests.var('emp_e')::uuid) ? 'cycles', 'a manager reads a direct report''s');
select is(tests.error_of(format('select api.training_record(employee_id => %L)', tests.var('other_e'))) ->> 'code',
          '42501', 'not another employee''s');
select tests.authenticate_as(tests.var('other')::uuid, 'GET');
select is(tests.error_of(format('select api.training_record(employee_id => %L)', tests.var('emp_e'))) ->> 'code',
          '42501', 'an employee may not read a colleague''s');
select tests.authenticate_as(tests.var('viewer')::uuid, 'GET');
select ok(api.training_record(employee_id => tests.var('emp_e')::uuid) ? 'cycles', 'a viewer reads anyone''s');
select tests.authenticate_as(tests.var('b_hr')::uuid, 'GET');
select is(tests.error_of(format('select api.training_record(employee_id => %L)', tests.var('emp_e'))) ->> 'code',
          'PT404', 'another organisation''s employee is unknown, not refused');
select tests.authenticate_as(tests.var('hr')::uuid, 'GET');
select is(jsonb_array_length(api.training_record(employee_id => tests.var('emp_e')::uuid) -> 'cycles'), 4,
          'an HR admin reads anyone''s');
select is(tests.error_of(format('select api.training_record(employee_id => %L)', gen_random_uuid())) ->> 'code',
          'PT404', 'an unknown employee: 404');
select is(tests.error_of('select api.training_record(employee_id => null)') ->> 'message',
          'employee_id is required', 'no employee: 400 naming the argument');
select tests.clear_authentication();

select * from finish();
rollback;
