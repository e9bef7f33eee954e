-- Audit trail, part 2: audit.log, audit.chain and audit.chain_anchors are append-only for every
-- role, the owner and superusers included (DESIGN §9, docs/audit.md "Append-only").
--
-- UPDATE and TRUNCATE are always refused. DELETE is refused unless the retention job is purging:
-- audit.purge_expired() sets the transaction-local flag audit.purging = 'on' around its two DELETEs,
-- and even then every deleted row must lie at or before the newest retention anchor of its
-- organisation (a prefix of the chain whose last hash is kept in audit.chain_anchors), so the rest
-- of the chain stays verifiable. A superuser can set the flag, write an anchor or disable these
-- triggers; that is why the chain exists and why checkpoints are kept outside the database: such
-- tampering cannot be prevented in the database, but audit.verify_chain() against an exported
-- checkpoint finds it.

create or replace function audit.refuse_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception '%.% is append-only: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        using errcode = '42501',
              detail = pg_catalog.format('%s on %s.%s was refused for role %s.', TG_OP,
                                         TG_TABLE_SCHEMA, TG_TABLE_NAME, session_user),
              hint = 'The audit trail is never changed. Record a correcting event instead; old rows '
                     'leave only through the retention job, app.run_monthly_jobs().';
end
$$;
comment on function audit.refuse_change() is 'Trigger: refuses any change to an append-only audit table.';

-- BEFORE DELETE (statement): only the retention job's purge may delete.
create or replace function audit.refuse_delete_unless_purging() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if pg_catalog.current_setting('audit.purging', true) is distinct from 'on' then
        raise exception '%.% is append-only: DELETE is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME
            using errcode = '42501',
                  detail = pg_catalog.format('DELETE on %s.%s was refused for role %s.',
                                             TG_TABLE_SCHEMA, TG_TABLE_NAME, session_user),
                  hint = 'Audit rows leave only through the retention job, app.run_monthly_jobs().';
    end if;
    return null;
end
$$;
comment on function audit.refuse_delete_unless_purging() is
    'Trigger: refuses DELETE on the audit trail outside the retention job''s purge.';

-- AFTER DELETE (statement, with the deleted rows): each one must be covered by a retention anchor.
create or replace function audit.check_purge_is_anchored() returns trigger
language plpgsql
set search_path = ''
as $$
declare
    v_bad record;
begin
    if TG_TABLE_NAME = 'log' then
        select d.org_id, d.id into v_bad
        from old_rows d
        where not exists (
            select from audit.chain c
            where c.org_id = d.org_id and c.log_id = d.id
              and c.seq <= (select pg_catalog.max(a.seq) from audit.chain_anchors a
                            where a.org_id = d.org_id))
        limit 1;
    else
        select d.org_id, d.seq as id into v_bad
        from old_rows d
        where d.seq > coalesce((select pg_catalog.max(a.seq) from audit.chain_anchors a
                                where a.org_id = d.org_id), 0)
        limit 1;
    end if;
    if v_bad.org_id is not null then
        raise exception 'audit.% row % of organisation % is not behind a retention anchor',
            TG_TABLE_NAME, v_bad.id, v_bad.org_id
            using errcode = '42501',
                  detail = 'Only a prefix of the chain that ends at a recorded anchor may be purged.',
                  hint = 'Audit rows leave only through the retention job, app.run_monthly_jobs().';
    end if;
    return null;
end
$$;
comment on function audit.check_purge_is_anchored() is
    'Trigger: a purge may delete only audit rows and chain entries at or before a retention anchor.';

create or replace trigger append_only_refuse_update before update on audit.log
    for each statement execute function audit.refuse_change();
create or replace trigger append_only_refuse_truncate before truncate on audit.log
    for each statement execute function audit.refuse_change();
create or replace trigger append_only_refuse_delete before delete on audit.log
    for each statement execute function audit.refuse_delete_unless_purging();
create or replace trigger append_only_check_purge after delete on audit.log
    referencing old table as old_rows
    for each statement execute function audit.check_purge_is_anchored();

create or replace trigger append_only_refuse_update before update on audit.chain
    for each statement execute function audit.refuse_change();
create or replace trigger append_only_refuse_truncate before truncate on audit.chain
    for each statement execute function audit.refuse_change();
create or replace trigger append_only_refuse_delete before delete on audit.chain
    for each statement execute function audit.refuse_delete_unless_purging();
create or replace trigger append_only_check_purge after delete on audit.chain
    referencing old table as old_rows
    for each statement execute function audit.check_purge_is_anchored();

create or replace trigger append_only_refuse_update before update on audit.chain_anchors
    for each statement execute function audit.refuse_change();
create or replace trigger append_only_refuse_truncate before truncate on audit.chain_anchors
    for each statement execute function audit.refuse_change();
create or replace trigger append_only_refuse_delete before delete on audit.chain_anchors
    for each statement execute function audit.refuse_change();
