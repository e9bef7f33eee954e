-- Analysts: the analytics views are readable by role analyst; each analyst login sees only the
-- organisations it is bound to in app.analyst_organizations (an unbound one sees nothing); no
-- writes, no api schema, no columns beyond what the views need.
begin;
select plan(30);

select views_are('analytics', array['assignments_flat', 'compliance_by_department', 'compliance_by_location',
                                    'compliance_by_module', 'compliance_by_month', 'audit_summary',
                                    'usage_weekly'],
                 'the analytics schema holds the seven documented views');
select is((select count(*)::integer from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = 'analytics' and c.relkind = 'v' and obj_description(c.oid, 'pg_class') is not null), 7,
          'every analytics view has a comment');

-- Two organisations with data.
select 'setup: ' || tests.set_var('org1', tests.create_org('fig-an-one')::text);
select 'setup: ' || tests.set_var('org2', tests.create_org('fig-an-two')::text);
insert into app.training_modules (org_id, name, month_key, due_date)
select o, 'M', '2025-01', app.org_today(tests.var('org1')::uuid) + 10 from unnest(array[tests.var('org1')::uuid, tests.var('org2')::uuid]) o;
select 'setup: ' || tests.create_employee(tests.var('org1')::uuid, 'p1@fig-an-one.example');
select 'setup: ' || tests.create_employee(tests.var('org1')::uuid, 'p2@fig-an-one.example');
select 'setup: ' || tests.create_employee(tests.var('org2')::uuid, 'q1@fig-an-two.example');
insert into app.training_assignments (org_id, employee_id, module_id, due_date, status)
select e.org_id, e.id, m.id, m.due_date, case when e.email like 'p1%' then 'completed' else 'not_started' end::app.assignment_status
from app.employees e join app.training_modules m on m.org_id = e.org_id
where e.org_id in (tests.var('org1')::uuid, tests.var('org2')::uuid);
select 'setup: ' || app.snapshot_compliance(app.org_today(tests.var('org1')::uuid), tests.var('org1')::uuid);
select 'setup: ' || app.snapshot_compliance(app.org_today(tests.var('org1')::uuid), tests.var('org2')::uuid);
select 'setup: ' || audit.record_event(tests.var('org1')::uuid, 'compliance_export', null, null, null, '{}');
select 'setup: ' || audit.record_event(tests.var('org2')::uuid, 'compliance_export', null, null, null, '{}');

-- Analyst logins: one bound to org1, one bound to both, one unbound.
create role fig_test_analyst_one login in role analyst;
create role fig_test_analyst_both login in role analyst;
create role fig_test_analyst_none login in role analyst;
insert into app.analyst_organizations (role_name, org_id)
values ('fig_test_analyst_one', tests.var('org1')::uuid),
       ('fig_test_analyst_both', tests.var('org1')::uuid), ('fig_test_analyst_both', tests.var('org2')::uuid);

-- Bound to org1.
set role fig_test_analyst_one;
select is((select count(*)::integer from analytics.assignments_flat where org_id = tests.var('org1')::uuid), 2,
          'bound analyst: its organisation''s assignments');
select is((select count(*)::integer from analytics.assignments_flat where org_id <> tests.var('org1')::uuid), 0,
          'bound analyst: no other organisation''s assignments');
select is((select array_agg(distinct org_id) from analytics.compliance_by_department), array[tests.var('org1')::uuid],
          'compliance_by_department: its organisation only');
select is((select compliance_rate from analytics.compliance_by_department), 50.00, 'compliance_by_department: the rate (1 of 2)');
select is((select array_agg(distinct org_id) from analytics.compliance_by_location), array[tests.var('org1')::uuid],
          'compliance_by_location: its organisation only');
select is((select array_agg(distinct org_id) from analytics.compliance_by_module), array[tests.var('org1')::uuid],
          'compliance_by_module: its organisation only');
select is((select compliance_rate from analytics.compliance_by_month where snapshot_date = app.org_today(tests.var('org1')::uuid)), 50.00,
          'compliance_by_month: its month''s snapshot');
select is((select array_agg(distinct org_id) from analytics.compliance_by_month), array[tests.var('org1')::uuid],
          'compliance_by_month: its organisation only');
select ok((select sum(events) from analytics.audit_summary where event_type = 'compliance_export') = 1,
          'audit_summary: its organisation''s audit activity only');
select is((select array_agg(distinct org_id) from analytics.audit_summary), array[tests.var('org1')::uuid],
          'audit_summary: no other organisation');
select is((select count(*)::integer from app.analyst_organizations), 1, 'it reads its own binding only');

-- What an analyst may not do.
select throws_ok(format($$insert into app.training_assignments (org_id, employee_id, module_id, due_date)
                          select org_id, employee_id, module_id, due_date + 1 from analytics.assignments_flat limit 1$$),
                 '42501', null, 'analysts cannot insert');
select throws_ok($$update app.employees set job_title = 'x'$$, '42501', null, 'analysts cannot update');
select throws_ok($$delete from app.compliance_snapshots$$, '42501', null, 'analysts cannot delete');
select throws_ok('select * from api.employees', '42501', null, 'analysts cannot use the api schema');
select throws_ok('select email from app.employees', '42501', null, 'analysts cannot read employee e-mail addresses');
select throws_ok('select source_record from app.employees', '42501', null, 'analysts cannot read raw source records');
select throws_ok('select * from app.app_users', '42501', null, 'analysts cannot read users');
select throws_ok('select * from app.notifications', '42501', null, 'analysts cannot read notifications');
select throws_ok('select old_values from audit.log', '42501', null, 'analysts cannot read audit values');
select throws_ok($$insert into app.analyst_organizations values ('fig_test_analyst_one', gen_random_uuid())$$, '42501', null,
                 'analysts cannot bind themselves to more organisations');
reset role;

-- Bound to both.
set role fig_test_analyst_both;
select is((select count(distinct org_id)::integer from analytics.assignments_flat), 2, 'an analyst bound to two organisations sees both');
select is((select count(*)::integer from analytics.compliance_by_department), 2, 'both organisations'' departments');
reset role;

-- Unbound: nothing at all.
set role fig_test_analyst_none;
select is_empty('select * from analytics.assignments_flat', 'unbound analyst: no assignments');
select is_empty('select * from analytics.compliance_by_department', 'unbound analyst: no department figures');
select is_empty('select * from analytics.compliance_by_module', 'unbound analyst: no module figures');
select is_empty('select * from analytics.audit_summary', 'unbound analyst: no audit activity');
reset role;

-- A member of analyst that switches to the group role itself is unbound, hence sees nothing.
set role fig_test_analyst_one;
set role analyst;
select is_empty('select * from analytics.compliance_by_month', 'SET ROLE analyst sees nothing (the group role is never bound)');
reset role;

select * from finish();
rollback;
