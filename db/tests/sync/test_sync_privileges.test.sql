-- The sync worker's rights: staging for open runs and the sync.* functions; nothing of app.*.
-- Nobody else may call the worker's functions.
begin;
select plan(21);

select tests.set_var('org', tests.create_org('sync-privileges')::text);

select function_privs_are('sync', f, args, 'sync_worker', array['EXECUTE'], 'sync_worker may call sync.' || f)
from (values ('start_run', array['text', 'text', 'text', 'uuid', 'boolean', 'text']),
             ('record_fetch', array['uuid', 'text', 'boolean', 'jsonb', 'text']),
             ('record_error', array['uuid', 'text', 'text', 'text']),
             ('finish_run', array['uuid', 'text', 'boolean']),
             ('apply_zenefits_people', array['uuid']),
             ('apply_classroom_coursework', array['uuid']),
             ('apply_classroom_submissions', array['uuid', 'integer', 'integer']),
             ('claim_requests', array['text']),
             ('finish_requests', array['text', 'uuid[]', 'uuid', 'text']),
             ('enqueue_scheduled', array['text', 'numeric']),
             ('run_scheduled_jobs', array['text'])) f(f, args);

select function_privs_are('sync', 'start_run', array['text', 'text', 'text', 'uuid', 'boolean', 'text'],
                          'authenticated', array[]::text[], 'authenticated may not open sync runs');
select function_privs_are('sync', 'apply_zenefits_people', array['uuid'], 'web_app', array[]::text[],
                          'the web app may not merge');

set local role sync_worker;
select throws_ok($$select count(*) from app.employees$$, '42501', null,
                 'the sync worker cannot read employees');
select throws_ok(
    format($$insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
             values (%L, gen_random_uuid(), 'zenefits_person', 1, 0, '{}')$$, tests.var('org')),
    '42501', null, 'the sync worker cannot stage records for a run that does not exist');
select lives_ok(
    $$select set_config('tests.run', sync.start_run('sync-privileges', 'employees', 'zenefits')::text, true)$$,
    'the sync worker opens a run');
select lives_ok(
    format($$insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
             values (%L, %L, 'zenefits_person', 1, 0, '{}')$$, tests.var('org'), current_setting('tests.run')),
    'the sync worker stages records for its open run');
select throws_ok($$select count(*) from sync.staged_records$$, '42501', null,
                 'the sync worker cannot read staged records (the merges do)');
select throws_ok($$delete from sync.staged_records$$, '42501', null,
                 'nor delete them (sync.finish_run does)');
select lives_ok(format('select sync.finish_run(%L)', current_setting('tests.run')),
                'the sync worker finishes its run');
select throws_ok(
    format($$insert into sync.staged_records (org_id, run_id, kind, page, item, payload)
             values (%L, %L, 'zenefits_person', 2, 0, '{}')$$, tests.var('org'), current_setting('tests.run')),
    '42501', null, 'the sync worker cannot stage records for a finished run');
reset role;
select * from finish();
rollback;
