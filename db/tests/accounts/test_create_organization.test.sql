-- Onboarding (app.create_organization): an organisation with its first superadmin; the same
-- values again change nothing; refusals name the problem; an organisation whose last
-- superadmin's employment ended gets a new one from the operator.
begin;
select plan(9);

select is(app.create_organization('Lake Clinic', 'lake-clinic', 'America/Detroit', 'Root@Lake.example') ->> 'created',
          'true', 'the organisation and its superadmin are created');
select tests.set_var('org', (select id::text from app.organizations where slug = 'lake-clinic'));
select is((select array[app_role::text, email] from app.app_users where org_id = tests.var('org')::uuid),
          array['superadmin', 'root@lake.example'], 'its first superadmin');
select is(app.create_organization('Lake Clinic', 'lake-clinic', 'America/Detroit', 'root@lake.example') ->> 'created',
          'false', 'the same values again change nothing');
select throws_ok($$select app.create_organization('Other', 'lake-clinic', 'America/Detroit', 'a@b.example')$$,
                 '23505', 'the slug lake-clinic is taken', 'a slug taken by another organisation');
select throws_ok($$select app.create_organization('Sea', 'sea-clinic', 'Atlantis/Capital', 'a@b.example')$$,
                 '22023', 'unknown time zone ''Atlantis/Capital''', 'an unknown time zone');
select throws_ok($$select app.create_organization('Lake Clinic', 'lake-clinic', 'America/Detroit', 'new@lake.example')$$,
                 '23505', 'organisation lake-clinic already has a superadmin',
                 'no second superadmin while one is active');

-- The superadmin's employment ends: access ends, and the operator names a new superadmin.
do $$
declare v_emp uuid := tests.create_employee(tests.var('org')::uuid, 'root@lake.example');
begin
    update app.app_users set employee_id = v_emp where org_id = tests.var('org')::uuid;
    update app.employees set status = 'terminated' where id = v_emp;
end $$;
select is((select active from app.app_users where email = 'root@lake.example'), false,
          'the last superadmin''s login ends with the employment');
select is(app.create_organization('Lake Clinic', 'lake-clinic', 'America/Detroit', 'new@lake.example') ->> 'created',
          'true', 'the operator adds a superadmin to an organisation without an active one');
select is((select count(*)::int from app.app_users where org_id = tests.var('org')::uuid
           and app_role = 'superadmin' and active), 1, 'one active superadmin again');

select * from finish();
rollback;
