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

-- The retention rule, in one place: on the organisation's local day p_day, audit rows written
-- before the returned instant (midnight of p_day minus p_months, in the organisation's zone) are
-- past retention; rows written at or after it must stay.
create or replace function audit.retention_cutoff(p_day date, p_months integer, p_timezone text)
returns timestamptz
language sql stable parallel safe
set search_path = ''
as $$ select (p_day::timestamp operator(pg_catalog.-) pg_catalog.make_interval(months => p_months))
             at time zone p_timezone $$;
comment on function audit.retention_cutoff(date, integer, text) is
    'Audit rows written before this instant are past a retention of p_months on local day p_day.';

-- The bytes of a retention anchor that the chain of anchors signs (every column but the two
-- hashes of that chain, independent of session settings).
create or replace function audit.anchor_canonical(a audit.chain_anchors) returns bytea
language sql stable parallel safe
set search_path = ''
as $$
    select pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        a.org_id, a.seq, a.from_seq, pg_catalog.encode(a.hash, 'hex'), a.log_tx::text, a.log_id,
        pg_catalog.to_char(a.purged_before at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        pg_catalog.to_char(a.newest_purged_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.retention_months, a.rows_purged,
        pg_catalog.to_char(a.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    )::text, 'UTF8')
$$;
comment on function audit.anchor_canonical(audit.chain_anchors) is
    'The bytes of a retention anchor that its anchor_hash signs (with the previous anchor''s hash).';

-- What a purge at the anchor's time could remove under the retention it recorded: rows written
-- before this instant. The anchor's time is never taken as later than now (a forged future
-- created_at would otherwise excuse any purge).
create or replace function audit.anchor_retention_bound(a audit.chain_anchors) returns timestamptz
language sql stable
set search_path = ''
as $$
    select audit.retention_cutoff(
        (least(a.created_at, pg_catalog.now()) at time zone o.timezone)::date,
        a.retention_months, o.timezone)
    from app.organizations o where o.id = a.org_id
$$;
comment on function audit.anchor_retention_bound(audit.chain_anchors) is
    'The instant before which the anchor''s purge could remove rows, under the retention it recorded.';

-- Whether the anchor's purge removed a row younger than the retention it recorded. Anchors made
-- before the newest purged row was recorded are judged by their cutoff; an anchor that cannot be
-- judged (a value missing) counts as early.
create or replace function audit.anchor_purged_early(a audit.chain_anchors) returns boolean
language sql stable
set search_path = ''
as $$
    select coalesce(case when a.newest_purged_at is not null
                         then a.newest_purged_at >= audit.anchor_retention_bound(a)
                         else a.purged_before > audit.anchor_retention_bound(a) end, true)
$$;
comment on function audit.anchor_purged_early(audit.chain_anchors) is
    'True when the anchor''s purge removed rows younger than the retention in force when it was made.';

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

-- The newest chain entry of an organisation (after sealing): keep (seq, hash, written_at) outside
-- the database and pass them to audit.verify_chain later to prove nothing before them changed
-- and, should a purge remove them, that it did not come before the retention allowed.
-- (The form without written_at returned another row type: it goes once.)
do $$
begin
    if exists (select from pg_catalog.pg_proc p
               where p.oid = pg_catalog.to_regprocedure('audit.checkpoint(uuid)')
                 and not 'written_at' = any (p.proargnames)) then
        drop function audit.checkpoint(uuid);
    end if;
end
$$;
create or replace function audit.checkpoint(p_org_id uuid)
returns table (org_id uuid, seq bigint, hash text, sealed_at timestamptz, written_at timestamptz)
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
        select p_org_id, h.seq, pg_catalog.encode(h.hash, 'hex'), h.sealed_at,
               (select l.occurred_at from audit.log l where l.org_id = p_org_id and l.id = h.log_id)
        from (
            select c.seq, c.hash, c.sealed_at, c.log_id from audit.chain c
            where c.org_id = p_org_id order by c.seq desc limit 1
        ) h
        union all
        select p_org_id, s.seq, pg_catalog.encode(s.hash, 'hex'), null::timestamptz, null::timestamptz
        from audit.chain_start(p_org_id) s
        where not exists (select from audit.chain c where c.org_id = p_org_id);
end
$$;
comment on function audit.checkpoint(uuid) is
$$The head of an organisation's audit chain, sealed first: (seq, hash as hex, sealed_at, written_at).

Export it (print, e-mail, ticket, object store with retention lock) and later run
audit.verify_chain(org, seq, hash, p_written_at => written_at) to prove no row up to it was
changed, removed or reordered, and that no purge removed it before the retention allowed.
written_at is when the head's audit row was written (null when retention purged the whole chain).$$;

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

-- Verify one organisation's retention anchors: each follows the one before (prev_hash, from_seq),
-- matches its own hash, and purged only rows older than the retention it recorded.
create or replace function audit.verify_anchors(p_org_id uuid)
returns table (org_id uuid, seq bigint, log_id bigint, problem text, detail text)
language sql stable security definer
set search_path = ''
as $$
    with anchors as (
        select x as a,
               pg_catalog.lag(x.seq, 1, 0::bigint) over w as before_seq,
               pg_catalog.lag(x.anchor_hash, 1, audit.genesis_hash(p_org_id)) over w as before_hash
        from audit.chain_anchors x
        where x.org_id = p_org_id
        window w as (order by x.seq)
    )
    select p_org_id, (e.a).seq, (e.a).log_id, v.problem, v.detail
    from anchors e
    cross join lateral (values
        (case when (e.a).prev_hash is distinct from e.before_hash
                or (e.a).from_seq is distinct from e.before_seq
                or (e.a).rows_purged is distinct from (e.a).seq - (e.a).from_seq
              then 'anchor_chain_broken' end,
         pg_catalog.format('the anchor at entry %s does not follow the anchor at entry %s '
                           '(it says it purged from entry %s, %s rows)',
                           (e.a).seq, e.before_seq, coalesce((e.a).from_seq::text, 'unknown'),
                           (e.a).rows_purged)),
        (case when (e.a).anchor_hash is distinct from
                   pg_catalog.sha256((e.a).prev_hash operator(pg_catalog.||) audit.anchor_canonical(e.a))
              then 'anchor_changed' end,
         pg_catalog.format('the anchor at entry %s does not match its hash', (e.a).seq)),
        (case when audit.anchor_purged_early(e.a) then 'purge_before_retention' end,
         pg_catalog.format('the purge at entry %s (made %s) removed entries %s to %s, the newest written %s; '
                           'with %s months of retention only rows written before %s could go',
                           (e.a).seq, (e.a).created_at, coalesce((e.a).from_seq + 1, 1), (e.a).seq,
                           coalesce((e.a).newest_purged_at::text, 'before ' || (e.a).purged_before::text),
                           coalesce((e.a).retention_months::text, 'unknown'),
                           coalesce(audit.anchor_retention_bound(e.a)::text, 'an unknown time')))
    ) v(problem, detail)
    where v.problem is not null
    order by (e.a).seq, v.problem
$$;
comment on function audit.verify_anchors(uuid) is
    'Walks one organisation''s retention anchors; returns anchor_chain_broken, anchor_changed, purge_before_retention.';

-- Seal, then verify the chain of one organisation (or of all); the problems found, none if intact.
-- With a checkpoint (p_from_seq, p_from_hash as printed by audit.checkpoint) it first proves the
-- chain still passes through the checkpoint, then verifies the entries after it (incremental:
-- the entries before were proven by the run that produced the checkpoint) or, with p_full, every
-- entry from the start, which proves that no row up to the checkpoint changed since it was taken.
-- A checkpoint that retention purged is satisfied by the anchor that purged it only when that
-- purge respected the retention: by what the anchor recorded, and by p_written_at (the
-- checkpoint's written_at), which comes from outside the database and no anchor can overrule.
drop function if exists audit.verify_chain(uuid, bigint, text, boolean);
create or replace function audit.verify_chain(
    p_org_id uuid default null, p_from_seq bigint default null, p_from_hash text default null,
    p_full boolean default false, p_written_at timestamptz default null
) returns table (org_id uuid, seq bigint, log_id bigint, problem text, detail text)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid;
    v_start record;
    v_anchor audit.chain_anchors;
    v_bound timestamptz;
    v_from_seq bigint;
    v_from_hash bytea;
    v_entry_hash bytea;
    v_head bigint;
begin
    if (p_from_seq is null) <> (p_from_hash is null) or (p_from_seq is not null and p_org_id is null)
       or (p_written_at is not null and p_from_seq is null) then
        raise exception 'a checkpoint needs an organisation, a seq and a hash'
            using errcode = '22023',
                  detail = pg_catalog.format('org %s, seq %s, hash %s, written_at %s',
                                             coalesce(p_org_id::text, 'null'), coalesce(p_from_seq::text, 'null'),
                                             coalesce(p_from_hash, 'null'), coalesce(p_written_at::text, 'null')),
                  hint = 'Pass all three (and written_at) as printed by audit.checkpoint(org), or only the organisation.';
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
            -- The anchor whose purge removed the checkpoint's entry (or ends at it).
            v_anchor := null;
            if p_from_seq <= v_start.seq then
                select a.* into v_anchor from audit.chain_anchors a
                where a.org_id = v_org and a.seq >= p_from_seq order by a.seq limit 1;
                v_bound := audit.anchor_retention_bound(v_anchor);
            end if;
            if v_anchor.seq is not null
               and (audit.anchor_purged_early(v_anchor) or coalesce(p_written_at >= v_bound, false)) then
                return query select v_org, p_from_seq, v_anchor.log_id, 'checkpoint_purged_early',
                    pg_catalog.format('the checkpoint''s entry %s (written %s) was purged by the anchor at entry %s '
                                      '(made %s, newest row purged written %s); with %s months of retention '
                                      'only rows written before %s could go',
                                      p_from_seq, coalesce(p_written_at::text, 'at an unknown time'),
                                      v_anchor.seq, v_anchor.created_at,
                                      coalesce(v_anchor.newest_purged_at::text, 'unknown'),
                                      coalesce(v_anchor.retention_months::text, 'unknown'),
                                      coalesce(v_bound::text, 'an unknown time'));
            elsif p_from_seq < v_start.seq then
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
        return query select * from audit.verify_anchors(v_org);
        return query select * from audit.verify_org(v_org, v_from_seq, v_from_hash);
    end loop;
end
$$;
comment on function audit.verify_chain(uuid, bigint, text, boolean, timestamptz) is
$$Seals, then verifies the audit chain of one organisation (or all); returns the problems found.

No rows means intact. With a checkpoint (seq, hash, written_at from audit.checkpoint): proves the
chain still passes through it, then verifies the entries after it; with p_full => true every
entry from the start (proving no row up to the checkpoint changed). Problems: row_changed (a
row's bytes differ from what was sealed), row_missing (a sealed row was removed), order_swapped
(entries out of (tx_id, id) order), chain_entry_missing (a gap in the chain, or a row in the
sealed range that is not chained), chain_broken (an entry does not follow the previous hash),
anchor_chain_broken and anchor_changed (a retention anchor removed, inserted or changed),
purge_before_retention (a purge removed rows younger than the retention), and with a checkpoint:
checkpoint_mismatch, chain_truncated, checkpoint_purged (harmless: retention removed it in
time), checkpoint_purged_early (a purge removed it before the retention allowed).$$;

grant usage on schema audit to sync_worker;
grant execute on function audit.seal(uuid), audit.checkpoint(uuid),
    audit.verify_chain(uuid, bigint, text, boolean, timestamptz) to sync_worker;
