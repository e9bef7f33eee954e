-- The engine's public surface: its api functions, their volatility, comments, grants.
begin;
select plan(8);

do $$ begin perform tests.set_var('fns', 'update_assignment_status,record_assignment_result,exempt_assignment,unexempt_assignment,update_requirement_status,submit_requirement,review_requirement,check_tier_advancement,switch_tier,recalculate_employee,deactivate_employee,mark_notifications_read'); end $$;

select is((select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname = 'api' and p.proname = any (string_to_array(tests.var('fns'), ','))),
          12, 'the engine''s twelve api functions exist, none overloaded');
select is((select array_agg(p.proname::text order by p.proname) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname = 'api' and p.proname = any (string_to_array(tests.var('fns'), ','))
             and p.provolatile = 's'),
          array['check_tier_advancement'], 'only the check is STABLE (GET); the writes are VOLATILE');
select is((select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname = 'api' and p.proname = any (string_to_array(tests.var('fns'), ','))
             and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''), 0, 'each has a COMMENT');
select is((select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname = 'api' and p.proname = any (string_to_array(tests.var('fns'), ','))
             and not has_function_privilege('authenticated', p.oid, 'execute')), 0,
          'authenticated may execute each');
select is((select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname = 'api' and p.proname = any (string_to_array(tests.var('fns'), ','))
             and (has_function_privilege('anon', p.oid, 'execute')
                  or has_function_privilege('sync_worker', p.oid, 'execute'))), 0,
          'anon and the sync worker may not');
select is((select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('api', 'app') and p.prosecdef
             and not coalesce(p.proconfig @> array['search_path=""'], false)), 0,
          'every SECURITY DEFINER function pins search_path');
select ok(has_function_privilege('sync_worker', 'app.run_daily_jobs(uuid, date)', 'execute'),
          'the sync worker runs the daily job');
select ok(not has_function_privilege('authenticated', 'app.run_daily_jobs(uuid, date)', 'execute')
          and not has_function_privilege('authenticated', 'app.refresh_stats(uuid[], uuid[])', 'execute')
          and not has_function_privilege('authenticated', 'app.apply_tier_switch(uuid, uuid, uuid, app.tier_change_kind, text)', 'execute'),
          'API users cannot call the engine''s internals');
select * from finish();
rollback;
