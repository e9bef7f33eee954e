-- The public surface of the compliance figures: api functions (who may call them, volatility,
-- comments), views (security invoker, comments), the counters' policies.
begin;
select plan(26);

select has_function('api', 'compliance_rate', array['uuid', 'uuid'], 'api.compliance_rate(department, location)');
select has_function('api', 'dashboard', array[]::name[], 'api.dashboard()');
select has_function('api', 'employee_detail', array['uuid'], 'api.employee_detail(employee_id)');
select has_function('api', 'compliance_as_of', array['date', 'text', 'text'], 'api.compliance_as_of(day, department, location)');
select has_function('api', 'overdue_as_of', array['date', 'text', 'text', 'integer', 'uuid'],
                    'api.overdue_as_of(day, department, location, page_size, after)');
select has_function('api', 'employee_compliance_trend', array['uuid', 'date', 'date'],
                    'api.employee_compliance_trend(employee_id, from_day, to_day)');
select has_function('app', 'take_compliance_snapshots', array['date', 'uuid'], 'app.take_compliance_snapshots(day) for the daily job');

select volatility_is('api', f, 'stable', format('api.%s is STABLE (GET)', f))
from unnest(array['compliance_rate', 'dashboard', 'employee_detail', 'compliance_as_of', 'overdue_as_of', 'employee_compliance_trend']) f;

select is((select array_agg(p.proname::text order by p.proname) from pg_proc p
           where p.pronamespace = 'api'::regnamespace
             and p.proname in ('compliance_rate', 'dashboard', 'employee_detail', 'compliance_as_of', 'overdue_as_of', 'employee_compliance_trend')
             and has_function_privilege('authenticated', p.oid, 'execute')
             and not has_function_privilege('anon', p.oid, 'execute')),
          array['compliance_as_of', 'compliance_rate', 'dashboard', 'employee_compliance_trend', 'employee_detail', 'overdue_as_of'],
          'authenticated may call the figure functions, anon may not');
select ok(not has_function_privilege('authenticated', 'app.take_compliance_snapshots(date, uuid)', 'execute'),
          'API users cannot take snapshots');
select ok(not has_function_privilege('authenticated', 'app.rebuild_compliance_counters(uuid)', 'execute'),
          'API users cannot rebuild the counters');
select is((select count(*)::integer from pg_proc p
           where p.pronamespace = 'api'::regnamespace
             and p.proname in ('compliance_rate', 'dashboard', 'employee_detail', 'compliance_as_of', 'overdue_as_of', 'employee_compliance_trend')
             and obj_description(p.oid, 'pg_proc') is not null), 6, 'every figure function has a comment');
select is((select count(*)::integer from pg_proc p
           where p.pronamespace = 'api'::regnamespace
             and p.proname in ('compliance_rate', 'dashboard', 'employee_detail', 'compliance_as_of', 'overdue_as_of', 'employee_compliance_trend')
             and p.prosecdef), 0, 'the figure functions run as the caller (RLS applies)');

select is((select array_agg(c.relname::text order by c.relname) from pg_class c
           where c.relnamespace = 'api'::regnamespace
             and c.relname in ('compliance_matrix', 'department_compliance', 'location_compliance',
                               'module_compliance', 'upcoming_deadlines', 'compliance_trend')
             and 'security_invoker=true' = any (c.reloptions)
             and obj_description(c.oid, 'pg_class') is not null
             and has_table_privilege('authenticated', c.oid, 'select')
             and not has_table_privilege('anon', c.oid, 'select')),
          array['compliance_matrix', 'compliance_trend', 'department_compliance', 'location_compliance',
                'module_compliance', 'upcoming_deadlines'],
          'the figure views: security invoker, commented, readable by authenticated only');
select is((select count(*)::integer from pg_class c
           where c.relnamespace = 'analytics'::regnamespace and c.relkind = 'v'
             and 'security_invoker=true' = any (c.reloptions)
             and has_table_privilege('analyst', c.oid, 'select')
             and not has_table_privilege('authenticated', c.oid, 'select')), 7,
          'the analytics views: security invoker, readable by analyst, not by API users');

select policies_are('app', 'compliance_counters',
                    array['staff read compliance counters of their org',
                          'analysts read compliance_counters of their bound orgs'],
                    'compliance_counters: read policies only');
select policies_are('app', 'compliance_headcounts',
                    array['staff read compliance headcounts of their org',
                          'analysts read compliance_headcounts of their bound orgs'],
                    'compliance_headcounts: read policies only');
select policies_are('app', 'analyst_organizations', array['analysts read their own bindings'],
                    'analyst_organizations: an analyst reads its own bindings');
select ok((select relrowsecurity and relforcerowsecurity from pg_class where oid = 'app.compliance_counters'::regclass),
          'compliance_counters: RLS enabled and forced');
select ok((select relrowsecurity and relforcerowsecurity from pg_class where oid = 'app.analyst_organizations'::regclass),
          'analyst_organizations: RLS enabled and forced');
select ok(not has_table_privilege('authenticated', 'app.compliance_counters', 'insert')
          and not has_table_privilege('authenticated', 'app.compliance_counters', 'update')
          and not has_table_privilege('analyst', 'app.compliance_counters', 'update'),
          'nobody but the database writes the counters');

select * from finish();
rollback;
