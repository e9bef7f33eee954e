-- Stats semantics, maintenance on every change, verify_stats and recalculate_employee (item 5).
begin;
select plan(17);

do $$ begin perform tests.engine_org('stats'); end $$;

select is(((tests.stats(tests.var('emp')::uuid)).training_assigned, (tests.stats(tests.var('emp')::uuid)).training_rate)::text,
          '(2,0.00)', 'two required assignments, none completed: 0 %');
-- An optional assignment does not count.
insert into app.training_assignments (org_id, employee_id, module_id, due_date, is_required)
values (tests.var('org')::uuid, tests.var('emp')::uuid, tests.var('m_fire')::uuid, app.today() + 60, false);
select is((tests.stats(tests.var('emp')::uuid)).training_assigned, 2, 'optional assignments are not counted');
-- Exempted: counted in assigned and exempted, out of the rate's denominator.
update app.training_assignments set status = 'exempted', exemption_reason = 'test'
where id = tests.assignment_of(tests.var('emp')::uuid, tests.var('m_osha')::uuid);
update app.training_assignments set status = 'completed'
where id = tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid);
select is(((tests.stats(tests.var('emp')::uuid)).training_assigned, (tests.stats(tests.var('emp')::uuid)).training_completed,
           (tests.stats(tests.var('emp')::uuid)).training_exempted, (tests.stats(tests.var('emp')::uuid)).training_rate)::text,
          '(2,1,1,100.00)', 'completed / (assigned - exempted)');
select is(((tests.stats(tests.var('emp')::uuid)).completed_requirements, (tests.stats(tests.var('emp')::uuid)).earned_points)::text,
          '(1,10)', 'the HIPAA training requirement approved with it');

-- Nothing required: 100.00 for both rates.
insert into app.employees (org_id, email, first_name, last_name, status)
values (tests.var('org')::uuid, 'idle@stats.example', 'Idle', 'One', 'inactive');
select is((select (s.training_rate, s.completion_pct)::text from app.employee_compliance_stats s
           join app.employees e on e.org_id = s.org_id and e.id = s.employee_id where e.email = 'idle@stats.example'),
          '(100.00,100.00)', '100.00 when nothing is required');

-- Catalog changes reach the stats: points, and a new requirement of the tier.
update app.compliance_requirements set points = 7 where id = tests.var('r_attest')::uuid;
select is((tests.stats(tests.var('emp')::uuid)).total_points, 17, 'a change of points refreshes total_points');
insert into app.compliance_requirements (org_id, name, type, points, tier_id)
values (tests.var('org')::uuid, 'Badge photo', 'document', 1, tests.var('bronze')::uuid);
select is((tests.stats(tests.var('emp')::uuid)).total_requirements, 4,
          'a new requirement of the tier reaches its active employees');
select is((select count(*)::int from app.employee_requirements er join app.compliance_requirements cr
             on cr.id = er.requirement_id where cr.name = 'Badge photo'), 3,
          'one record per active employee of the tier');
select is(tests.verify_stats_count(), 0, 'verify_stats is empty when the maintenance is right');

-- verify_stats finds a tampered or missing row.
update app.employee_compliance_stats set training_rate = 12.5 where employee_id = tests.var('emp')::uuid;
select is((select (stored ->> 'training_rate') || '/' || (computed ->> 'training_rate') from app.verify_stats()),
          '12.50/100.00', 'verify_stats returns the differing row, stored and computed');
delete from app.employee_compliance_stats where employee_id = tests.var('other')::uuid;
select is((select count(*)::int from app.verify_stats() where stored is null), 1, 'a missing row is reported');

-- recalculate_employee: HR admins and superadmins only.
select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok($$select api.recalculate_employee(tests.var('emp')::uuid)$$, '42501', null,
                 'a manager may not recalculate');
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.recalculate_employee(gen_random_uuid())$$, 'PT404', null, 'unknown employee: 404');
select is(api.recalculate_employee(tests.var('emp')::uuid) ->> 'training_rate', '100.00', 'HR admin recalculates');
select lives_ok($$select api.recalculate_employee(tests.var('other')::uuid)$$, 'and restores a missing row');
select tests.clear_authentication();
select is(tests.verify_stats_count(), 0, 'verify_stats is empty again');
select is(tests.event_count(tests.var('emp')::uuid, 'stats.updated') > 0, true, 'stats.updated events are emitted');
select * from finish();
rollback;
