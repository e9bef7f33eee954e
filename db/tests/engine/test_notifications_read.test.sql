-- Notifications: a user marks only their own read.
begin;
select plan(6);

do $$ begin perform tests.engine_org('notes'); end $$;
do $$ begin perform app.notify_user(tests.var('org')::uuid, tests.var('emp_user')::uuid, 'test.note', 'One', 'first'); end $$;
do $$ begin perform app.notify_user(tests.var('org')::uuid, tests.var('emp_user')::uuid, 'test.note', 'Two', 'second'); end $$;
do $$ begin perform app.notify_user(tests.var('org')::uuid, tests.var('mgr')::uuid, 'test.note', 'Boss', 'theirs'); end $$;
select is(app.notify_user(tests.var('org')::uuid, tests.var('mgr')::uuid, 'test.note', 'Boss', 'again',
                          null, 'low', null, 'k1') is not null
          and app.notify_user(tests.var('org')::uuid, tests.var('mgr')::uuid, 'test.note', 'Boss', 'again',
                              null, 'low', null, 'k1') is null,
          true, 'a dedupe key notifies once');

select tests.authenticate_as(tests.var('emp_user')::uuid);
select is(api.mark_notifications_read(array(select id from app.notifications where title = 'One')), 1,
          'marks the listed notification');
select is(api.mark_notifications_read(array(select tests.var('x')::uuid)), 0, 'unknown ids are ignored');
select is((select count(*)::int from api.notifications where read_at is null), 1, 'the other stays unread');
select is(api.mark_notifications_read(null), 1, 'null marks all of mine');
select tests.clear_authentication();
select is((select count(*)::int from app.notifications where recipient_id = tests.var('mgr')::uuid and read_at is null),
          2, 'nobody else''s notifications change');
select * from finish();
rollback;
