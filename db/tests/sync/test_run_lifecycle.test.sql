-- A run opens with sync.started and an audit entry; it finishes completed, partial or failed by
-- what was fetched and merged; a failure notifies the organisation's superadmins; a run left open
-- by a worker that died is closed as abandoned, and failed, by the next one (even when it had
-- merged a part: it never finished).
begin;
select plan(20);

select tests.set_var('org', tests.create_org('sync-lifecycle')::text);
select tests.set_var('admin', tests.create_user(tests.var('org')::uuid, 'superadmin')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin')::text);

-- Opened.
select tests.set_var('run', sync.start_run('sync-lifecycle', 'employees', 'zenefits')::text);
select is((select status::text from app.sync_runs where id = tests.var('run')::uuid), 'started', 'a run opens started');
select is((select count(*)::integer from app.events where org_id = tests.var('org')::uuid and type = 'sync.started'
           and entity_id = tests.var('run')), 1, 'sync.started is emitted');
select is((select details ->> 'action' from audit.log where org_id = tests.var('org')::uuid
           and event_type = 'sync_run' and entity_id = tests.var('run')), 'started', 'and audited');
select throws_ok($$select sync.start_run('sync-lifecycle', 'employees', 'classroom')$$, '22023', null,
                 'a type and a source that do not go together are refused');
select throws_ok($$select sync.start_run('no-such-org', 'employees', 'zenefits')$$, '22023', null,
                 'an unknown organisation is refused');

-- A complete fetch and a merge: completed.
select sync.record_fetch(tests.var('run')::uuid, 'zenefits', true, '{"pages": 1}');
select throws_ok(format('select sync.apply_classroom_coursework(%L)', tests.var('run')), '22023',
                 format('sync run %s has no part ''classroom''', tests.var('run')),
                 'an employees run has no Classroom part to merge');
select is((select complete_fetch from app.sync_runs where id = tests.var('run')::uuid), true,
          'a complete fetch is recorded');
select is(sync.apply_zenefits_people(tests.var('run')::uuid) ->> 'processed', '0', 'an empty merge runs');
select is(sync.finish_run(tests.var('run')::uuid) ->> 'status', 'completed',
          'fetched completely and merged: completed');
select isnt((select completed_at from app.sync_runs where id = tests.var('run')::uuid), null, 'completed_at is set');
select throws_ok(format('select sync.finish_run(%L)', tests.var('run')), 'PT409', null,
                 'a finished run cannot finish again');

-- A failed fetch with nothing merged: failed, superadmins told.
select tests.set_var('bad', sync.start_run('sync-lifecycle', 'employees', 'zenefits')::text);
select sync.record_fetch(tests.var('bad')::uuid, 'zenefits', false, '{}', 'Zenefits people page 1: HTTP 500');
select is(sync.finish_run(tests.var('bad')::uuid) ->> 'status', 'failed', 'nothing merged: failed');
select is((select array_agg(recipient_id) from app.notifications
           where org_id = tests.var('org')::uuid and type = 'sync.failed'),
          array[tests.var('admin')::uuid], 'the superadmin (only) is notified');
select is((select count(*)::integer from app.events where org_id = tests.var('org')::uuid and type = 'sync.failed'),
          1, 'sync.failed is emitted');

-- An open run whose worker is gone (this session holds no lock for it any more).
select tests.set_var('dead', sync.start_run('sync-lifecycle', 'completions', 'classroom')::text);
select sync.unlock_org(tests.var('org')::uuid);
select tests.set_var('next', sync.start_run('sync-lifecycle', 'completions', 'classroom')::text);
select is((select status::text from app.sync_runs where id = tests.var('dead')::uuid), 'failed',
          'the next run closes the dead run');
select ok((select errors::text from app.sync_runs where id = tests.var('dead')::uuid) like '%abandoned%',
          'and says it was abandoned');
select is(sync.finish_run(tests.var('next')::uuid, 'stopped by SIGTERM', true) ->> 'status', 'failed',
          'a stopped run with nothing merged is failed');

-- A worker killed after it merged the Zenefits roster: the run is failed, not partial.
select tests.set_var('killed', sync.start_run('sync-lifecycle', 'employees', 'zenefits')::text);
select sync.record_fetch(tests.var('killed')::uuid, 'zenefits', true, '{"pages": 1}');
select sync.apply_zenefits_people(tests.var('killed')::uuid);
select sync.unlock_org(tests.var('org')::uuid);
select tests.set_var('after', sync.start_run('sync-lifecycle', 'employees', 'zenefits')::text);
select is((select status::text from app.sync_runs where id = tests.var('killed')::uuid), 'failed',
          'a run abandoned after a merge is failed, as docs/sync.md says');
select ok((select details -> 'merge' ? 'zenefits' from app.sync_runs where id = tests.var('killed')::uuid),
          'and still says what its merge did');
select is((select priority::text from app.notifications
           where org_id = tests.var('org')::uuid and type = 'sync.failed'
             and action_url = '/sync_runs?id=eq.' || tests.var('killed')),
          'high', 'the superadmin is told it failed');

select * from finish();
rollback;
