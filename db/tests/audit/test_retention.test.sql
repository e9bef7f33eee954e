-- The monthly job (DESIGN §9, §12): audit rows past each organisation's
-- retention leave as a prefix of the chain, the hash at the cut is kept as an anchor and the rest
-- still verifies; old events are purged; idempotent; the sync worker may run it, users may not.
-- Rows under test carry synthetic, old transaction ids (see test_chain.test.sql).
begin;
select plan(29);

create function tests.h4_rows_at(p_org uuid, p_first_tx int, p_ages interval[]) returns bigint
language sql set search_path = ''
as $$
    insert into audit.log (org_id, tx_id, occurred_at, event_type, details)
    select p_org, (p_first_tx + a.i)::text::xid8, pg_catalog.now() - a.age, 'sync_run',
           pg_catalog.jsonb_build_object('i', a.i)
    from pg_catalog.unnest(p_ages) with ordinality a(age, i)
    order by a.i
    returning id
$$;
create function tests.h4_problems(p_org uuid) returns text[]
language sql set search_path = ''
as $$ select coalesce(pg_catalog.array_agg(distinct v.problem order by v.problem), '{}')
      from audit.verify_chain(p_org) v $$;
create function tests.h4_kept(p_org uuid) returns bigint
language sql set search_path = ''
as $$ select pg_catalog.count(*) from audit.log l where l.org_id = p_org and l.event_type = 'sync_run' $$;

-- Organisation R (12 months, the default): five rows 14 months old, three recent.
select tests.set_var('r', tests.create_org('retention-r')::text);
select tests.h4_rows_at(tests.var('r')::uuid, 10,
    array['14 months', '14 months', '13 months', '13 months', '13 months', '2 days', '1 day', '1 hour']::interval[]);
select tests.set_var('r_cp2', (select k.hash from audit.checkpoint(tests.var('r')::uuid) k));  -- seals 8
select tests.set_var('r_hash5', (select encode(c.hash, 'hex') from audit.chain c
                                 where c.org_id = tests.var('r')::uuid and c.seq = 5));
select is((select o.audit_retention_months from app.organizations o where o.id = tests.var('r')::uuid),
          12, 'retention defaults to 12 months');

select tests.set_var('run1', app.run_monthly_jobs(app.org_today(tests.var('r')::uuid))::text);
select is(tests.h4_kept(tests.var('r')::uuid), 3::bigint, 'the five rows past 12 months are purged');
select is((select (a.seq, encode(a.hash, 'hex'), a.rows_purged)::text from audit.chain_anchors a
           where a.org_id = tests.var('r')::uuid),
          (select (5, tests.var('r_hash5'), 5)::text), 'the hash at the cut is kept as the anchor');
select is((select array_agg(c.seq order by c.seq) from audit.chain c where c.org_id = tests.var('r')::uuid),
          '{6,7,8}'::bigint[], 'their chain entries went with them');
select is(tests.h4_problems(tests.var('r')::uuid), '{}'::text[], 'the rest of the chain still verifies');
select is((select count(*)::int from audit.verify_chain(tests.var('r')::uuid, 8, tests.var('r_cp2'))), 0,
          'a checkpoint after the cut still verifies');
select is((select array_agg(v.problem) from audit.verify_chain(tests.var('r')::uuid, 2, repeat('00', 32)) v),
          '{checkpoint_purged}'::text[], 'a checkpoint inside the purged part is reported as purged');
select is((select count(*)::int from audit.verify_chain(tests.var('r')::uuid, 5, tests.var('r_hash5'))), 0,
          'a checkpoint at the cut verifies against the anchor');
select ok((tests.var('run1')::jsonb -> 'audit_rows_purged')::int >= 5
          and tests.var('run1')::jsonb -> 'organizations' @> jsonb_build_array(
              jsonb_build_object('org_id', tests.var('r'), 'audit_rows_purged', 5)),
          'the job reports what it purged, per organisation');
select is(current_setting('audit.purging', true), 'off', 'the purge flag is off again after the job');

-- Idempotent; sealing continues after the anchor.
select is(app.run_monthly_jobs(app.org_today(tests.var('r')::uuid)) -> 'organizations', '[]'::jsonb, 'a second run purges nothing');
select is(tests.h4_kept(tests.var('r')::uuid), 3::bigint, '... and keeps the rest');
select tests.h4_rows_at(tests.var('r')::uuid, 30, array['1 minute']::interval[]);
select audit.seal(tests.var('r')::uuid);
select is((select c.prev_hash from audit.chain c where c.org_id = tests.var('r')::uuid and c.seq = 9),
          (select c.hash from audit.chain c where c.org_id = tests.var('r')::uuid and c.seq = 8),
          'new rows are chained after the rest');
select is(tests.h4_problems(tests.var('r')::uuid), '{}'::text[], 'and the chain verifies');

-- Rows aged 11.5 months stay, even in a run for next month: audit rows age by the clock that
-- wrote them, and a day ahead never makes them old enough to go.
select tests.set_var('n', tests.create_org('retention-n')::text);
select tests.h4_rows_at(tests.var('n')::uuid, 10, array['350 days', '1 day']::interval[]);
select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid));
select is(tests.h4_kept(tests.var('n')::uuid), 2::bigint, 'rows younger than 12 months stay');
select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid) + 31);
select is(tests.h4_kept(tests.var('n')::uuid), 2::bigint,
          'a run for next month purges nothing that is inside the retention today');
select is(tests.h4_problems(tests.var('n')::uuid), '{}'::text[], 'the chain still verifies');

-- Everything past retention: the whole chain goes, the anchor carries it on.
select tests.set_var('e', tests.create_org('retention-e')::text);
select tests.h4_rows_at(tests.var('e')::uuid, 10, array['2 years', '2 years']::interval[]);
select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid));
select is((select count(*)::int from audit.chain c where c.org_id = tests.var('e')::uuid), 0,
          'an organisation whose rows are all past retention keeps no chain entry');
select tests.h4_rows_at(tests.var('e')::uuid, 20, array['1 minute']::interval[]);
select audit.seal(tests.var('e')::uuid);
select is((select (c.seq, c.prev_hash = a.hash)::text from audit.chain c
           join audit.chain_anchors a on a.org_id = c.org_id
           where c.org_id = tests.var('e')::uuid),
          '(3,t)', 'the next row follows the anchor');
select is(tests.h4_problems(tests.var('e')::uuid), '{}'::text[], 'and verifies');

-- The cut stops at the first row that must stay: an old row chained after a newer one waits.
select tests.set_var('s', tests.create_org('retention-s')::text);
select tests.h4_rows_at(tests.var('s')::uuid, 10, array['2 years', '1 day', '2 years']::interval[]);
select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid));
select is(tests.h4_kept(tests.var('s')::uuid), 2::bigint, 'only the prefix of the chain past retention is purged');

-- HIPAA-covered organisations keep six years.
select tests.set_var('h', tests.create_org('retention-hipaa')::text);
update app.organizations set audit_retention_months = 72 where id = tests.var('h')::uuid;
select tests.h4_rows_at(tests.var('h')::uuid, 10, array['7 years', '5 years']::interval[]);
select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid));
select is(tests.h4_kept(tests.var('h')::uuid), 1::bigint, 'with 72 months, a 5-year-old row stays and a 7-year-old one goes');

-- Events: 30 days by default, a setting otherwise.
insert into app.events (org_id, type, created_at)
values (tests.var('r')::uuid, 'metrics.refresh', now() - interval '40 days'),
       (tests.var('r')::uuid, 'metrics.refresh', now() - interval '20 days');
select set_config('compliance.event_retention_days', '60', true);
select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid));
select is((select count(*)::int from app.events e where e.org_id = tests.var('r')::uuid), 2,
          'with compliance.event_retention_days = 60, a 40-day-old event stays');
select set_config('compliance.event_retention_days', '', true);
select is((app.run_monthly_jobs(app.org_today(tests.var('r')::uuid)) ->> 'events_purged')::int >= 1, true, 'by default ...');
select is((select count(*)::int from app.events e where e.org_id = tests.var('r')::uuid), 1,
          '... events older than 30 days are purged');
select set_config('compliance.event_retention_days', 'forever', true);
select throws_ok($$select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid))$$, '22023', null, 'a malformed setting is refused');
select set_config('compliance.event_retention_days', '', true);

-- A day far ahead would purge what must be kept.
select throws_ok($$select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid) + 365)$$, '22023', null,
                 'a day more than two months ahead is refused');

-- Who may run it.
select tests.set_var('hr', tests.create_user(tests.var('r')::uuid, 'superadmin', 'root@retention.example')::text);
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid))$$, '42501', null, 'application users cannot run it');
select tests.clear_authentication();
set local role sync_worker;
select lives_ok($$select app.run_monthly_jobs(app.org_today(tests.var('r')::uuid))$$, 'the sync worker runs it');
reset role;

select * from finish();
rollback;
