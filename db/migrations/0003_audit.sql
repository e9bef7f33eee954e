-- depends: 0001_foundation
-- The audit trail's hash chain, its retention anchors, and the columns the triggers fill (DESIGN §9).
--
-- audit.log stays insert-only and is written by the writing transaction without any lock;
-- audit.seal() later chains the rows of finished transactions into audit.chain, per organisation,
-- in (tx_id, id) order (see db/functions/210_audit_chain.sql and docs/audit.md).

-- The hash lives in audit.chain, not in the log row: the log row is final when it is written.
alter table audit.log drop column prev_hash;
alter table audit.log drop column hash;

-- Which database role did the work (the PostgREST request's role `authenticated`, or the service
-- login `sync_worker`, `web_app`, an operator); actor_role is the application role when a user
-- signed the request, else this.
alter table audit.log add column db_role text not null
    default coalesce(nullif(pg_catalog.current_setting('role', true), 'none'), session_user::text);

-- audit.log is written only by the audit functions (audit.record_event, the capture triggers), which
-- produce valid values themselves (record_event checks the event name). Its CHECK constraints
-- would be re-read (stringToNode) and compiled on every INSERT statement, i.e. on the hot path of
-- every single-row write: a measured 75,000 instructions a write, about 4 % of an assignment
-- update. They go; the functions keep the invariants (tests: db/tests/audit/test_capture.test.sql).
alter table audit.log drop constraint log_op_is_known;
alter table audit.log drop constraint log_event_type_is_snake_case;

-- The sealer finds the unsealed rows of an organisation as a range of this index.
create index log_org_tx_idx on audit.log (org_id, tx_id, id);

-- One entry per sealed log row, per organisation, in sealing order:
-- hash = sha256(prev_hash || audit.canonical(log row)); prev_hash = the previous entry's hash
-- (the first entry's prev_hash is audit.genesis_hash(org_id), or the retention anchor's hash).
create table audit.chain (
    org_id uuid not null,
    seq bigint not null,
    log_id bigint not null,
    log_tx xid8 not null,
    prev_hash bytea not null,
    hash bytea not null,
    sealed_at timestamptz not null default now(),
    primary key (org_id, seq),
    constraint chain_seals_each_log_row_once unique (org_id, log_id),
    constraint chain_seq_is_positive check (seq >= 1),
    constraint chain_hashes_are_sha256 check (octet_length(hash) = 32 and octet_length(prev_hash) = 32)
);
comment on table audit.chain is
    'The hash chain over audit.log, per organisation, in (tx_id, id) order. Insert-only; written by audit.seal().';

-- Where the retention job cut the chain: the last purged entry's seq, hash and log row position.
-- Verification of the remaining chain starts from the newest anchor; sealing continues after it.
create table audit.chain_anchors (
    org_id uuid not null,
    seq bigint not null,
    hash bytea not null,
    log_tx xid8 not null,
    log_id bigint not null,
    purged_before timestamptz not null,
    rows_purged bigint not null,
    created_at timestamptz not null default now(),
    primary key (org_id, seq),
    constraint chain_anchors_hash_is_sha256 check (octet_length(hash) = 32),
    constraint chain_anchors_rows_purged_positive check (rows_purged > 0)
);
comment on table audit.chain_anchors is
    'Retention boundaries of the audit chain: the last purged entry (seq, hash). Insert-only.';

alter table audit.chain enable row level security;
alter table audit.chain force row level security;
alter table audit.chain_anchors enable row level security;
alter table audit.chain_anchors force row level security;
