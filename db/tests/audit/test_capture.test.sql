-- Row triggers of the audit trail (DESIGN §9): every insert, update and delete
-- on the domain tables, with old/new values, changed fields, actor, organisation and employee.
begin;
select plan(34);

-- Every table of schema app is audited, except the side effects and derived tables.
select is(
    array(select c.relname::text
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'app' and c.relkind = 'r'
            and c.relname <> all (audit.untracked_tables())
            and (select count(*) from pg_trigger t
                 where t.tgrelid = c.oid and t.tgname in ('audit_insert', 'audit_update', 'audit_delete')
                   and t.tgenabled = 'O') <> 3
          order by 1),
    '{}'::text[], 'every domain table has its three audit triggers');
select is(
    array(select c.relname::text || '.' || t.tgname
          from pg_trigger t join pg_class c on c.oid = t.tgrelid
          where c.relnamespace = 'app'::regnamespace and c.relname = any (audit.untracked_tables())
            and t.tgname like 'audit\_%'),
    '{}'::text[], 'events, notifications, stats, snapshots and counters are not audited');
select ok((select bool_and(t.tgtype & 1 = 0) from pg_trigger t
           where t.tgname in ('audit_insert', 'audit_update', 'audit_delete')),
          'the audit triggers are statement-level');

select tests.set_var('org', tests.create_org('audit-capture')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@capture.example')::text);

-- INSERT: the whole new row.
select tests.set_var('emp', tests.create_employee(tests.var('org')::uuid, 'cora@capture.example')::text);
select is((select (l.op, l.event_type, l.entity_id, l.employee_id::text, l.org_id::text)::text
           from audit.log l where l.table_name = 'employees' and l.entity_id = tests.var('emp')
            and l.op = 'INSERT'),
          (select ('INSERT', 'row_insert', tests.var('emp'), tests.var('emp'), tests.var('org'))::text),
          'an insert writes row_insert with entity, employee and organisation');
select is((select l.new_values ->> 'email' from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp') and l.op = 'INSERT'),
          'cora@capture.example', 'new_values holds the inserted row');
select ok((select l.old_values is null and l.changed_fields is null from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp') and l.op = 'INSERT'),
          'an insert has no old values');
select is((select count(*)::int from audit.log l
           where l.table_name = 'organizations' and l.entity_id = tests.var('org') and l.op = 'INSERT'
             and l.org_id = tests.var('org')::uuid),
          1, 'the organizations table is audited under its own id');

-- UPDATE: only the changed columns.
update app.employees set job_title = 'Nurse', last_name = 'Changed'
where org_id = tests.var('org')::uuid and id = tests.var('emp')::uuid;
select is((select l.changed_fields from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp') and l.op = 'UPDATE'),
          '{last_name,full_name,job_title}'::text[],
          'changed_fields lists the changed columns (generated ones too), in column order');
select is((select l.old_values from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp') and l.op = 'UPDATE'),
          '{"job_title": "Staff", "last_name": "Test", "full_name": "Cora Test"}'::jsonb,
          'old_values holds the old values of the changed columns only');
select is((select l.new_values from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp') and l.op = 'UPDATE'),
          '{"job_title": "Nurse", "last_name": "Changed", "full_name": "Cora Changed"}'::jsonb,
          'new_values holds the new values of the changed columns only');
select is((select l.event_type from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp') and l.op = 'UPDATE'),
          'row_update', 'an update writes row_update');

-- Updates that change nothing worth auditing write nothing.
update app.employees set job_title = 'Nurse'
where org_id = tests.var('org')::uuid and id = tests.var('emp')::uuid;
update app.employees set updated_at = now() - interval '1 day', last_synced_at = now()
where org_id = tests.var('org')::uuid and id = tests.var('emp')::uuid;
update app.employees set job_title = 'Nurse' where false;
select is((select count(*)::int from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp') and l.op = 'UPDATE'),
          1, 'no audit row for an update that changes nothing, or only updated_at / last_synced_at');

-- DELETE: the whole old row.
insert into app.locations (org_id, name) values (tests.var('org')::uuid, 'Pop-up');
select tests.set_var('loc', (select id::text from app.locations
                             where org_id = tests.var('org')::uuid and name = 'Pop-up'));
delete from app.locations where org_id = tests.var('org')::uuid and id = tests.var('loc')::uuid;
select is((select (l.event_type, l.old_values ->> 'name', l.new_values is null)::text from audit.log l
           where l.table_name = 'locations' and l.entity_id = tests.var('loc') and l.op = 'DELETE'),
          '(row_delete,Pop-up,t)', 'a delete writes row_delete with the old row');

-- Tables keyed by employee: entity_id is the employee.
select is((select count(*)::int from audit.log l
           where l.table_name = 'employee_tiers' and l.op = 'INSERT'
             and l.entity_id = l.employee_id::text and l.org_id = tests.var('org')::uuid),
          (select count(*)::int from app.employee_tiers t where t.org_id = tests.var('org')::uuid),
          'employee_tiers rows are audited with the employee as entity');

-- The actor: a signed-in user acts as user + application role, through the role authenticated.
select tests.authenticate_as(tests.var('hr')::uuid);
update app.employees set job_title = 'Head Nurse'
where org_id = tests.var('org')::uuid and id = tests.var('emp')::uuid;
select tests.clear_authentication();
select is((select (l.actor_user_id::text, l.actor_role, l.db_role)::text from audit.log l
           where l.table_name = 'employees' and l.entity_id = tests.var('emp')
             and l.new_values ->> 'job_title' = 'Head Nurse'),
          (select (tests.var('hr'), 'hr_admin', 'authenticated')::text),
          'a PostgREST caller is recorded as its user and application role');

-- A service process is recorded as its database role.
create function tests.h4_rename_location(p_org uuid, p_name text) returns void
language sql security definer set search_path = ''
as $$ update app.locations set name = p_name where org_id = p_org and name = 'Main' $$;
grant execute on function tests.h4_rename_location(uuid, text) to sync_worker;
set local role sync_worker;
select tests.h4_rename_location(tests.var('org')::uuid, 'Main');  -- unchanged: nothing written
select tests.h4_rename_location(tests.var('org')::uuid, 'Main');
reset role;
update app.locations set address = 'Somewhere' where org_id = tests.var('org')::uuid and name = 'Main';
set local role sync_worker;
select tests.h4_rename_location(tests.var('org')::uuid, 'Headquarters');
reset role;
select is((select (l.actor_user_id is null, l.actor_role, l.db_role)::text from audit.log l
           where l.table_name = 'locations' and l.new_values ->> 'name' = 'Headquarters'),
          '(t,sync_worker,sync_worker)', 'a service process is recorded as its database role');
select is((select (l.actor_user_id is null, l.actor_role = session_user::text)::text from audit.log l
           where l.table_name = 'locations' and l.new_values ->> 'address' = 'Somewhere'),
          '(t,t)', 'an operator''s session is recorded as its login role');

-- Bulk writes: one statement, one audit row per row.
insert into app.training_modules (org_id, name, month_key)
select tests.var('org')::uuid, 'Bulk ' || i, '2025-01' from generate_series(1, 1000) i;
select is((select count(*)::int from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'training_modules' and l.op = 'INSERT'),
          1000, 'a 1000-row insert writes 1000 audit rows');
update app.training_modules set description = 'bulk edit'
where org_id = tests.var('org')::uuid and name like 'Bulk %';
select is((select count(*)::int from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'training_modules' and l.op = 'UPDATE'
             and l.changed_fields = '{description}' and l.new_values = '{"description": "bulk edit"}'),
          1000, 'a 1000-row update writes 1000 audit rows with their own changes');
select is((select count(distinct l.entity_id)::int from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'training_modules' and l.op = 'UPDATE'),
          1000, 'each updated row is paired with its own old row');
update app.training_modules set description = case when name = 'Bulk 7' then 'only me' else description end
where org_id = tests.var('org')::uuid and name like 'Bulk %';
select is((select count(*)::int from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'training_modules'
             and l.new_values ->> 'description' = 'only me'),
          1, 'a bulk update audits only the rows it really changed');
select is((select count(*)::int from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'training_modules' and l.op = 'UPDATE'),
          1001, '... and nothing for the 999 others');

-- The single-row path and the set-based path write the same thing.
insert into app.departments (org_id, name) values (tests.var('org')::uuid, 'Solo'), (tests.var('org')::uuid, 'Pair A'),
                                                  (tests.var('org')::uuid, 'Pair B');
update app.departments set code = 'X1' where org_id = tests.var('org')::uuid and name = 'Solo';
update app.departments set code = 'X1' where org_id = tests.var('org')::uuid and name in ('Pair A', 'Pair B');
select is((select array_agg(distinct (l.changed_fields, l.old_values, l.new_values, l.employee_id)::text)
           from audit.log l join app.departments d on d.org_id = l.org_id and d.id::text = l.entity_id
           where l.org_id = tests.var('org')::uuid and l.table_name = 'departments' and l.op = 'UPDATE'
             and d.name in ('Solo', 'Pair A', 'Pair B')),
          array['({code},"{""code"": null}","{""code"": ""X1""}",)'],
          'a one-row update and a two-row update are audited alike');

-- A key change pairs nothing: both halves are written whole.
select tests.set_var('solo', (select id::text from app.departments where org_id = tests.var('org')::uuid and name = 'Solo'));
update app.departments set id = gen_random_uuid() where org_id = tests.var('org')::uuid and name = 'Solo';
select is((select array_agg((l.old_values ->> 'id' = tests.var('solo'), l.new_values ->> 'name')::text order by l.id)
           from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'departments' and l.op = 'UPDATE'
             and (l.old_values ->> 'name' = 'Solo' or l.new_values ->> 'name' = 'Solo')
             and l.changed_fields is distinct from '{code}'),
          array['(t,)', '(,Solo)'], 'a key change writes the old row and the new row whole');

-- Raw source documents are recorded as digests {"md5": ...}: insert, one-row and bulk update.
insert into app.employees (org_id, email, first_name, last_name, source_record)
values (tests.var('org')::uuid, 'raw1@capture.example', 'Raw', 'One', '{"zid": "z1"}'),
       (tests.var('org')::uuid, 'raw2@capture.example', 'Raw', 'Two', '{"zid": "z2"}');
select is((select array_agg(l.new_values -> 'source_record' order by l.new_values ->> 'email')
           from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'employees' and l.op = 'INSERT'
             and l.new_values ->> 'email' in ('raw1@capture.example', 'raw2@capture.example')),
          array[jsonb_build_object('md5', md5('{"zid": "z1"}'::jsonb::text)),
                jsonb_build_object('md5', md5('{"zid": "z2"}'::jsonb::text))],
          'an inserted raw source document is recorded as its digest');
update app.employees set source_record = '{"zid": "z1", "v": 2}'
where org_id = tests.var('org')::uuid and email = 'raw1@capture.example';
select is((select (l.changed_fields, l.old_values, l.new_values)::text from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'employees' and l.op = 'UPDATE'
             and l.changed_fields = '{source_record}'),
          (select ('{source_record}'::text[],
                   jsonb_build_object('source_record', jsonb_build_object('md5', md5('{"zid": "z1"}'::jsonb::text))),
                   jsonb_build_object('source_record', jsonb_build_object('md5', md5('{"v": 2, "zid": "z1"}'::jsonb::text))))::text),
          'a one-row update records the old and new documents as digests');
update app.employees set source_record = source_record || '{"v": 3}'
where org_id = tests.var('org')::uuid and email in ('raw1@capture.example', 'raw2@capture.example');
select is((select count(*)::int from audit.log l
           where l.org_id = tests.var('org')::uuid and l.table_name = 'employees' and l.op = 'UPDATE'
             and l.changed_fields = '{source_record}'
             and l.old_values -> 'source_record' ? 'md5' and l.new_values -> 'source_record' ? 'md5'
             and not (l.new_values -> 'source_record' ? 'zid')),
          3, 'a bulk update records them as digests too');

-- Named events carry the same actor columns.
select tests.authenticate_as(tests.var('hr')::uuid);
select tests.clear_authentication();
select tests.set_var('named', audit.record_event(tests.var('org')::uuid, 'compliance_export',
                                                 tests.var('emp')::uuid, null, 'audit.csv',
                                                 '{"rows": 3}')::text);
select is((select (l.event_type, l.op is null, l.details ->> 'rows', l.db_role = session_user::text)::text
           from audit.log l where l.org_id = tests.var('org')::uuid and l.id = tests.var('named')::bigint),
          '(compliance_export,t,3,t)', 'audit.record_event writes a named event with its actor');
select throws_ok($$select audit.record_event(null, 'compliance_export')$$, '22023',
                 'an audit event needs an organisation', 'a named event without organisation is refused');
select throws_ok(format($$select audit.record_event(%L, 'Tier-Change')$$, tests.var('org')), '22023',
                 'audit event name ''Tier-Change'' is not snake_case', 'a named event must be snake_case');
select is((select count(*)::int from audit.log l
           where l.op is not null and (l.table_name is null or l.op not in ('INSERT', 'UPDATE', 'DELETE')
                                       or l.event_type <> 'row_' || lower(l.op))),
          0, 'every row change names its table, a known op and the matching event type');

-- Nobody writes the trail directly.
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok(format($$insert into audit.log (org_id, event_type) values (%L, 'forged')$$, tests.var('org')),
                 '42501', null, 'a user cannot insert into audit.log');
select throws_ok($$select audit.record_event(app.current_org_id(), 'forged')$$,
                 '42501', null, 'a user cannot call audit.record_event');
select tests.clear_authentication();
select is((select count(*)::int from audit.log l where l.event_type = 'forged'), 0, 'nothing was forged');

select * from finish();
rollback;
