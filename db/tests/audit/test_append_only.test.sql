-- The audit trail is append-only for every role, the owner and superusers included (DESIGN §9).
-- This file runs as the superuser that owns the tables: the strongest role there is.
begin;
select plan(17);

select tests.set_var('org', tests.create_org('audit-append-only')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@append.example')::text);
select tests.set_var('row', audit.record_event(tests.var('org')::uuid, 'compliance_export')::text);
-- A sealed row of a finished (synthetic, old) transaction, so the chain tables have content too.
insert into audit.log (org_id, tx_id, event_type) values (tests.var('org')::uuid, '10', 'sync_run');
select audit.seal(tests.var('org')::uuid);

select throws_ok(format('update audit.log set event_type = %L where org_id = %L and id = %s',
                        'tampered', tests.var('org'), tests.var('row')),
                 '42501', 'audit.log is append-only: UPDATE is not allowed',
                 'the owner cannot update audit.log');
select throws_ok(format('delete from audit.log where org_id = %L and id = %s', tests.var('org'), tests.var('row')),
                 '42501', 'audit.log is append-only: DELETE is not allowed',
                 'the owner cannot delete from audit.log');
select throws_ok('truncate audit.log', '42501', 'audit.log is append-only: TRUNCATE is not allowed',
                 'the owner cannot truncate audit.log');
select throws_ok('update audit.log set event_type = event_type where false', '42501', null,
                 'even an update of no row is refused');

select throws_ok(format('update audit.chain set hash = prev_hash where org_id = %L', tests.var('org')),
                 '42501', 'audit.chain is append-only: UPDATE is not allowed', 'the chain cannot be updated');
select throws_ok(format('delete from audit.chain where org_id = %L', tests.var('org')),
                 '42501', 'audit.chain is append-only: DELETE is not allowed', 'the chain cannot be deleted from');
select throws_ok('truncate audit.chain', '42501', null, 'the chain cannot be truncated');
select throws_ok('update audit.chain_anchors set seq = seq', '42501', null, 'anchors cannot be updated');
select throws_ok('delete from audit.chain_anchors', '42501', null, 'anchors cannot be deleted');
select throws_ok('truncate audit.chain_anchors', '42501', null, 'anchors cannot be truncated');

-- The retention job's flag alone does not open the trail: only rows behind a retention anchor may go.
select set_config('audit.purging', 'on', true);
select throws_ok(format('delete from audit.log where org_id = %L and tx_id = %L', tests.var('org'), '10'),
                 '42501', null, 'with the purge flag, a sealed row not behind an anchor is still refused');
select throws_ok(format('delete from audit.log where org_id = %L and id = %s', tests.var('org'), tests.var('row')),
                 '42501', null, 'with the purge flag, an unsealed row is still refused');
select throws_ok(format('delete from audit.chain where org_id = %L', tests.var('org')),
                 '42501', null, 'with the purge flag, chain entries not behind an anchor are still refused');
select throws_ok('update audit.log set event_type = event_type', '42501', null,
                 'with the purge flag, updates are still refused');
select set_config('audit.purging', 'off', true);

-- Application users cannot even try: no privilege beyond SELECT.
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok(format('update audit.log set event_type = %L where org_id = %L', 'x', tests.var('org')),
                 '42501', null, 'a user cannot update audit.log');
select throws_ok(format('delete from audit.log where org_id = %L', tests.var('org')),
                 '42501', null, 'a user cannot delete from audit.log');
select tests.clear_authentication();

select is((select count(*)::int from audit.log l where l.org_id = tests.var('org')::uuid
             and l.event_type in ('compliance_export', 'sync_run')),
          2, 'every row is still there');

select * from finish();
rollback;
