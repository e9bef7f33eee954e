-- Early purge of the audit trail (docs/audit.md "Retention anchors"): only the retention job makes
-- anchors, and only past retention; anchors are chained; verification reports any purge that
-- removed rows younger than the retention, and a checkpoint such a purge removed.
--
-- This file runs as the superuser that owns the tables: the strongest role there is. The attack
-- first with the triggers on (refused), then with the triggers off (session_replication_role =
-- replica: not preventable, so it must be found). Rows under test carry synthetic, old
-- transaction ids (see test_chain.test.sql) and write times relative to now().
begin;
select plan(22);

create function tests.h5_rows_at(p_org uuid, p_first_tx int, p_ages interval[]) returns bigint
language sql set search_path = ''
as $$
    insert into audit.log (org_id, tx_id, occurred_at, event_type, details)
    select p_org, (p_first_tx + a.i)::text::xid8, pg_catalog.now() - a.age, 'sync_run',
           pg_catalog.jsonb_build_object('i', a.i)
    from pg_catalog.unnest(p_ages) with ordinality a(age, i)
    order by a.i
    returning id
$$;
create function tests.h5_problems(p_org uuid) returns text[]
language sql set search_path = ''
as $$ select coalesce(pg_catalog.array_agg(distinct v.problem order by v.problem), '{}')
      from audit.verify_chain(p_org) v $$;
create function tests.h5_problems_cp(p_org uuid, p_cp text, p_with_time boolean) returns text[]
language sql set search_path = ''
as $$ select coalesce(pg_catalog.array_agg(distinct v.problem order by v.problem), '{}')
      from audit.verify_chain(p_org, (p_cp::jsonb ->> 'seq')::bigint, p_cp::jsonb ->> 'hash',
                              p_written_at => case when p_with_time then (p_cp::jsonb ->> 'written_at')::timestamptz end) v $$;
create function tests.h5_checkpoint(p_org uuid) returns text
language sql set search_path = ''
as $$ select pg_catalog.jsonb_build_object('seq', k.seq, 'hash', k.hash, 'written_at', k.written_at)::text
      from audit.checkpoint(p_org) k $$;
create function tests.h5_kept(p_org uuid) returns bigint
language sql set search_path = ''
as $$ select pg_catalog.count(*) from audit.log l where l.org_id = p_org $$;
-- The attack with the triggers off: an anchor at the head of the chain, filled in consistently
-- (its hash computed as verification computes it), claiming p_newest as the newest row purged,
-- then every row and chain entry deleted. Returns the rows deleted.
create function tests.h5_purge_behind_triggers(p_org uuid, p_newest timestamptz) returns bigint
language plpgsql set search_path = ''
as $$
declare
    v_rows bigint;
begin
    perform pg_catalog.set_config('session_replication_role', 'replica', true);
    insert into audit.chain_anchors (org_id, seq, hash, log_tx, log_id, purged_before, rows_purged,
                                     from_seq, newest_purged_at, retention_months, prev_hash, anchor_hash)
    select c.org_id, c.seq, c.hash, c.log_tx, c.log_id, p_newest + interval '1 second', c.seq,
           0, p_newest, o.audit_retention_months, audit.genesis_hash(p_org), audit.genesis_hash(p_org)
    from audit.chain c join app.organizations o on o.id = c.org_id
    where c.org_id = p_org order by c.seq desc limit 1;
    update audit.chain_anchors a set anchor_hash = pg_catalog.sha256(a.prev_hash || audit.anchor_canonical(a))
    where a.org_id = p_org;
    delete from audit.log l where l.org_id = p_org;
    get diagnostics v_rows = row_count;
    delete from audit.chain c where c.org_id = p_org;
    perform pg_catalog.set_config('session_replication_role', 'origin', true);
    return v_rows;
end
$$;

-- Organisation A (HIPAA, 72 months): rows written today and this year, and one 7 years old.
select tests.set_var('a', tests.create_org('early-purge-a')::text);
update app.organizations set audit_retention_months = 72 where id = tests.var('a')::uuid;
select tests.h5_rows_at(tests.var('a')::uuid, 10, array['7 years', '3 months', '2 hours', '1 hour']::interval[]);
select tests.set_var('a_cp', tests.h5_checkpoint(tests.var('a')::uuid));   -- exported before the attack
select tests.set_var('a_head', (select max(c.seq) from audit.chain c where c.org_id = tests.var('a')::uuid)::text);
select tests.set_var('a_rows', tests.h5_kept(tests.var('a')::uuid)::text);

-- The attack as the issue found it: an anchor at the head, the purge flag, delete.
select throws_ok(format('insert into audit.chain_anchors (org_id, seq, hash, log_tx, log_id, purged_before, rows_purged)
                         select org_id, seq, hash, log_tx, log_id, now(), seq from audit.chain
                         where org_id = %L and seq = %s', tests.var('a'), tests.var('a_head')),
                 '42501', 'audit.chain_anchors is written only by the retention job',
                 'the owner cannot write an anchor');
select set_config('audit.purging', 'on', true);
select throws_ok(format('insert into audit.chain_anchors (org_id, seq, hash, log_tx, log_id, purged_before, rows_purged)
                         select org_id, seq, hash, log_tx, log_id, now(), seq from audit.chain
                         where org_id = %L and seq = %s', tests.var('a'), tests.var('a_head')),
                 '42501', 'audit rows younger than the retention of 72 months cannot be purged',
                 'nor with the purge flag set: the anchor would remove rows younger than the retention');
select throws_ok(format('insert into audit.chain_anchors (org_id, seq, purged_before)
                         values (%L, %s, now() - interval ''7 years'')', tests.var('a'), tests.var('a_head')),
                 '42501', 'audit rows younger than the retention of 72 months cannot be purged',
                 'nor one that claims an old cutoff while its range holds a young row');
select throws_ok(format('delete from audit.log where org_id = %L', tests.var('a')), '42501', null,
                 'so the rows cannot be deleted');
select is(tests.h5_kept(tests.var('a')::uuid), tests.var('a_rows')::bigint, 'every row is still there');
select is(tests.h5_problems_cp(tests.var('a')::uuid, tests.var('a_cp'), true), '{}'::text[],
          'and the chain verifies against the checkpoint');

-- With the flag, the owner can cut only what is past retention, and the anchor says what the
-- chain says, whatever the statement gave.
select lives_ok(format('insert into audit.chain_anchors (org_id, seq, hash, log_tx, log_id, purged_before, rows_purged, created_at)
                        values (%L, 1, ''\x00'', ''1'', 1, now() - interval ''73 months'', 99, now() + interval ''9 years'')',
                       tests.var('a')),
                'with the flag, the owner may anchor a row past retention');
select is((select (a.hash = c.hash, a.log_id = c.log_id, a.rows_purged, a.from_seq, a.retention_months,
                   a.newest_purged_at = l.occurred_at, a.created_at = now(), a.prev_hash = audit.genesis_hash(a.org_id))::text
           from audit.chain_anchors a
           join audit.chain c on c.org_id = a.org_id and c.seq = a.seq
           join audit.log l on l.org_id = c.org_id and l.id = c.log_id
           where a.org_id = tests.var('a')::uuid),
          '(t,t,1,0,72,t,t,t)', 'and the anchor records the chain''s entry, range, newest row, retention and time');
select set_config('audit.purging', 'off', true);
select is(tests.h5_problems(tests.var('a')::uuid), '{}'::text[], 'such an anchor verifies');

-- The retention job itself: the 7-year-old row goes, the rest stays, nothing is reported.
select tests.set_var('b', tests.create_org('early-purge-b')::text);
update app.organizations set audit_retention_months = 72 where id = tests.var('b')::uuid;
select tests.h5_rows_at(tests.var('b')::uuid, 10, array['8 years', '7 years', '1 hour']::interval[]);
select audit.seal(tests.var('b')::uuid);
select tests.set_var('b_cp_old', (select jsonb_build_object('seq', c.seq, 'hash', encode(c.hash, 'hex'),
                                                            'written_at', l.occurred_at)::text
                                  from audit.chain c join audit.log l on l.org_id = c.org_id and l.id = c.log_id
                                  where c.org_id = tests.var('b')::uuid and c.seq = 1));
select audit.purge_expired(tests.var('b')::uuid, now() - interval '90 months');   -- the 8-year-old row
select app.run_monthly_jobs(app.org_today(tests.var('b')::uuid));               -- the 7-year-old row
select is((select array_agg((a.seq, a.from_seq, a.rows_purged)::text order by a.seq) from audit.chain_anchors a
           where a.org_id = tests.var('b')::uuid),
          '{"(1,0,1)","(2,1,1)"}'::text[], 'two purges, two anchors, each from the one before');
select is((select a.prev_hash from audit.chain_anchors a where a.org_id = tests.var('b')::uuid and a.seq = 2),
          (select a.anchor_hash from audit.chain_anchors a where a.org_id = tests.var('b')::uuid and a.seq = 1),
          'the second anchor is chained to the first');
select is(tests.h5_problems(tests.var('b')::uuid), '{}'::text[], 'purges within the retention verify');
select is(tests.h5_problems_cp(tests.var('b')::uuid, tests.var('b_cp_old'), true), '{checkpoint_purged}'::text[],
          'a checkpoint that retention removed in time is checkpoint_purged (harmless)');

-- Anchors tampered with behind the triggers.
select set_config('session_replication_role', 'replica', true);
update audit.chain_anchors set newest_purged_at = newest_purged_at - interval '1 day'
where org_id = tests.var('b')::uuid and seq = 1;
select set_config('session_replication_role', 'origin', true);
select is(tests.h5_problems(tests.var('b')::uuid), '{anchor_changed}'::text[], 'a changed anchor is found');
select set_config('session_replication_role', 'replica', true);
delete from audit.chain_anchors where org_id = tests.var('b')::uuid and seq = 1;
select set_config('session_replication_role', 'origin', true);
select is(tests.h5_problems(tests.var('b')::uuid), '{anchor_chain_broken}'::text[], 'a removed anchor is found');

-- The attack behind the triggers, with an anchor that tells the truth about what it purged.
select tests.set_var('c', tests.create_org('early-purge-c')::text);
update app.organizations set audit_retention_months = 72 where id = tests.var('c')::uuid;
select tests.h5_rows_at(tests.var('c')::uuid, 10, array['3 months', '2 hours', '1 hour']::interval[]);
select tests.set_var('c_cp', tests.h5_checkpoint(tests.var('c')::uuid));
select tests.h5_rows_at(tests.var('c')::uuid, 20, array['1 minute']::interval[]);
select tests.h5_purge_behind_triggers(tests.var('c')::uuid, now() - interval '1 minute');
select is(tests.h5_kept(tests.var('c')::uuid), 0::bigint, 'behind the triggers the owner can delete the whole trail');
select is(tests.h5_problems(tests.var('c')::uuid), '{purge_before_retention}'::text[],
          'verification reports the purge of rows younger than 72 months');
select is(tests.h5_problems_cp(tests.var('c')::uuid, tests.var('c_cp'), false),
          '{checkpoint_purged_early,purge_before_retention}'::text[],
          'and the checkpoint exported before it is purged early, not checkpoint_purged');

-- Behind the triggers again, with an anchor that lies (the newest row purged 7 years old):
-- nothing left in the database contradicts it, but the checkpoint's time does.
select tests.set_var('d', tests.create_org('early-purge-d')::text);
update app.organizations set audit_retention_months = 72 where id = tests.var('d')::uuid;
select tests.h5_rows_at(tests.var('d')::uuid, 10, array['3 months', '2 hours', '1 hour']::interval[]);
select tests.set_var('d_cp', tests.h5_checkpoint(tests.var('d')::uuid));
select tests.h5_purge_behind_triggers(tests.var('d')::uuid, now() - interval '7 years');
select is(tests.h5_problems(tests.var('d')::uuid), '{}'::text[],
          'a consistent lie behind the triggers leaves nothing in the database to contradict it');
select is(tests.h5_problems_cp(tests.var('d')::uuid, tests.var('d_cp'), true), '{checkpoint_purged_early}'::text[],
          'but the checkpoint, with the time its row was written, is never satisfied by the purge');
select ok((select v.detail from audit.verify_chain(tests.var('d')::uuid, (tests.var('d_cp')::jsonb ->> 'seq')::bigint,
                                                   tests.var('d_cp')::jsonb ->> 'hash',
                                                   p_written_at => (tests.var('d_cp')::jsonb ->> 'written_at')::timestamptz) v
           where v.problem = 'checkpoint_purged_early') like '%with 72 months of retention only rows written before%',
          'the finding names the retention and the time before which rows could go');

select throws_ok(format('select * from audit.verify_chain(%L, p_written_at => now())', tests.var('d')), '22023',
                 'a checkpoint needs an organisation, a seq and a hash', 'a written_at without its checkpoint is refused');

select * from finish();
rollback;
