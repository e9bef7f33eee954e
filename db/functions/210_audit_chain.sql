-- Audit trail, part 3: the hash chain (DESIGN §9, docs/audit.md "Hash chain").
--
-- Writers never wait for the chain: audit.log rows are inserted by the writing transaction with no
-- lock. audit.seal() chains them later, per organisation, in (tx_id, id) order, and only rows whose
-- transaction has finished (tx_id below the oldest running transaction's horizon) — the ordering
-- api.events_since uses. No unfinished transaction can ever add a row before the chain's head, so
-- the chain only grows at its end. A per-organisation advisory lock keeps two sealers from forking
-- it (and the primary key (org_id, seq) would refuse a fork anyway).
--
--   entry n: hash_n = sha256(hash_(n-1) || audit.canonical(log row)),  hash_0 = genesis or anchor
--
-- audit.verify_chain() re-computes every hash from the log rows and checks every link.

-- The bytes of a log row that the chain signs: every column, in a form that no session setting
-- changes (timestamps in UTC with microseconds, jsonb in its canonical text form).
-- db/tests/audit/test_chain.test.sql checks that every column of audit.log is in it.
-- No SET clause on purpose: it is inlined into the sealing and verifying queries, which run it
-- once per row (a SET clause would prevent inlining and cost a settings round trip per row);
-- every name in it is schema-qualified.
create or replace function audit.canonical(l audit.log) returns bytea
language sql stable parallel safe
as $$
    select pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        l.org_id, l.id,
        pg_catalog.to_char(l.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        l.tx_id::text, l.actor_user_id, l.actor_role, l.db_role, l.event_type, l.table_name, l.op,
        l.entity_id, l.employee_id, l.old_values, l.new_values, l.changed_fields, l.details
    )::text, 'UTF8')
$$;
comment on function audit.canonical(audit.log) is
    'The bytes of an audit row that the hash chain signs (every column, independent of session settings).';

-- Where an organisation's chain starts before anything was purged.
create or replace function audit.genesis_hash(p_org_id uuid) returns bytea
language sql immutable parallel safe
set search_path = ''
as $$ select pg_catalog.sha256(pg_catalog.convert_to('compliance-audit-chain:' || p_org_id::text, 'UTF8')) $$;
comment on function audit.genesis_hash(uuid) is
    'The prev_hash of an organisation''s first chain entry: sha256 of ''compliance-audit-chain:<org id>''.';

-- One step of the chain, and the running aggregate the sealer computes as a window.
-- (No SET clause either: it runs once per sealed row; every name and operator is qualified.)
create or replace function audit.chain_step(p_state bytea, p_start bytea, p_row bytea) returns bytea
language sql immutable parallel safe
as $$ select pg_catalog.sha256(coalesce(p_state, p_start) operator(pg_catalog.||) p_row) $$;
comment on function audit.chain_step(bytea, bytea, bytea) is
    'sha256(previous hash || row bytes); the first step starts from p_start.';

create or replace aggregate audit.chain_hash(bytea, bytea) (
    sfunc = audit.chain_step,
    stype = bytea
);
comment on aggregate audit.chain_hash(bytea, bytea) is
    'Running hash chain: chain_hash(start hash, row bytes) over (order by ...) is each row''s hash.';

-- The advisory-lock key of an organisation's chain (sealing and purging hold it).
create or replace function audit.chain_lock_key(p_org_id uuid) returns bigint
language sql immutable parallel safe
set search_path = ''
as $$ select pg_catalog.hashtextextended('audit.chain:' || p_org_id::text, 0) $$;
comment on function audit.chain_lock_key(uuid) is
    'The advisory-lock key that serialises sealing and purging of one organisation''s chain.';

-- Where the chain of an organisation starts now: its newest retention anchor, else the genesis.
create or replace function audit.chain_start(
    p_org_id uuid, out seq bigint, out hash bytea, out log_tx xid8, out log_id bigint
)
language sql stable
set search_path = ''
as $$
    select coalesce(a.seq, 0), coalesce(a.hash, audit.genesis_hash(p_org_id)),
           coalesce(a.log_tx, '0'::xid8), coalesce(a.log_id, 0)
    from (select 1) one
    left join lateral (
        select x.seq, x.hash, x.log_tx, x.log_id from audit.chain_anchors x
        where x.org_id = p_org_id order by x.seq desc limit 1
    ) a on true
$$;
comment on function audit.chain_start(uuid) is
    'The start of an organisation''s chain: its newest retention anchor, else (0, genesis hash).';

-- Chain the finished, unsealed audit rows of one organisation. Returns how many were sealed.
create or replace function audit.seal_org(p_org_id uuid) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_horizon xid8;
    v_seq bigint;
    v_hash bytea;
    v_tx xid8;
    v_id bigint;
    v_count bigint;
begin
    perform pg_catalog.pg_advisory_xact_lock(audit.chain_lock_key(p_org_id));
    -- Taken after the lock, so a sealer that waited sees what the previous one committed.
    v_horizon := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
    select c.seq, c.hash, c.log_tx, c.log_id into v_seq, v_hash, v_tx, v_id
    from audit.chain c where c.org_id = p_org_id order by c.seq desc limit 1;
    if not found then
        select s.seq, s.hash, s.log_tx, s.log_id into v_seq, v_hash, v_tx, v_id
        from audit.chain_start(p_org_id) s;
    end if;
    insert into audit.chain (org_id, seq, log_id, log_tx, prev_hash, hash)
    select p_org_id, v_seq + s.n, s.id, s.tx_id,
           coalesce(pg_catalog.lag(s.h) over (order by s.n), v_hash), s.h
    from (
        select l.id, l.tx_id,
               pg_catalog.row_number() over w as n,
               audit.chain_hash(v_hash, audit.canonical(l)) over w as h
        from audit.log l
        where l.org_id = p_org_id
          and (l.tx_id, l.id) > (v_tx, v_id)
          and l.tx_id < v_horizon
        window w as (order by l.tx_id, l.id rows between unbounded preceding and current row)
    ) s
    order by s.n;
    get diagnostics v_count = row_count;
    return v_count;
end
$$;
comment on function audit.seal_org(uuid) is
    'Chains the finished, unsealed audit rows of one organisation; returns how many.';

-- Seal one organisation, or all of them (p_org_id null). The sync worker calls it on its timer.
create or replace function audit.seal(p_org_id uuid default null) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid;
    v_total bigint := 0;
begin
    if p_org_id is not null then
        return audit.seal_org(p_org_id);
    end if;
    for v_org in select o.id from app.organizations o order by o.id loop
        v_total := v_total + audit.seal_org(v_org);
    end loop;
    return v_total;
end
$$;
comment on function audit.seal(uuid) is
$$Chains the audit rows of finished transactions (one organisation, or all when null).

Returns the number of rows sealed. Safe to run at any time and from several sessions at once.$$;

-- The newest chain entry of an organisation (after sealing): keep (seq, hash) outside the database
-- and pass them to audit.verify_chain later to prove nothing before them changed.
create or replace function audit.checkpoint(p_org_id uuid)
returns table (org_id uuid, seq bigint, hash text, sealed_at timestamptz)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
    if p_org_id is null or not exists (select from app.organizations o where o.id = p_org_id) then
        raise exception 'unknown organisation %', coalesce(p_org_id::text, 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('No organisation has the id %s.', coalesce(p_org_id::text, 'null')),
                  hint = 'Pass the id of an organisation (select id, slug from app.organizations).';
    end if;
    perform audit.seal_org(p_org_id);
    return query
        select p_org_id, h.seq, pg_catalog.encode(h.hash, 'hex'), h.sealed_at
        from (
            select c.seq, c.hash, c.sealed_at from audit.chain c
            where c.org_id = p_org_id order by c.seq desc limit 1
        ) h
        union all
        select p_org_id, s.seq, pg_catalog.encode(s.hash, 'hex'), null::timestamptz
        from audit.chain_start(p_org_id) s
        where not exists (select from audit.chain c where c.org_id = p_org_id);
end
$$;
comment on function audit.checkpoint(uuid) is
$$The head of an organisation's audit chain, sealed first: (seq, hash as hex, sealed_at).

Export it (print, e-mail, ticket, object store with retention lock) and later run
audit.verify_chain(org, seq, hash) to prove no row up to it was changed, removed or reordered.$$;

-- Verify one organisation's chain from a start (seq, hash); the problems found, none when intact.
create or replace function audit.verify_org(p_org_id uuid, p_from_seq bigint, p_from_hash bytea)
returns table (org_id uuid, seq bigint, log_id bigint, problem text, detail text)
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_from_tx xid8 := '0'::xid8;
    v_from_id bigint := 0;
    v_head record;
begin
    if p_from_seq > 0 then
        select c.log_tx, c.log_id into v_from_tx, v_from_id
        from audit.chain c where c.org_id = p_org_id and c.seq = p_from_seq;
        if not found then
            select a.log_tx, a.log_id into v_from_tx, v_from_id
            from audit.chain_anchors a where a.org_id = p_org_id and a.seq = p_from_seq;
        end if;
    end if;
    select c.seq, c.log_tx, c.log_id into v_head
    from audit.chain c where c.org_id = p_org_id order by c.seq desc limit 1;

    return query
    with entries as (
        select c.seq, c.log_id, c.log_tx, c.prev_hash, c.hash,
               pg_catalog.lag(c.seq, 1, p_from_seq) over w as before_seq,
               pg_catalog.lag(c.hash, 1, p_from_hash) over w as before_hash,
               pg_catalog.lag(c.log_tx, 1, v_from_tx) over w as before_tx,
               pg_catalog.lag(c.log_id, 1, v_from_id) over w as before_id,
               l.id is not null as present,
               case when l.id is not null
                    then pg_catalog.sha256(c.prev_hash || audit.canonical(l)) end as recomputed
        from audit.chain c
        left join audit.log l on l.org_id = c.org_id and l.id = c.log_id
        where c.org_id = p_org_id and c.seq > p_from_seq
        window w as (order by c.seq)
    )
    select p_org_id, e.seq, e.log_id, x.problem, x.detail
    from entries e
    cross join lateral (values
        (case when e.seq <> e.before_seq + 1 then 'chain_entry_missing' end,
         pg_catalog.format('chain entries %s to %s are missing', e.before_seq + 1, e.seq - 1)),
        (case when e.seq = e.before_seq + 1 and e.prev_hash <> e.before_hash then 'chain_broken' end,
         'prev_hash is not the hash of the entry before'),
        (case when not e.present then 'row_missing' end,
         pg_catalog.format('audit row %s was removed', e.log_id)),
        (case when e.present and e.recomputed <> e.hash then 'row_changed' end,
         pg_catalog.format('audit row %s does not match its hash', e.log_id)),
        (case when (e.log_tx, e.log_id) <= (e.before_tx, e.before_id) then 'order_swapped' end,
         pg_catalog.format('audit row %s (tx %s) is chained after row %s (tx %s)',
                           e.log_id, e.log_tx, e.before_id, e.before_tx))
    ) x(problem, detail)
    where x.problem is not null
    union all
    -- Rows inside the sealed range that the chain does not hold (a chain entry removed, a row
    -- slipped in with an old transaction id).
    select p_org_id, null::bigint, l.id, 'chain_entry_missing',
           pg_catalog.format('audit row %s (tx %s) lies in the sealed range but is not chained', l.id, l.tx_id)
    from audit.log l
    where v_head.seq is not null
      and l.org_id = p_org_id
      and (l.tx_id, l.id) > (v_from_tx, v_from_id)
      and (l.tx_id, l.id) <= (v_head.log_tx, v_head.log_id)
      and not exists (select from audit.chain c where c.org_id = l.org_id and c.log_id = l.id)
    order by 2 nulls last, 3;
end
$$;
comment on function audit.verify_org(uuid, bigint, bytea) is
    'Walks one organisation''s chain after entry p_from_seq (whose hash is p_from_hash); returns the problems.';

-- Seal, then verify the chain of one organisation (or of all); the problems found, none if intact.
-- With a checkpoint (p_from_seq, p_from_hash as printed by audit.checkpoint) it first proves the
-- chain still passes through the checkpoint, then verifies the entries after it (incremental:
-- the entries before were proven by the run that produced the checkpoint) or, with p_full, every
-- entry from the start, which proves that no row up to the checkpoint changed since it was taken.
create or replace function audit.verify_chain(
    p_org_id uuid default null, p_from_seq bigint default null, p_from_hash text default null,
    p_full boolean default false
) returns table (org_id uuid, seq bigint, log_id bigint, problem text, detail text)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid;
    v_start record;
    v_from_seq bigint;
    v_from_hash bytea;
    v_entry_hash bytea;
    v_head bigint;
begin
    if (p_from_seq is null) <> (p_from_hash is null) or (p_from_seq is not null and p_org_id is null) then
        raise exception 'a checkpoint needs an organisation, a seq and a hash'
            using errcode = '22023',
                  detail = pg_catalog.format('org %s, seq %s, hash %s', coalesce(p_org_id::text, 'null'),
                                             coalesce(p_from_seq::text, 'null'), coalesce(p_from_hash, 'null')),
                  hint = 'Pass all three as printed by audit.checkpoint(org), or only the organisation.';
    end if;
    if p_from_hash is not null and p_from_hash !~ '^[0-9a-fA-F]{64}$' then
        raise exception 'checkpoint hash must be 64 hexadecimal digits'
            using errcode = '22023',
                  detail = pg_catalog.format('The hash given is %s.', p_from_hash),
                  hint = 'Pass the hash exactly as audit.checkpoint(org) printed it.';
    end if;
    if p_org_id is not null and not exists (select from app.organizations o where o.id = p_org_id) then
        raise exception 'unknown organisation %', p_org_id
            using errcode = '22023',
                  detail = pg_catalog.format('No organisation has the id %s.', p_org_id),
                  hint = 'Pass the id of an organisation (select id, slug from app.organizations).';
    end if;

    perform audit.seal(p_org_id);

    for v_org in
        select o.id from app.organizations o where p_org_id is null or o.id = p_org_id order by o.id
    loop
        select s.seq, s.hash into v_start from audit.chain_start(v_org) s;
        v_from_seq := v_start.seq;
        v_from_hash := v_start.hash;
        if p_from_seq is not null then
            select pg_catalog.max(c.seq) into v_head from audit.chain c where c.org_id = v_org;
            if p_from_seq < v_start.seq then
                return query select v_org, p_from_seq, null::bigint, 'checkpoint_purged',
                    pg_catalog.format('entries up to %s were purged by retention; verified from the anchor at %s',
                                      v_start.seq, v_start.seq);
            elsif p_from_seq > coalesce(v_head, v_start.seq) then
                return query select v_org, p_from_seq, null::bigint, 'chain_truncated',
                    pg_catalog.format('the checkpoint names entry %s but the chain ends at %s',
                                      p_from_seq, coalesce(v_head, v_start.seq));
            else
                if p_from_seq = v_start.seq then
                    v_entry_hash := v_start.hash;
                else
                    select c.hash into v_entry_hash from audit.chain c
                    where c.org_id = v_org and c.seq = p_from_seq;
                end if;
                if v_entry_hash is distinct from pg_catalog.decode(p_from_hash, 'hex') then
                    return query select v_org, p_from_seq, null::bigint, 'checkpoint_mismatch',
                        pg_catalog.format('entry %s has hash %s, the checkpoint says %s', p_from_seq,
                                          coalesce(pg_catalog.encode(v_entry_hash, 'hex'), 'none'),
                                          pg_catalog.lower(p_from_hash));
                end if;
                -- The rest is verified from the chain's own entry (a mismatch is reported once).
                if not p_full then
                    v_from_seq := p_from_seq;
                    v_from_hash := coalesce(v_entry_hash, pg_catalog.decode(p_from_hash, 'hex'));
                end if;
            end if;
        end if;
        return query select * from audit.verify_org(v_org, v_from_seq, v_from_hash);
    end loop;
end
$$;
comment on function audit.verify_chain(uuid, bigint, text, boolean) is
$$Seals, then verifies the audit chain of one organisation (or all); returns the problems found.

No rows means intact. With a checkpoint (seq, hash from audit.checkpoint): proves the chain still
passes through it, then verifies the entries after it; with p_full => true every entry from the
start (proving no row up to the checkpoint changed). Problems: row_changed (a row's bytes differ from what was sealed),
row_missing (a sealed row was removed), order_swapped (entries out of (tx_id, id) order),
chain_entry_missing (a gap in the chain, or a row in the sealed range that is not chained),
chain_broken (an entry does not follow the previous hash), and with a checkpoint:
checkpoint_mismatch, chain_truncated, checkpoint_purged.$$;

grant usage on schema audit to sync_worker;
grant execute on function audit.seal(uuid), audit.checkpoint(uuid),
    audit.verify_chain(uuid, bigint, text, boolean) to sync_worker;
