-- Employee lifecycle: deactivation, re-activation, job-role change.
begin;
select plan(24);

do $$ begin perform tests.engine_org('deact'); end $$;
-- Ann starts working on her attestation; her HIPAA record will be approved by the training.
update app.employee_requirements set status = 'in_progress'
where id = tests.record_of(tests.var('emp')::uuid, tests.var('r_attest')::uuid);
update app.training_assignments set score = 90, completion_date = now()
where id = tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid);

-- Refusals.
select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok($$select api.deactivate_employee(tests.var('emp')::uuid, 'left')$$, '42501', null,
                 'a manager may not deactivate');
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.deactivate_employee(tests.var('emp')::uuid, '  ')$$, '22023', null,
                 'a reason is required');
select throws_ok($$select api.deactivate_employee(gen_random_uuid(), 'left')$$, 'PT404', null,
                 'an unknown employee is 404');
select is((select status::text from app.employees where id = tests.var('emp')::uuid), 'active',
          'refusals changed nothing');

-- HR deactivates.
select is(api.deactivate_employee(tests.var('emp')::uuid, 'left the practice') ->> 'status', 'inactive',
          'HR admin deactivates');
select tests.clear_authentication();
select isnt((select deactivated_at from app.employees where id = tests.var('emp')::uuid), null,
            'deactivated_at is set');
select is((select array_agg(status::text order by requirement_id = tests.var('r_hipaa')::uuid)
           from app.employee_requirements where employee_id = tests.var('emp')::uuid
             and requirement_id in (tests.var('r_attest')::uuid, tests.var('r_hipaa')::uuid)),
          array['inactive', 'approved'], 'open requirements become inactive, approved ones stay');
select is((select status::text from app.employee_tiers where employee_id = tests.var('emp')::uuid),
          'inactive', 'the tier record is inactive');
select is((select count(*)::int from app.training_assignments where employee_id = tests.var('emp')::uuid),
          2, 'nothing is deleted');
select is((select details ->> 'reason' from audit.log
           where employee_id = tests.var('emp')::uuid and event_type = 'employee_deactivated'),
          'left the practice', 'audit employee_deactivated with the reason');
select is(tests.event_count(tests.var('emp')::uuid, 'employee.deactivated'), 1, 'event employee.deactivated');
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.deactivate_employee(tests.var('emp')::uuid, 'again')$$, 'PT409', null,
                 'deactivating an inactive employee is a conflict');
select tests.clear_authentication();

-- A sync-style update to terminated of another employee does the same.
update app.employees set status = 'terminated' where id = tests.var('other')::uuid;
select is((select count(*)::int from app.employee_requirements
           where employee_id = tests.var('other')::uuid and status <> 'inactive'), 0,
          'any status change to terminated deactivates');
select is(tests.audit_count(tests.var('other')::uuid, 'employee_deactivated'), 1, '... and is audited');

-- Re-activation by HR (PATCH status) brings Ann back; what counts is not duplicated.
select tests.authenticate_as(tests.var('hr')::uuid, 'PATCH', '/employees');
update api.employees set status = 'active' where id = tests.var('emp')::uuid;
select tests.clear_authentication();
select is((select (count(*) filter (where is_required),
                   count(*) filter (where not_required_reason = 'superseded_by_rehire'))::text
           from app.training_assignments where employee_id = tests.var('emp')::uuid),
          '(2,1)', 're-activation counts each module once: the earlier open assignment superseded, a new cycle, the completion kept');
select is((select status::text from app.employee_tiers where employee_id = tests.var('emp')::uuid),
          'active', 'the tier record is active again');
select is((select status::text from app.employee_requirements
           where id = tests.record_of(tests.var('emp')::uuid, tests.var('r_attest')::uuid)),
          'pending', 'inactive records of the tier are pending again');
select is((select deactivated_at from app.employees where id = tests.var('emp')::uuid), null,
          'deactivated_at is cleared');
select is(tests.audit_count(tests.var('emp')::uuid, 'employee_reactivated'), 1, 'audit employee_reactivated');

-- A job-title change to a title mapped to another tier switches the tier.
update app.employees set job_title = 'NURSE' where id = tests.var('emp')::uuid;
select is((select tier_id from app.employee_tiers where employee_id = tests.var('emp')::uuid),
          tests.var('silver')::uuid, 'job title mapped to Silver switches the tier');
select is((select kind::text from app.employee_tier_history
           where employee_id = tests.var('emp')::uuid order by id desc limit 1),
          'role_change', 'history kind role_change');
select is(tests.audit_count(tests.var('emp')::uuid, 'role_change'), 1, 'audit role_change');
select is((select count(*)::int from app.employee_requirements
           where employee_id = tests.var('emp')::uuid and is_legacy),
          0, 'moving up to Silver keeps the lower tier''s requirements (tiers are cumulative)');

select is(tests.verify_stats_count(), 0, 'verify_stats finds nothing to fix');
select * from finish();
rollback;
