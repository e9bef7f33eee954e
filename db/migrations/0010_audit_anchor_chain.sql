-- depends: 0008_lean_bulk_writes
-- Retention anchors that say what each purge removed, chained by hash (docs/audit.md "Retention").
--
-- An anchor now records the range it purged (from_seq, exclusive, to seq, inclusive), the write
-- time of the newest row it removed, and the organisation's retention when it was made; each
-- anchor's anchor_hash covers the previous anchor's (prev_hash) and all of these, so an anchor
-- cannot be changed, removed or slipped in between without verification finding it, and
-- verification can tell a purge that removed rows younger than the retention
-- (db/functions/210_audit_chain.sql, audit.verify_anchors). The BEFORE INSERT trigger of
-- db/functions/205_audit_append_only.sql fills these columns from the chain itself.

alter table audit.chain_anchors
    add column from_seq bigint,
    add column newest_purged_at timestamptz,
    add column retention_months integer,
    add column prev_hash bytea,
    add column anchor_hash bytea;

comment on column audit.chain_anchors.from_seq is
    'The previous anchor''s seq (0 for the first): this anchor purged the entries after it up to seq.';
comment on column audit.chain_anchors.newest_purged_at is
    'occurred_at of the newest audit row this purge removed (null for anchors made before it was recorded).';
comment on column audit.chain_anchors.retention_months is
    'The organisation''s audit_retention_months when the anchor was made.';
comment on column audit.chain_anchors.prev_hash is
    'The previous anchor''s anchor_hash (audit.genesis_hash(org) for the first).';
comment on column audit.chain_anchors.anchor_hash is
    'sha256(prev_hash || audit.anchor_canonical(anchor)): the chain of anchors.';

-- Anchors made before this migration: chain them as they are. The rows they purged are gone, so
-- newest_purged_at stays unknown (verification judges those by purged_before, the cutoff the job
-- recorded), and their retention is the organisation's now. The bytes hashed are those of
-- audit.anchor_canonical (db/functions/210_audit_chain.sql) as of this migration. Anchors refuse
-- UPDATE for every role; the owner lifts that for this one statement.
alter table audit.chain_anchors disable trigger user;
do $$
declare
    v_anchor record;
    v_prev_seq bigint;
    v_prev_hash bytea;
    v_org uuid;
begin
    for v_anchor in
        select a.org_id, a.seq from audit.chain_anchors a order by a.org_id, a.seq
    loop
        if v_org is distinct from v_anchor.org_id then
            v_org := v_anchor.org_id;
            v_prev_seq := 0;
            v_prev_hash := pg_catalog.sha256(pg_catalog.convert_to('compliance-audit-chain:' || v_org::text, 'UTF8'));
        end if;
        update audit.chain_anchors a
        set from_seq = v_prev_seq,
            retention_months = (select o.audit_retention_months from app.organizations o where o.id = a.org_id),
            prev_hash = v_prev_hash
        where a.org_id = v_anchor.org_id and a.seq = v_anchor.seq;
        update audit.chain_anchors a
        set anchor_hash = pg_catalog.sha256(a.prev_hash operator(pg_catalog.||) pg_catalog.convert_to(
                pg_catalog.jsonb_build_array(
                    a.org_id, a.seq, a.from_seq, pg_catalog.encode(a.hash, 'hex'), a.log_tx::text, a.log_id,
                    pg_catalog.to_char(a.purged_before at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    pg_catalog.to_char(a.newest_purged_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    a.retention_months, a.rows_purged,
                    pg_catalog.to_char(a.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                )::text, 'UTF8'))
        where a.org_id = v_anchor.org_id and a.seq = v_anchor.seq
        returning a.seq, a.anchor_hash into v_prev_seq, v_prev_hash;
    end loop;
end
$$;
alter table audit.chain_anchors enable trigger user;

alter table audit.chain_anchors
    alter column from_seq set not null,
    alter column retention_months set not null,
    alter column prev_hash set not null,
    alter column anchor_hash set not null;
