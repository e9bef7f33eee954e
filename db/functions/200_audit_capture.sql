-- Audit trail, part 1: every insert, update and delete on the domain tables lands in audit.log
-- (DESIGN §9, docs/audit.md). Statement-level triggers with transition tables: one INSERT ... SELECT
-- per statement, so a sync merge of 100,000 rows writes its audit rows in one pass (a single-row
-- UPDATE, every API write, takes a cheaper procedural path: see audit.install_update_capture).
--
-- What a row says:
--   INSERT  new_values = the whole new row
--   UPDATE  changed_fields = the columns whose value changed; old_values/new_values = those columns
--           only. An update that changes nothing (or only updated_at / last_synced_at) writes no row.
--   DELETE  old_values = the whole old row
-- (raw source documents, classroom_submission and source_record, as digests: see
-- audit.raw_source_columns below)
-- with the actor (JWT user and app role, else the database role), the organisation, the entity's
-- key (entity_id: the primary key without org_id) and the employee the row belongs to.
--
-- Not audited (side effects and derived data, recomputable or themselves a log):
--   app.events (the outbox), app.notifications (messages the rules send),
--   app.employee_compliance_stats (recomputed by the database on every change; app.verify_stats),
--   app.compliance_snapshots (written by the daily job from the audited tables),
--   app.compliance_counters, app.compliance_headcounts (live counts kept by triggers from the
--   audited assignments and employees),
--   app.billing_plans (the deployment's configuration, no organisation's data), app.stripe_events
--   (itself the log of Stripe's events; what they changed is audited as subscription_changed),
--   app.usage_snapshots (written by the weekly job from the audited tables).

-- Columns whose change alone is not worth an audit row (bookkeeping the database or sync keeps).
create or replace function audit.ignored_columns() returns text[]
language sql immutable parallel safe
set search_path = ''
as $$ select '{updated_at,last_synced_at}'::text[] $$;
comment on function audit.ignored_columns() is
    'Columns whose change alone writes no audit row (and which never appear in changed_fields).';

-- Tables that are not audited, and why (see the header).
create or replace function audit.untracked_tables() returns text[]
language sql immutable parallel safe
set search_path = ''
as $$ select '{events,notifications,employee_compliance_stats,compliance_snapshots,compliance_counters,compliance_headcounts,assignment_history,employee_history,billing_plans,stripe_events,usage_snapshots}'::text[] $$;
comment on function audit.untracked_tables() is
    'Tables of schema app the audit triggers skip: side effects (outbox, notifications) and derived data.';

-- Raw source documents (a Classroom submission, an HR system's employee record: ~1 KB of upstream
-- JSON each) are not copied into the trail: where such a column appears in new_values/old_values,
-- the value recorded is its digest {"md5": <md5 of the document's jsonb text>} (null stays
-- null), enough to tell whether and when the document changed (compare with
-- md5(<column>::text) of the live row); the document itself stays in its table. A bulk sync would
-- otherwise write each document twice (table and trail: 3.5 times the audit volume of a
-- Classroom merge). changed_fields still names the column when the document changed.
create or replace function audit.raw_source_columns() returns text[]
language sql immutable parallel safe
set search_path = ''
as $$ select '{classroom_submission,source_record}'::text[] $$;
comment on function audit.raw_source_columns() is
    'Columns holding raw upstream documents: the audit trail records their digest (audit.digest_raw), not the value.';

-- (a plain expression, so that it is inlined in the set-based captures)
create or replace function audit.digest_raw(p_value jsonb) returns jsonb
language sql immutable parallel safe
set search_path = ''
as $$
    select case when p_value is null or pg_catalog.jsonb_typeof(p_value) = 'null' then p_value
                else pg_catalog.jsonb_build_object('md5', pg_catalog.md5(p_value::text)) end
$$;
comment on function audit.digest_raw(jsonb) is
    'The audit trail''s stand-in for a raw source document: {"md5": md5 of its jsonb text} (null stays null).';

-- A row image (jsonb) with its raw source columns (p_columns, those present) replaced by digests.
create or replace function audit.redact_raw(p_row jsonb, p_columns text[]) returns jsonb
language plpgsql immutable parallel safe
set search_path = ''
as $$
declare
    v_col text;
begin
    if p_row is null or not (p_row ?| p_columns) then
        return p_row;
    end if;
    foreach v_col in array p_columns loop
        if p_row ? v_col then
            p_row := pg_catalog.jsonb_set(p_row, array[v_col], coalesce(audit.digest_raw(p_row -> v_col), 'null'));
        end if;
    end loop;
    return p_row;
end
$$;
comment on function audit.redact_raw(jsonb, text[]) is
    'A row image with its raw source document columns replaced by their digests (audit.digest_raw).';

-- Who is acting (once per audited statement, read inline by each trigger function because it is
-- on the hot path of every write): the JWT user and their application role, as
-- app.current_user_id() and app.current_app_role() define them, else the database role, as
-- audit.current_db_role() defines it. The capture functions below repeat these few lines.

-- INSERT and DELETE: one audit row per row, the whole row as jsonb. Arguments (set by the installer
-- below): the organisation column, the employee column ('' when none), one or two key columns
-- (the primary key without the organisation; '' for no second one), and, for a table holding raw
-- source documents, the select list of its row image with the documents as digests ('' when it
-- holds none: the catalog is read once per migrate, not once per statement).
create or replace function audit.capture_changes() returns trigger
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org_col text := TG_ARGV[0];
    v_employee_col text := nullif(TG_ARGV[1], '');
    v_k1 text := TG_ARGV[2];
    v_k2 text := case when TG_NARGS > 3 then nullif(TG_ARGV[3], '') end;
    v_table text := TG_TABLE_NAME::text;
    v_claims text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '');
    v_sub text;
    v_user uuid;
    v_role text;
    v_db_role text := coalesce(nullif(pg_catalog.current_setting('role', true), 'none'), session_user::text);
    v_list text := case when TG_NARGS > 4 then nullif(TG_ARGV[4], '') end;
begin
    if v_claims is not null then
        v_sub := v_claims::jsonb ->> 'sub';
        if v_sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
            v_user := v_sub::uuid;
            select u.app_role::text into v_role from app.app_users u where u.id = v_user and u.active;
        end if;
    end if;
    v_role := coalesce(v_role, v_db_role);
    if v_list is not null then
        -- The row image is built without the documents (their digests instead): cheaper than
        -- the whole row's jsonb, documents included, then edited.
        execute pg_catalog.format(
            'insert into audit.log (org_id, actor_user_id, actor_role, db_role, event_type, table_name,
                                    op, entity_id, employee_id, %1$I)
             select (r.j ->> $1)::uuid, $2, $3, $4, %2$L, $5, %3$L,
                    pg_catalog.concat_ws('','', r.j ->> $6, r.j ->> $7), (r.j ->> $8)::uuid, r.j
             from (select pg_catalog.to_jsonb(y) as j from (select %4$s from %5$I x) y offset 0) r',
            case when TG_OP = 'INSERT' then 'new_values' else 'old_values' end,
            case when TG_OP = 'INSERT' then 'row_insert' else 'row_delete' end,
            TG_OP, v_list, case when TG_OP = 'INSERT' then 'new_rows' else 'old_rows' end)
        using v_org_col, v_user, v_role, v_db_role, v_table, v_k1, v_k2, v_employee_col;
        return null;
    end if;
    if TG_OP = 'INSERT' then
        insert into audit.log (org_id, actor_user_id, actor_role, db_role, event_type, table_name,
                               op, entity_id, employee_id, new_values)
        select (r.j ->> v_org_col)::uuid, v_user, v_role, v_db_role, 'row_insert', v_table,
               'INSERT', pg_catalog.concat_ws(',', r.j ->> v_k1, r.j ->> v_k2),
               (r.j ->> v_employee_col)::uuid, r.j
        from (select pg_catalog.to_jsonb(n) as j from new_rows n offset 0) r;
    elsif TG_OP = 'DELETE' then
        insert into audit.log (org_id, actor_user_id, actor_role, db_role, event_type, table_name,
                               op, entity_id, employee_id, old_values)
        select (r.j ->> v_org_col)::uuid, v_user, v_role, v_db_role, 'row_delete', v_table,
               'DELETE', pg_catalog.concat_ws(',', r.j ->> v_k1, r.j ->> v_k2),
               (r.j ->> v_employee_col)::uuid, r.j
        from (select pg_catalog.to_jsonb(o) as j from old_rows o offset 0) r;
    else
        raise exception 'audit.capture_changes() handles INSERT and DELETE, not %', TG_OP
            using errcode = '39P01',
                  hint = 'UPDATE is captured by the per-table audit.capture_update__<table>() function.';
    end if;
    return null;
end
$$;
comment on function audit.capture_changes() is
    'Statement trigger: writes one audit.log row per inserted or deleted row (the whole row).';

-- UPDATE: generated per table (audit.capture_update__<table>()), so the comparison is column by
-- column with static plans. Old and new rows pair up by primary key; changed_fields = the
-- columns whose value changed (IS DISTINCT FROM), in column order; old_values/new_values = those
-- columns only; a row whose changes are all in audit.ignored_columns() writes nothing. A key
-- change (no partner row) writes both halves whole.
-- The single-row update, every API write, takes a procedural fast path (one small query to
-- fetch the pair, per-column tests, one INSERT ... VALUES); a statement that updated several
-- rows, a sync merge, takes one set-based INSERT ... SELECT.
create or replace function audit.install_update_capture(
    p_table text, p_org_col text, p_employee_col text, p_keys text[]
) returns text
language plpgsql volatile
set search_path = ''
as $gen$
declare
    v_function text := 'capture_update__' || p_table;
    v_cols text[];
    v_join text;
    v_same_key text;
    v_changed text;
    v_unchanged text;
    v_tests text;
    v_employee text;
    v_employee_fast text;
    v_entity text;
    v_entity_fast text;
    v_raw text[];
    v_old_image text;               -- the redaction wrapper of the set-based row images
    v_new_image text;
begin
    select pg_catalog.array_agg(a.attname::text order by a.attnum) into v_cols
    from pg_catalog.pg_attribute a
    where a.attrelid = pg_catalog.format('app.%I', p_table)::regclass
      and a.attnum > 0 and not a.attisdropped
      and a.attname <> all (audit.ignored_columns());
    select pg_catalog.array_agg(c) into v_raw
    from pg_catalog.unnest(v_cols) c where c = any (audit.raw_source_columns());
    select pg_catalog.string_agg(pg_catalog.format('n.%1$I = o.%1$I', k), ' and ')
    into v_join from pg_catalog.unnest(p_org_col || p_keys) k;
    select pg_catalog.string_agg(pg_catalog.format('v_n.%1$I is not distinct from v_o.%1$I', k), ' and ')
    into v_same_key from pg_catalog.unnest(p_org_col || p_keys) k;
    select pg_catalog.string_agg(pg_catalog.format(
               'case when n.%1$I is distinct from o.%1$I then %1$L end', c), ', '),
           pg_catalog.string_agg(pg_catalog.format(
               'case when n.%1$I is not distinct from o.%1$I then %1$L end', c), ', '),
           pg_catalog.string_agg(pg_catalog.format(
               '        if v_n.%1$I is distinct from v_o.%1$I then
            v_changed := v_changed || %1$L::text;
            v_old := v_old || pg_catalog.jsonb_build_object(%1$L, %2$s);
            v_new := v_new || pg_catalog.jsonb_build_object(%1$L, %3$s);
        end if;', c,
               case when c = any (v_raw) then pg_catalog.format('audit.digest_raw(v_o.%I)', c)
                    else pg_catalog.format('v_o.%I', c) end,
               case when c = any (v_raw) then pg_catalog.format('audit.digest_raw(v_n.%I)', c)
                    else pg_catalog.format('v_n.%I', c) end), E'\n')
    into v_changed, v_unchanged, v_tests from pg_catalog.unnest(v_cols) c;
    -- Row images of the set-based path: raw source documents become digests.
    v_old_image := case when v_raw is null then '' else 'audit.redact_raw(' end;
    v_new_image := case when v_raw is null then ''
                        else pg_catalog.format(', %L::text[])', v_raw) end;
    v_employee := case when p_employee_col = '' then 'null::uuid'
                       else pg_catalog.format('coalesce(n.%1$I, o.%1$I)', p_employee_col) end;
    v_employee_fast := case when p_employee_col = '' then 'null::uuid'
                            else pg_catalog.format('v_n.%I', p_employee_col) end;
    select pg_catalog.string_agg(pg_catalog.format('coalesce(n.%1$I, o.%1$I)', k), ', '),
           pg_catalog.string_agg(pg_catalog.format('v_n.%I', k), ', ')
    into v_entity, v_entity_fast from pg_catalog.unnest(p_keys) k;

    execute pg_catalog.format($f$
create or replace function audit.%1$I() returns trigger
language plpgsql volatile security definer
set search_path = ''
as $body$
declare
    v_o app.%3$I;
    v_n app.%3$I;
    v_count bigint;
    v_changed text[] := '{}';
    v_old jsonb := '{}';
    v_new jsonb := '{}';
    v_claims text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '');
    v_sub text;
    v_user uuid;
    v_role text;
    v_db_role text := coalesce(nullif(pg_catalog.current_setting('role', true), 'none'), session_user::text);
begin
    select pg_catalog.count(*) into v_count from new_rows;
    if v_count = 0 then
        return null;
    end if;
    /* The actor (see the note above audit.capture_changes). */
    if v_claims is not null then
        v_sub := v_claims::jsonb ->> 'sub';
        if v_sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
            v_user := v_sub::uuid;
            select u.app_role::text into v_role from app.app_users u where u.id = v_user and u.active;
        end if;
    end if;
    v_role := coalesce(v_role, v_db_role);
    if v_count = 1 then
        select x.* into v_o from old_rows x;
        select y.* into v_n from new_rows y;
    end if;
    if v_count = 1 and %9$s then
%10$s
        if pg_catalog.cardinality(v_changed) > 0 then
            insert into audit.log (org_id, actor_user_id, actor_role, db_role, event_type, table_name,
                                   op, entity_id, employee_id, old_values, new_values, changed_fields)
            values (v_n.%2$I, v_user, v_role, v_db_role, 'row_update', %3$L, 'UPDATE',
                    pg_catalog.concat_ws(',', %11$s), %12$s, v_old, v_new, v_changed);
        end if;
        return null;
    end if;
    insert into audit.log (org_id, actor_user_id, actor_role, db_role, event_type, table_name, op,
                           entity_id, employee_id, old_values, new_values, changed_fields)
    select coalesce(n.%2$I, o.%2$I), v_user, v_role, v_db_role, 'row_update', %3$L, 'UPDATE',
           pg_catalog.concat_ws(',', %4$s), %5$s,
           %13$s(case when n.%2$I is null then pg_catalog.to_jsonb(o)
                when o.%2$I is not null then pg_catalog.to_jsonb(o) - d.unchanged end)%14$s,
           %13$s(case when o.%2$I is null then pg_catalog.to_jsonb(n)
                when n.%2$I is not null then pg_catalog.to_jsonb(n) - d.unchanged end)%14$s,
           d.changed
    from old_rows o
    full join new_rows n on %6$s
    cross join lateral (
        select pg_catalog.array_remove(array[%7$s]::text[], null) as changed,
               pg_catalog.array_remove(array[%8$s]::text[], null) || audit.ignored_columns() as unchanged
        offset 0
    ) d
    where o.%2$I is null or n.%2$I is null or pg_catalog.cardinality(d.changed) > 0;
    return null;
end
$body$;
comment on function audit.%1$I() is
    'Statement trigger (generated by audit.install_update_capture): audits the changed columns of updated rows of app.%3$s.';
$f$,
        v_function, p_org_col, p_table, v_entity, v_employee, v_join, v_changed, v_unchanged,
        v_same_key, v_tests, v_entity_fast, v_employee_fast, v_old_image, v_new_image);
    return v_function;
end
$gen$;
comment on function audit.install_update_capture(text, text, text, text[]) is
    'Generates audit.capture_update__<table>(), the UPDATE audit trigger function of one app table.';

-- Install (or refresh) the three triggers on every table of schema app that has a primary key and
-- an organisation (org_id, or the organizations table itself), except the untracked ones. Runs on
-- every migrate, so a table added by a later migration is audited from then on.
do $install$
declare
    t record;
    v_keys text[];
    v_org_col text;
    v_employee_col text;
    v_args text;
    v_skip boolean;
    v_update_function text;
    v_image text;
begin
    for t in
        select c.oid, c.relname,
               (select pg_catalog.array_agg(a.attname::text order by k.ord)
                from pg_catalog.unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
                join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum) as pk,
               exists (select from pg_catalog.pg_attribute a
                       where a.attrelid = c.oid and a.attname = 'employee_id' and not a.attisdropped)
                   as has_employee_id
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        left join pg_catalog.pg_index i on i.indrelid = c.oid and i.indisprimary
        where n.nspname = 'app' and c.relkind = 'r'
        order by c.relname
    loop
        v_org_col := case when t.relname = 'organizations' then 'id' else 'org_id' end;
        v_keys := case when t.relname = 'organizations' then t.pk
                       else pg_catalog.array_remove(t.pk, 'org_id') end;
        v_skip := t.relname = any (audit.untracked_tables())
                  or t.pk is null
                  or not (v_org_col = any (t.pk))
                  or pg_catalog.cardinality(v_keys) not between 1 and 2;
        if v_skip then
            execute pg_catalog.format('drop trigger if exists audit_insert on app.%I', t.relname);
            execute pg_catalog.format('drop trigger if exists audit_update on app.%I', t.relname);
            execute pg_catalog.format('drop trigger if exists audit_delete on app.%I', t.relname);
            execute pg_catalog.format('drop function if exists audit.%I()', 'capture_update__' || t.relname);
            if not t.relname = any (audit.untracked_tables()) then
                raise warning 'app.% is not audited: it needs a primary key of org_id and one or two columns',
                    t.relname;
            end if;
            continue;
        end if;
        v_employee_col := case when t.relname = 'employees' then 'id'
                               when t.has_employee_id then 'employee_id'
                               else '' end;
        -- audit.capture_changes' row image of a table holding raw source documents (digests).
        select case when pg_catalog.bool_or(a.attname = any (audit.raw_source_columns())) then
                   pg_catalog.string_agg(
                       case when a.attname = any (audit.raw_source_columns())
                            then pg_catalog.format('audit.digest_raw(x.%1$I) as %1$I', a.attname)
                            else pg_catalog.format('x.%I', a.attname) end,
                       ', ' order by a.attnum) end
        into v_image
        from pg_catalog.pg_attribute a
        where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped;
        v_args := pg_catalog.format('%L, %L, %L, %L, %L', v_org_col, v_employee_col, v_keys[1],
                                    coalesce(v_keys[2], ''), coalesce(v_image, ''));
        v_update_function := audit.install_update_capture(t.relname, v_org_col, v_employee_col, v_keys);
        execute pg_catalog.format(
            'create or replace trigger audit_insert after insert on app.%I
             referencing new table as new_rows
             for each statement execute function audit.capture_changes(%s)', t.relname, v_args);
        execute pg_catalog.format(
            'create or replace trigger audit_update after update on app.%I
             referencing old table as old_rows new table as new_rows
             for each statement execute function audit.%I()', t.relname, v_update_function);
        execute pg_catalog.format(
            'create or replace trigger audit_delete after delete on app.%I
             referencing old table as old_rows
             for each statement execute function audit.capture_changes(%s)', t.relname, v_args);
    end loop;
end
$install$;
