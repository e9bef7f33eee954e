-- A department or location filter that is not one of the organisation's answers 404, in every
-- figure that takes it: api.compliance_report (the PDF's figures) as api.compliance_rate, never
-- rate 100.00 and "target met" about nothing; for an employee too.
begin;
select plan(11);

select 'setup: ' || tests.set_var('org', tests.create_org('fig-filters')::text);
select 'setup: ' || tests.set_var('other_org', tests.create_org('fig-filters-other')::text);
select 'setup: ' || tests.set_var('dept', (select id::text from app.departments where org_id = tests.var('org')::uuid));
select 'setup: ' || tests.set_var('loc', (select id::text from app.locations where org_id = tests.var('org')::uuid));
select 'setup: ' || tests.set_var('other_dept', (select id::text from app.departments where org_id = tests.var('other_org')::uuid));
select 'setup: ' || tests.set_var('other_loc', (select id::text from app.locations where org_id = tests.var('other_org')::uuid));
select 'setup: ' || tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);
select 'setup: ' || tests.set_var('emp', tests.create_user(tests.var('org')::uuid, 'employee')::text);

select tests.authenticate_as(tests.var('hr')::uuid, 'GET', '/rpc/compliance_report');
select throws_ok(format('select api.compliance_report(department_id => %L)', gen_random_uuid()),
                 'PT404', null, 'compliance_report: an unknown department is not found (404)');
select throws_like(format('select api.compliance_report(department_id => %L)', tests.var('other_dept')),
                   'department % not found', 'another organisation''s department neither');
select throws_ok(format('select api.compliance_report(location_id => %L)', gen_random_uuid()),
                 'PT404', null, 'an unknown location is not found (404)');
select throws_like(format('select api.compliance_report(location_id => %L)', tests.var('other_loc')),
                   'location % not found', 'another organisation''s location neither');
select throws_ok(format('select api.compliance_report(department_id => %L, location_id => %L)',
                        tests.var('dept'), gen_random_uuid()),
                 'PT404', null, 'a known department with an unknown location: 404');
select is(api.compliance_report(department_id => tests.var('dept')::uuid,
                                location_id => tests.var('loc')::uuid) -> 'filters' ->> 'department_id',
          tests.var('dept'), 'the organisation''s own department and location answer a report');
select is(api.compliance_report() -> 'summary' ->> 'rate', '100.00', 'no filter: the whole organisation');
select throws_ok(format('select api.compliance_rate(department => %L)', gen_random_uuid()),
                 'PT404', null, 'compliance_rate answers the same (404)');
select tests.clear_authentication();

select tests.authenticate_as(tests.var('emp')::uuid, 'GET', '/rpc/compliance_rate');
select throws_ok(format('select api.compliance_rate(department => %L)', gen_random_uuid()),
                 'PT404', null, 'an employee''s rate with an unknown department: 404, not 100.00');
select throws_ok(format('select api.compliance_rate(location => %L)', tests.var('other_loc')),
                 'PT404', null, 'nor another organisation''s location');
select is(api.compliance_rate(department => tests.var('dept')::uuid), 100.00,
          'their own department answers their own figure');
select tests.clear_authentication();

select * from finish();
rollback;
