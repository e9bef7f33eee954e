-- Catalog invariants of the security model (DESIGN §6, CONVENTIONS "SQL").
--
-- Every assertion is a catalog query listing the OFFENDERS, so it keeps holding (or fails with
-- the offending objects named) as tables, views and functions are added by later files.
-- Our schemas: app, api, audit, sync, analytics. Application roles: authenticator, anon,
-- authenticated, sync_worker, web_app, analyst.
begin;
select plan(27);

-- Tables ----------------------------------------------------------------------------------------

select cmp_ok(
    (select count(*)::int from pg_catalog.pg_class c
     where c.relkind in ('r', 'p') and c.relnamespace::regnamespace::text in ('app', 'audit', 'sync')),
    '>=', 22,
    'app, audit and sync hold the domain tables (the checks below are not vacuous)');

select is_empty($$
    select format('%s.%s: %s', n.nspname, c.relname,
                  concat_ws(' and ', case when not c.relrowsecurity then 'RLS not enabled' end,
                                     case when not c.relforcerowsecurity then 'RLS not forced' end))
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and n.nspname in ('app', 'audit', 'sync')
      and not (c.relrowsecurity and c.relforcerowsecurity)
    order by 1 $$,
    'every table of app, audit and sync has row-level security enabled AND forced');

select is_empty($$
    select format('%s.%s (relkind %s)', n.nspname, c.relname, c.relkind)
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('public', 'api', 'analytics') and c.relkind in ('r', 'p', 'm', 'f', 'S')
      and not exists (select from pg_catalog.pg_depend d   -- extension members are not ours
                      where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid
                        and d.deptype = 'e')
      and not (n.nspname = 'public' and c.relname ~ '^_?yoyo_')  -- the migration tool's bookkeeping
    order by 1 $$,
    'no data lives in api, analytics or public: tables, sequences and materialized views belong in app, audit or sync');

-- Views -------------------------------------------------------------------------------------------

select cmp_ok(
    (select count(*)::int from pg_catalog.pg_class c where c.relkind = 'v' and c.relnamespace = 'api'::regnamespace),
    '>=', 20, 'api serves views (the view checks below are not vacuous)');

select is_empty($$
    select format('api.%s (reloptions %s)', c.relname, coalesce(c.reloptions::text, 'none'))
    from pg_catalog.pg_class c
    where c.relkind = 'v' and c.relnamespace = 'api'::regnamespace
      and not exists (select from pg_catalog.pg_options_to_table(c.reloptions) o
                      where o.option_name = 'security_invoker'
                        and lower(o.option_value) in ('true', 'on', '1', 'yes'))
    order by 1 $$,
    'every api view is security_invoker = true (RLS applies to the caller, not the view owner)');

select is_empty($$
    select format('analytics.%s (reloptions %s)', c.relname, coalesce(c.reloptions::text, 'none'))
    from pg_catalog.pg_class c
    where c.relkind = 'v' and c.relnamespace = 'analytics'::regnamespace
      and not exists (select from pg_catalog.pg_options_to_table(c.reloptions) o
                      where o.option_name = 'security_invoker'
                        and lower(o.option_value) in ('true', 'on', '1', 'yes'))
      and not exists (select from pg_catalog.pg_options_to_table(c.reloptions) o
                      where o.option_name = 'security_barrier'
                        and lower(o.option_value) in ('true', 'on', '1', 'yes'))
    order by 1 $$,
    'every analytics view is security_invoker (or, when it runs as its owner on purpose, a security_barrier view)');

-- Functions ---------------------------------------------------------------------------------------

select cmp_ok(
    (select count(*)::int from pg_catalog.pg_proc p
     where p.prosecdef and p.pronamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')),
    '>=', 5, 'our schemas have SECURITY DEFINER functions (the definer checks below are not vacuous)');

select is_empty($$
    select p.oid::regprocedure::text
    from pg_catalog.pg_proc p
    where p.prosecdef
      and p.pronamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')
      and not exists (select from unnest(p.proconfig) cfg where cfg like 'search_path=%')
    order by 1 $$,
    'every SECURITY DEFINER function of app, api, audit, sync, analytics pins search_path');

select is_empty($$
    select format('%s: %s', p.oid::regprocedure, cfg)
    from pg_catalog.pg_proc p, unnest(p.proconfig) cfg
    where p.prosecdef
      and p.pronamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')
      and cfg like 'search_path=%'
      and (cfg ~* '(^|[=,\s"])public($|[,\s"])' or cfg like '%$user%')
    order by 1 $$,
    'no SECURITY DEFINER function puts public or "$user" on its pinned search_path');

select is_empty($$
    select p.oid::regprocedure::text
    from pg_catalog.pg_proc p
    cross join lateral pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
    where p.prosecdef
      and p.pronamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')
      and a.grantee = 0 and a.privilege_type = 'EXECUTE'
    order by 1 $$,
    'no SECURITY DEFINER function of our schemas is executable by PUBLIC');

select is_empty($$
    select p.oid::regprocedure::text
    from pg_catalog.pg_proc p
    where p.prosecdef
      and p.pronamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')
      and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE')
      and p.oid <> 'app.pre_request()'::regprocedure
    order by 1 $$,
    'anon executes no SECURITY DEFINER function but app.pre_request()');

select is_empty($$
    select format('%s (%s)', p.oid::regprocedure, case when p.prosecdef then 'definer' else 'invoker' end)
    from pg_catalog.pg_proc p
    where p.pronamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')
      and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE')
      and p.oid not in ('app.pre_request()'::regprocedure, 'api.health()'::regprocedure)
    order by 1 $$,
    'anon reaches health only: it executes no function of our schemas but api.health() and app.pre_request()');

select is_empty($$
    select format('api.%s has %s signatures: %s', p.proname, count(*),
                  string_agg(p.oid::regprocedure::text, ', ' order by p.oid::regprocedure::text))
    from pg_catalog.pg_proc p
    where p.pronamespace = 'api'::regnamespace
    group by p.proname
    having count(*) > 1
    order by 1 $$,
    'no api function name is overloaded (PostgREST could not tell the signatures apart)');

select is_empty($$
    select format('%s %s', case o.classid when 'pg_catalog.pg_class'::regclass then 'view/relation'
                                          else 'function' end, o.name)
    from (
        select 'pg_catalog.pg_class'::regclass as classid, format('api.%s', c.relname) as name
        from pg_catalog.pg_class c
        where c.relnamespace = 'api'::regnamespace and c.relkind = 'v'
          and pg_catalog.obj_description(c.oid, 'pg_class') is null
        union all
        select 'pg_catalog.pg_class'::regclass, format('analytics.%s', c.relname)
        from pg_catalog.pg_class c
        where c.relnamespace = 'analytics'::regnamespace and c.relkind in ('v', 'm')
          and pg_catalog.obj_description(c.oid, 'pg_class') is null
        union all
        select 'pg_catalog.pg_proc'::regclass, p.oid::regprocedure::text
        from pg_catalog.pg_proc p
        where p.pronamespace::regnamespace::text in ('api', 'analytics')
          and pg_catalog.obj_description(p.oid, 'pg_proc') is null
    ) o
    order by 1 $$,
    'every view and function of api and analytics has a COMMENT (it becomes the OpenAPI text)');

-- Roles ---------------------------------------------------------------------------------------

select is_empty($$
    select r.name || ': missing'
    from unnest(array['authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst']) r(name)
    where not exists (select from pg_catalog.pg_roles x where x.rolname = r.name)
    union all
    select format('%s: %s', x.rolname, concat_ws(', ', case when x.rolsuper then 'SUPERUSER' end,
                                                     case when x.rolbypassrls then 'BYPASSRLS' end,
                                                     case when x.rolcreaterole then 'CREATEROLE' end,
                                                     case when x.rolcreatedb then 'CREATEDB' end))
    from pg_catalog.pg_roles x
    where x.rolname in ('authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst')
      and (x.rolsuper or x.rolbypassrls or x.rolcreaterole or x.rolcreatedb)
    order by 1 $$,
    'every application role exists and none is SUPERUSER, BYPASSRLS, CREATEROLE or CREATEDB');

select is_empty($$
    with recursive member_of(role_name, granted) as (
        select x.rolname, m.roleid
        from pg_catalog.pg_roles x
        join pg_catalog.pg_auth_members m on m.member = x.oid
        where x.rolname in ('authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst')
        union
        select mo.role_name, m.roleid
        from member_of mo join pg_catalog.pg_auth_members m on m.member = mo.granted
    )
    select format('%s is a member of %s (%s)', mo.role_name, g.rolname,
                  concat_ws(', ', case when g.rolsuper then 'SUPERUSER' end,
                                  case when g.rolbypassrls then 'BYPASSRLS' end))
    from member_of mo join pg_catalog.pg_roles g on g.oid = mo.granted
    where g.rolsuper or g.rolbypassrls
    order by 1 $$,
    'no application role is (even indirectly) a member of a SUPERUSER or BYPASSRLS role');

select is_empty($$
    select format('%s owns %s %s.%s', c.relowner::regrole, case c.relkind when 'v' then 'view'
                  when 'm' then 'materialized view' when 'S' then 'sequence' else 'table' end,
                  c.relnamespace::regnamespace, c.relname)
    from pg_catalog.pg_class c
    where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      and c.relowner::regrole::text in ('authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst')
    order by 1 $$,
    'no application role owns a table, view or sequence (an owner could switch RLS off)');

select is_empty($$
    select format('%s owns function %s', p.proowner::regrole, p.oid::regprocedure)
    from pg_catalog.pg_proc p
    where p.proowner::regrole::text in ('authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst')
    union all
    select format('%s owns schema %s', n.nspowner::regrole, n.nspname)
    from pg_catalog.pg_namespace n
    where n.nspowner::regrole::text in ('authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst')
    order by 1 $$,
    'no application role owns a function or a schema');

select is_empty($$
    select format('%s may %s %s.%s', r.name, priv, c.relnamespace::regnamespace, c.relname)
    from pg_catalog.pg_class c
    cross join unnest(array['authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst']) r(name)
    cross join unnest(array['TRUNCATE', 'REFERENCES', 'TRIGGER']) priv
    where c.relkind in ('r', 'p', 'v', 'm', 'f')
      and c.relnamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')
      and pg_catalog.has_table_privilege(r.name, c.oid, priv)
    order by 1 $$,
    'no application role may TRUNCATE (it ignores RLS), REFERENCES or TRIGGER any of our relations');

select is_empty($$
    select format('%s may %s %s.%s', r.name, priv, c.relnamespace::regnamespace, c.relname)
    from pg_catalog.pg_class c
    cross join unnest(array['authenticator', 'anon']) r(name)
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) priv
    where c.relkind in ('r', 'p', 'v', 'm', 'f')
      and c.relnamespace::regnamespace::text in ('app', 'api', 'audit', 'sync', 'analytics')
      and (pg_catalog.has_table_privilege(r.name, c.oid, priv)
           or (priv <> 'DELETE' and pg_catalog.has_any_column_privilege(r.name, c.oid, priv)))
    order by 1 $$,
    'authenticator (it logs in, no rights) and anon (health only) read and write no relation of our schemas');

select is_empty($$
    select format('%s may %s %s.%s as a whole table (grant it column by column)',
                  a.grantee::regrole, a.privilege_type, c.relnamespace::regnamespace, c.relname)
    from pg_catalog.pg_class c
    cross join lateral pg_catalog.aclexplode(c.relacl) a
    where c.relkind in ('r', 'p', 'v')
      and c.relnamespace::regnamespace::text in ('app', 'api')
      and a.grantee <> c.relowner
      and a.privilege_type in ('INSERT', 'UPDATE')
    order by 1 $$,
    'clients get INSERT and UPDATE on app tables and api views column by column, never table-wide');

select is_empty($$
    select format('authenticated may UPDATE %s.%s.%s', c.relnamespace::regnamespace, c.relname, a.attname)
    from pg_catalog.pg_class c
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relkind in ('r', 'p', 'v')
      and c.relnamespace::regnamespace::text in ('app', 'api', 'audit', 'sync')
      and a.attname in ('id', 'org_id', 'created_at', 'updated_at', 'tx_id', 'hash', 'prev_hash')
      and pg_catalog.has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE')
    order by 1 $$,
    'authenticated cannot UPDATE system columns (id, org_id, created_at, updated_at, tx_id, hash) anywhere');

select is_empty($$
    select format('%s may %s audit.log', r.name, priv)
    from unnest(array['authenticator', 'anon', 'authenticated', 'sync_worker', 'web_app', 'analyst']) r(name)
    cross join unnest(array['UPDATE', 'DELETE', 'TRUNCATE']) priv
    where pg_catalog.has_table_privilege(r.name, 'audit.log', priv)
       or (priv = 'UPDATE' and pg_catalog.has_any_column_privilege(r.name, 'audit.log', priv))
    order by 1 $$,
    'the audit trail is append-only for every application role (no UPDATE, DELETE, TRUNCATE)');

-- Policies ------------------------------------------------------------------------------------

select is_empty($$
    select format('%s: policy "%s" is %s', p.polrelid::regclass, p.polname,
                  concat_ws(' and ', case when p.polcmd = '*' then 'FOR ALL' end,
                                     case when 0 = any (p.polroles) then 'TO PUBLIC' end,
                                     case when not p.polpermissive then 'RESTRICTIVE (say why, then allow-list it here)' end))
    from pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    where c.relnamespace::regnamespace::text in ('app', 'audit', 'sync')
      and (p.polcmd = '*' or 0 = any (p.polroles) or not p.polpermissive)
    order by 1 $$,
    'policies are one per command and name their roles: no FOR ALL, no TO PUBLIC, no unexplained RESTRICTIVE');

select is_empty($$
    select format('%s: policy "%s" (%s) %s', p.polrelid::regclass, p.polname, p.polcmd,
                  case when pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true' then 'USING (true)'
                       else 'WITH CHECK (true)' end)
    from pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    where c.relnamespace::regnamespace::text in ('app', 'audit', 'sync')
      and p.polcmd in ('a', 'w', 'd', '*')
      and (pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true'
           or pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) = 'true')
    order by 1 $$,
    'no write policy is USING (true) or WITH CHECK (true)');

select is_empty($$
    select format('%s: policy "%s" calls %s() per row; wrap it: (select %s())', p.polrelid::regclass,
                  p.polname, m[1], m[1])
    from pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    cross join lateral (values (pg_catalog.pg_get_expr(p.polqual, p.polrelid)),
                               (pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))) e(expr)
    cross join lateral regexp_matches(
        regexp_replace(e.expr, 'SELECT app\.[a-z_]+\(', '', 'g'),
        '(app\.(?:jwt_claims|current_[a-z_]+|direct_report_ids))\(', 'g') m
    where c.relnamespace::regnamespace::text in ('app', 'audit', 'sync')
      and e.expr is not null
    order by 1 $$,
    'policies call the identity helpers inside a sub-select, so each runs once per query (InitPlan), not per row');

select is_empty($$
    select format('%s: policy "%s" (%s) does not scope %s by (select app.current_org_id())',
                  p.polrelid::regclass, p.polname, p.polcmd, e.clause)
    from pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    cross join lateral (values ('USING', pg_catalog.pg_get_expr(p.polqual, p.polrelid)),
                               ('WITH CHECK', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))) e(clause, expr)
    where c.relnamespace::regnamespace::text in ('app', 'audit', 'sync')
      and 'authenticated'::regrole = any (p.polroles)
      and e.expr is not null
      and position(format('%s = ( SELECT app.current_org_id() AS current_org_id)',
                          case when c.relname = 'organizations' then 'id' else 'org_id' end) in e.expr) = 0
    order by 1 $$,
    'every policy for authenticated (USING and WITH CHECK) keeps the caller inside their organisation');

select * from finish();
rollback;
