-- An api view over an app table grants its callers exactly what the table grants them: the
-- same table privileges and the same column-listed INSERT/UPDATE privileges. Grants are written
-- once, beside each table; this file mirrors them onto the views after every migrate.
do $mirror$
declare
    g record;
begin
    for g in
        select distinct tp.table_name, tp.privilege_type, tp.grantee
        from information_schema.table_privileges tp
        join information_schema.views v
          on v.table_schema = 'api' and v.table_name = tp.table_name
        where tp.table_schema = 'app' and tp.grantee in ('authenticated', 'anon')
    loop
        execute format('grant %s on api.%I to %I', g.privilege_type, g.table_name, g.grantee);
    end loop;
    for g in
        select cp.table_name, cp.privilege_type, cp.grantee,
               string_agg(quote_ident(cp.column_name), ', ') as columns
        from information_schema.column_privileges cp
        join information_schema.columns vc
          on vc.table_schema = 'api' and vc.table_name = cp.table_name
         and vc.column_name = cp.column_name
        where cp.table_schema = 'app' and cp.grantee in ('authenticated', 'anon')
          and cp.privilege_type in ('INSERT', 'UPDATE')
          and not exists (  -- a table-wide grant is already mirrored above
              select from information_schema.table_privileges tp
              where tp.table_schema = 'app' and tp.table_name = cp.table_name
                and tp.grantee = cp.grantee and tp.privilege_type = cp.privilege_type)
        group by cp.table_name, cp.privilege_type, cp.grantee
    loop
        execute format('grant %s (%s) on api.%I to %I',
                       g.privilege_type, g.columns, g.table_name, g.grantee);
    end loop;
end
$mirror$;
