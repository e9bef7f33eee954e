-- The hash chain (DESIGN §9): sealing in (tx_id, id) order, checkpoints, and verify_chain finding a
-- changed byte, a removed row, a swapped pair, a missing chain entry. Tampering is done as the
-- superuser with the append-only triggers disabled inside this transaction (all rolled back).
--
-- A test is one transaction, and audit.seal() chains only rows of transactions that have finished,
-- so the rows under test are written with synthetic, old transaction ids (tx_id 10, 11, ...).
-- tests/audit/test_chain_concurrency.py does the same with real, concurrent transactions.
begin;
select plan(39);

-- n audit rows of an organisation, with tx_id from p_first_tx upwards; returns the first id.
create function tests.h4_old_rows(p_org uuid, p_n int, p_first_tx int default 10) returns bigint
language sql set search_path = ''
as $$
    insert into audit.log (org_id, tx_id, event_type, table_name, op, entity_id, new_values, details)
    select p_org, (p_first_tx + i)::text::xid8, 'row_insert', 'departments', 'INSERT', 'd' || i,
           pg_catalog.jsonb_build_object('name', 'Dept ' || i, 'score', 80.50),
           pg_catalog.jsonb_build_object('n', i)
    from pg_catalog.generate_series(0, p_n - 1) i
    order by i
    returning id
$$;
create function tests.h4_problems(p_org uuid) returns text[]
language sql set search_path = ''
as $$ select coalesce(pg_catalog.array_agg(distinct v.problem order by v.problem), '{}')
      from audit.verify_chain(p_org) v $$;

select tests.set_var('a', tests.create_org('chain-a')::text);
select tests.set_var('a1', tests.h4_old_rows(tests.var('a')::uuid, 6)::text);

-- Sealing.
select is(audit.seal(tests.var('a')::uuid), 6::bigint, 'seal chains the six rows of finished transactions');
select is(audit.seal(tests.var('a')::uuid), 0::bigint, 'sealing again chains nothing');
select is((select array_agg(c.seq order by c.seq) from audit.chain c where c.org_id = tests.var('a')::uuid),
          '{1,2,3,4,5,6}'::bigint[], 'entries are numbered 1..n');
select is((select c.prev_hash from audit.chain c where c.org_id = tests.var('a')::uuid and c.seq = 1),
          audit.genesis_hash(tests.var('a')::uuid), 'the first entry follows the organisation''s genesis hash');
select is((select count(*)::int from audit.chain c
           join audit.log l on l.org_id = c.org_id and l.id = c.log_id
           where c.org_id = tests.var('a')::uuid
             and c.hash = sha256(c.prev_hash || audit.canonical(l))),
          6, 'hash = sha256(prev_hash || canonical row) for every entry');
select is((select count(*)::int from audit.chain c
           join audit.chain p on p.org_id = c.org_id and p.seq = c.seq - 1
           where c.org_id = tests.var('a')::uuid and c.prev_hash = p.hash),
          5, 'each entry''s prev_hash is the previous entry''s hash');
select is((select count(*)::int from audit.log l where l.org_id = tests.var('a')::uuid
             and not exists (select from audit.chain c where c.org_id = l.org_id and c.log_id = l.id)),
          (select count(*)::int from audit.log l where l.org_id = tests.var('a')::uuid
             and l.tx_id = pg_current_xact_id()),
          'rows of the running transaction (create_org''s) are not sealed');
select is(tests.h4_problems(tests.var('a')::uuid), '{}'::text[], 'an intact chain verifies');

-- The canonical form covers every column of audit.log, whatever the session's settings.
select is((select jsonb_array_length(convert_from(audit.canonical(l), 'UTF8')::jsonb) from audit.log l
           where l.org_id = tests.var('a')::uuid limit 1),
          (select count(*)::int from pg_attribute a
           where a.attrelid = 'audit.log'::regclass and a.attnum > 0 and not a.attisdropped),
          'the chained bytes include every column of audit.log');
select tests.set_var('canon', encode(audit.canonical(l), 'hex')) from audit.log l
where l.org_id = tests.var('a')::uuid and l.id = tests.var('a1')::bigint;
set local timezone = 'Asia/Kathmandu';
set local datestyle = 'SQL, DMY';
set local extra_float_digits = -3;
select is((select encode(audit.canonical(l), 'hex') from audit.log l
           where l.org_id = tests.var('a')::uuid and l.id = tests.var('a1')::bigint),
          tests.var('canon'), 'the chained bytes do not depend on time zone or date style');
reset timezone; reset datestyle; reset extra_float_digits;

-- Sealing order is (tx_id, id): a row with a higher id but an older transaction comes first.
select tests.set_var('b', tests.create_org('chain-b')::text);
select tests.set_var('b_late', tests.h4_old_rows(tests.var('b')::uuid, 1, 50)::text);
select tests.set_var('b_early', tests.h4_old_rows(tests.var('b')::uuid, 1, 40)::text);
select audit.seal(tests.var('b')::uuid);
select is((select array_agg(c.log_id order by c.seq) from audit.chain c where c.org_id = tests.var('b')::uuid),
          array[tests.var('b_early')::bigint, tests.var('b_late')::bigint],
          'rows are chained in (transaction, id) order, not id order');

-- Checkpoints.
select is((select (k.seq, k.hash)::text from audit.checkpoint(tests.var('a')::uuid) k),
          (select (c.seq, encode(c.hash, 'hex'))::text from audit.chain c
           where c.org_id = tests.var('a')::uuid and c.seq = 6),
          'checkpoint returns the head (seq, hash as hex)');
select tests.set_var('cp3', (select encode(c.hash, 'hex') from audit.chain c
                             where c.org_id = tests.var('a')::uuid and c.seq = 3));
select is((select count(*)::int from audit.verify_chain(tests.var('a')::uuid, 3, tests.var('cp3'))),
          0, 'verification from a matching checkpoint finds nothing');
select is((select array_agg(v.problem) from audit.verify_chain(tests.var('a')::uuid, 3, repeat('ab', 32)) v),
          '{checkpoint_mismatch}'::text[], 'a checkpoint whose hash differs is reported');
select is((select array_agg(v.problem) from audit.verify_chain(tests.var('a')::uuid, 99, tests.var('cp3')) v),
          '{chain_truncated}'::text[], 'a checkpoint beyond the chain''s end is reported as a truncation');
select throws_ok(format('select * from audit.verify_chain(%L, 3, null)', tests.var('a')), '22023', null,
                 'a checkpoint needs both seq and hash');
select throws_ok(format('select * from audit.verify_chain(%L, 3, %L)', tests.var('a'), 'xyz'), '22023',
                 'checkpoint hash must be 64 hexadecimal digits', 'a malformed hash is refused');
select throws_ok('select * from audit.checkpoint(gen_random_uuid())', '22023', null,
                 'checkpoint of an unknown organisation is refused');

-- Tampering, one organisation per kind.
alter table audit.log disable trigger append_only_refuse_update;
alter table audit.log disable trigger append_only_refuse_delete;
alter table audit.log disable trigger append_only_check_purge;
alter table audit.chain disable trigger append_only_refuse_update;
alter table audit.chain disable trigger append_only_refuse_delete;
alter table audit.chain disable trigger append_only_check_purge;

-- 1. One changed byte.
select tests.set_var('c', tests.create_org('chain-c')::text);
select tests.set_var('c1', tests.h4_old_rows(tests.var('c')::uuid, 6)::text);
select audit.seal(tests.var('c')::uuid);
update audit.log set new_values = jsonb_set(new_values, '{name}', '"Dept 3!"')
where org_id = tests.var('c')::uuid and id = tests.var('c1')::bigint + 3;
select is((select array_agg((v.problem, v.log_id = tests.var('c1')::bigint + 3)::text)
           from audit.verify_chain(tests.var('c')::uuid) v),
          '{"(row_changed,t)"}'::text[], 'a changed byte is found, on that row only');
update audit.log set new_values = jsonb_set(new_values, '{name}', '"Dept 3"')
where org_id = tests.var('c')::uuid and id = tests.var('c1')::bigint + 3;
select is(tests.h4_problems(tests.var('c')::uuid), '{}'::text[], 'restored, the chain verifies again');
update audit.log set occurred_at = occurred_at + interval '1 microsecond'
where org_id = tests.var('c')::uuid and id = tests.var('c1')::bigint;
select is(tests.h4_problems(tests.var('c')::uuid), '{row_changed}'::text[], 'a microsecond moved is found');
update audit.log set occurred_at = occurred_at - interval '1 microsecond', actor_role = 'superadmin'
where org_id = tests.var('c')::uuid and id = tests.var('c1')::bigint;
select is(tests.h4_problems(tests.var('c')::uuid), '{row_changed}'::text[], 'a changed actor is found');

-- 2. A removed row.
select tests.set_var('d', tests.create_org('chain-d')::text);
select tests.set_var('d1', tests.h4_old_rows(tests.var('d')::uuid, 6)::text);
select audit.seal(tests.var('d')::uuid);
delete from audit.log where org_id = tests.var('d')::uuid and id = tests.var('d1')::bigint + 4;
select is((select array_agg((v.problem, v.log_id = tests.var('d1')::bigint + 4)::text)
           from audit.verify_chain(tests.var('d')::uuid) v),
          '{"(row_missing,t)"}'::text[], 'a removed row is found');

-- 3. A swapped pair of rows (their contents exchanged, ids kept).
select tests.set_var('e', tests.create_org('chain-e')::text);
select tests.set_var('e1', tests.h4_old_rows(tests.var('e')::uuid, 6)::text);
select audit.seal(tests.var('e')::uuid);
update audit.log l set tx_id = s.tx_id, new_values = s.new_values, entity_id = s.entity_id,
                       details = s.details, occurred_at = s.occurred_at
from audit.log s
where l.org_id = tests.var('e')::uuid and s.org_id = l.org_id
  and ((l.id, s.id) = (tests.var('e1')::bigint + 1, tests.var('e1')::bigint + 2)
       or (l.id, s.id) = (tests.var('e1')::bigint + 2, tests.var('e1')::bigint + 1));
select is((select array_agg(v.problem order by v.log_id) from audit.verify_chain(tests.var('e')::uuid) v),
          '{row_changed,row_changed}'::text[], 'a swapped pair of rows is found (both rows)');

-- 4. A swapped pair of chain entries (the order of the trail changed).
select tests.set_var('f', tests.create_org('chain-f')::text);
select tests.h4_old_rows(tests.var('f')::uuid, 6);
select audit.seal(tests.var('f')::uuid);
update audit.chain set seq = 1000 where org_id = tests.var('f')::uuid and seq = 2;
update audit.chain set seq = 2 where org_id = tests.var('f')::uuid and seq = 3;
update audit.chain set seq = 3 where org_id = tests.var('f')::uuid and seq = 1000;
select ok('order_swapped' = any (tests.h4_problems(tests.var('f')::uuid)),
          'a swapped pair of chain entries is found as order_swapped');
select ok('chain_broken' = any (tests.h4_problems(tests.var('f')::uuid)),
          '... and as broken links');

-- 5. A removed chain entry, and a row slipped in with an old transaction id.
select tests.set_var('g', tests.create_org('chain-g')::text);
select tests.set_var('g1', tests.h4_old_rows(tests.var('g')::uuid, 6)::text);
select audit.seal(tests.var('g')::uuid);
delete from audit.chain where org_id = tests.var('g')::uuid and seq = 3;
select is((select array_agg(distinct v.problem) from audit.verify_chain(tests.var('g')::uuid) v),
          '{chain_entry_missing}'::text[], 'a removed chain entry is found');
select is((select count(*)::int from audit.verify_chain(tests.var('g')::uuid) v
           where v.problem = 'chain_entry_missing' and v.log_id = tests.var('g1')::bigint + 2),
          1, '... naming the row that lost its entry');
select tests.set_var('h', tests.create_org('chain-h')::text);
select tests.h4_old_rows(tests.var('h')::uuid, 6, 100);
select audit.seal(tests.var('h')::uuid);
select tests.set_var('forged', tests.h4_old_rows(tests.var('h')::uuid, 1, 102)::text);
select is((select array_agg((v.problem, v.log_id = tests.var('forged')::bigint)::text)
           from audit.verify_chain(tests.var('h')::uuid) v),
          '{"(chain_entry_missing,t)"}'::text[], 'a row slipped into the sealed range is found');

-- 6. A rewritten chain (every hash recomputed after a change) passes on its own: the checkpoint
--    kept outside the database catches it.
select tests.set_var('i', tests.create_org('chain-i')::text);
select tests.set_var('i1', tests.h4_old_rows(tests.var('i')::uuid, 6)::text);
select tests.set_var('i_cp', (select k.hash from audit.checkpoint(tests.var('i')::uuid) k));
update audit.log set details = '{"n": 99}' where org_id = tests.var('i')::uuid and id = tests.var('i1')::bigint + 1;
delete from audit.chain where org_id = tests.var('i')::uuid;
select audit.seal(tests.var('i')::uuid);
select is(tests.h4_problems(tests.var('i')::uuid), '{}'::text[], 'a fully re-sealed chain verifies alone ...');
select is((select array_agg(v.problem) from audit.verify_chain(tests.var('i')::uuid, 6, tests.var('i_cp')) v),
          '{checkpoint_mismatch}'::text[], '... but not against the checkpoint exported before');

-- 7. A row before a checkpoint changed, the chain left alone: the incremental run (entries after
--    the checkpoint) does not look there; the full run against the checkpoint finds it.
select tests.set_var('j', tests.create_org('chain-j')::text);
select tests.set_var('j1', tests.h4_old_rows(tests.var('j')::uuid, 6)::text);
select tests.set_var('j_cp', (select k.hash from audit.checkpoint(tests.var('j')::uuid) k));
update audit.log set details = '{"n": 99}' where org_id = tests.var('j')::uuid and id = tests.var('j1')::bigint + 1;
select is((select count(*)::int from audit.verify_chain(tests.var('j')::uuid, 6, tests.var('j_cp'))), 0,
          'an incremental run from a checkpoint checks only what follows it');
select is((select array_agg(v.problem) from audit.verify_chain(tests.var('j')::uuid, 6, tests.var('j_cp'), true) v),
          '{row_changed}'::text[], 'the full run against the checkpoint finds the changed row');

-- All organisations at once.
select ok((select count(*) > 0 from audit.verify_chain() v where v.org_id = tests.var('c')::uuid),
          'verify_chain() without an organisation verifies every organisation');
select is((select count(*)::int from audit.verify_chain() v where v.org_id = tests.var('a')::uuid),
          0, '... and an intact one has no problem');

-- Who may run them: the sync worker (and the owner), not application users.
select function_privs_are('audit', 'seal', array['uuid'], 'sync_worker', '{EXECUTE}'::text[],
                          'the sync worker may seal');
select function_privs_are('audit', 'verify_chain', array['uuid', 'bigint', 'text', 'boolean', 'timestamptz'], 'sync_worker',
                          '{EXECUTE}'::text[], 'the sync worker may verify');
select function_privs_are('audit', 'checkpoint', array['uuid'], 'sync_worker', '{EXECUTE}'::text[],
                          'the sync worker may take a checkpoint');
select ok(not has_function_privilege('authenticated', 'audit.seal(uuid)', 'execute')
          and not has_function_privilege('authenticated', 'audit.verify_chain(uuid, bigint, text, boolean, timestamptz)', 'execute')
          and not has_function_privilege('authenticated', 'audit.purge_expired(uuid, timestamptz)', 'execute')
          and not has_function_privilege('sync_worker', 'audit.purge_expired(uuid, timestamptz)', 'execute'),
          'application users run none of them; nobody but the monthly job purges');

select * from finish();
rollback;
