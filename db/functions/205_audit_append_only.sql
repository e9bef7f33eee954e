-- Audit trail, part 2: audit.log, audit.chain and audit.chain_anchors are append-only for every
-- role, the owner and superusers included (DESIGN §9, docs/audit.md "Append-only").
--
-- UPDATE and TRUNCATE are always refused. DELETE is refused unless the retention job is purging:
-- audit.purge_expired() sets the transaction-local flag audit.purging = 'on' around its anchor and
-- its two DELETEs, and even then every deleted row must lie at or before the newest retention
-- anchor of its organisation (a prefix of the chain whose last hash is kept in
-- audit.chain_anchors), so the rest of the chain stays verifiable. An anchor, in turn, is accepted
-- only with that flag on and only where the retention allows: its trigger computes what it
-- records from the chain itself (the range, the newest row it removes, the retention, its place in
-- the chain of anchors) and refuses it when a row in its range is younger than the retention.
--
-- Application roles hold no privilege on these tables; the flag stops only the owner's plain
-- statements. The owner or a superuser can set the flag, disable these triggers or rewrite the
-- tables: that cannot be prevented inside the database, which is why the chain exists and why
-- checkpoints are kept outside it. audit.verify_chain() finds such tampering, against an exported
-- checkpoint where the tables were rewritten consistently (docs/audit.md "What a superuser can
-- still do").

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

-- BEFORE INSERT (row) on audit.chain_anchors: only the retention job's purge makes anchors, and an
-- anchor says what the chain says. Whatever the caller gave, the trigger sets the range (from the
-- previous anchor's seq), the cut entry's hash and row, the newest row written in the range, the
-- organisation's retention now, the time, and the anchor's place in the chain of anchors; it
-- refuses the anchor when any row in its range is younger than the retention allows.
create or replace function audit.anchor_from_chain() returns trigger
language plpgsql
set search_path = ''
as $$
declare
    v_prev record;
    v_entry record;
    v_org record;
    v_range record;
    v_bound timestamptz;
begin
    if pg_catalog.current_setting('audit.purging', true) is distinct from 'on' then
        raise exception 'audit.chain_anchors is written only by the retention job'
            using errcode = '42501',
                  detail = pg_catalog.format('An anchor at entry %s of organisation %s was refused for role %s.',
                                             coalesce(new.seq::text, 'null'), coalesce(new.org_id::text, 'null'),
                                             session_user),
                  hint = 'Audit rows past retention leave only through the retention job, app.run_monthly_jobs().';
    end if;
    select o.timezone, o.audit_retention_months into v_org
    from app.organizations o where o.id = new.org_id;
    if not found then
        raise exception 'no organisation % to anchor the audit chain of', coalesce(new.org_id::text, 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('No organisation has the id %s.', coalesce(new.org_id::text, 'null')),
                  hint = 'Pass the id of an organisation (select id, slug from app.organizations).';
    end if;
    select a.seq, a.anchor_hash into v_prev
    from audit.chain_anchors a where a.org_id = new.org_id order by a.seq desc limit 1;
    new.from_seq := coalesce(v_prev.seq, 0);
    new.prev_hash := coalesce(v_prev.anchor_hash, audit.genesis_hash(new.org_id));
    select c.hash, c.log_tx, c.log_id into v_entry
    from audit.chain c where c.org_id = new.org_id and c.seq = new.seq;
    if not found or new.seq <= new.from_seq then
        raise exception 'an anchor must be at a chain entry after the previous anchor'
            using errcode = '22023',
                  detail = pg_catalog.format('Organisation %s: entry %s was asked; the previous anchor is at %s '
                                             'and the chain holds no such entry after it.',
                                             new.org_id, coalesce(new.seq::text, 'null'), new.from_seq),
                  hint = 'Anchors are made by the retention job, app.run_monthly_jobs().';
    end if;
    select pg_catalog.count(*) as entries, pg_catalog.count(l.id) as rows,
           pg_catalog.max(l.occurred_at) as newest
    into v_range
    from audit.chain c
    left join audit.log l on l.org_id = c.org_id and l.id = c.log_id
    where c.org_id = new.org_id and c.seq > new.from_seq and c.seq <= new.seq;
    if v_range.entries <> new.seq - new.from_seq or v_range.rows <> v_range.entries then
        raise exception 'the audit chain of organisation % is incomplete before entry %', new.org_id, new.seq
            using errcode = '42501',
                  detail = pg_catalog.format('Entries %s to %s: %s chain entries and %s audit rows, %s expected.',
                                             new.from_seq + 1, new.seq, v_range.entries, v_range.rows,
                                             new.seq - new.from_seq),
                  hint = 'Run select * from audit.verify_chain(org) and treat what it reports as an incident.';
    end if;
    new.hash := v_entry.hash;
    new.log_tx := v_entry.log_tx;
    new.log_id := v_entry.log_id;
    new.rows_purged := new.seq - new.from_seq;
    new.newest_purged_at := v_range.newest;
    new.retention_months := v_org.audit_retention_months;
    new.created_at := pg_catalog.now();
    v_bound := audit.retention_cutoff((pg_catalog.now() at time zone v_org.timezone)::date,
                                      v_org.audit_retention_months, v_org.timezone);
    if (new.newest_purged_at < v_bound and new.purged_before <= v_bound) is not true then
        raise exception 'audit rows younger than the retention of % months cannot be purged',
            v_org.audit_retention_months
            using errcode = '42501',
                  detail = pg_catalog.format('Organisation %s: entries %s to %s hold rows written up to %s, and the cut '
                                             'asked is %s; only rows written before %s are past retention.',
                                             new.org_id, new.from_seq + 1, new.seq, new.newest_purged_at,
                                             coalesce(new.purged_before::text, 'null'), v_bound),
                  hint = 'Audit rows leave only through the retention job, app.run_monthly_jobs(), once past retention.';
    end if;
    new.anchor_hash := pg_catalog.sha256(new.prev_hash operator(pg_catalog.||) audit.anchor_canonical(new));
    return new;
end
$$;
comment on function audit.anchor_from_chain() is
    'Trigger: anchors only from the retention job, only past retention, recording what the chain says.';

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
create or replace trigger anchor_from_chain before insert on audit.chain_anchors
    for each row execute function audit.anchor_from_chain();
