-- Billing never blocks evidence (issue 17): seats over the limit only tell superadmins and show
-- on the dashboard; after a canceled or unpaid subscription's paid period, writes are refused
-- with PT402 and syncs pause, while reading goes on; nothing is deleted. The weekly usage job.
begin;
select plan(29);

insert into app.billing_plans (stripe_price_id, plan, seats_included)
values ('price_tiny', 'tiny', 1) on conflict do nothing;

select tests.set_var('org', tests.create_org('billing-lock')::text);
select tests.set_var('super', tests.create_user(tests.var('org')::uuid, 'superadmin', 'super@lock.example')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@lock.example')::text);
select tests.set_var('emp_user', tests.create_user(tests.var('org')::uuid, 'employee', 'emp@lock.example')::text);
select tests.set_var('emp2', tests.create_employee(tests.var('org')::uuid, 'two@lock.example')::text);
update app.organizations set timezone = 'America/Detroit' where id = tests.var('org')::uuid;

-- An active subscription of one seat; two employees are active.
-- Paid until 2026-02-01T04:00Z, which is 2026-01-31 23:00 in Detroit: the last paid day is the 31st.
select is(tests.apply_stripe(tests.stripe_event('evt_lock_1', 'customer.subscription.created', 1767225600,
              tests.stripe_subscription('sub_lock', 'cus_lock', 'active', 'price_tiny',
                                        extract(epoch from timestamptz '2026-02-01 04:00:00+00')::bigint,
                                        false, tests.var('org')::uuid))) ->> 'outcome',
          'applied', 'the subscription is created');
select isnt((select seats_exceeded_since from app.subscriptions where org_id = tests.var('org')::uuid), null,
            'two active employees on one seat: the seats are exceeded');
select is(tests.notification_count(tests.var('super')::uuid, 'billing_seats_exceeded'), 1,
          'the superadmin is told');
select is(tests.notification_count(tests.var('hr')::uuid, 'billing_seats_exceeded'), 0, '... nobody else');
select is((app.check_seats(tests.var('org')::uuid) ->> 'exceeded')::boolean, true, 'checking again still finds them exceeded');
select is(tests.notification_count(tests.var('super')::uuid, 'billing_seats_exceeded'), 1, '... and does not tell again');

select tests.authenticate_as(tests.var('super')::uuid, 'GET');
select is((api.dashboard() -> 'billing') - 'statusSince'::text - 'since'::text - 'currentPeriodEnd'::text,
          '{"status": "active", "plan": "tiny", "seats": 1, "used": 2, "cancelAtPeriodEnd": false, "writesPaused": false}'::jsonb,
          'the superadmin''s dashboard carries the billing block');
select isnt(api.dashboard() #>> '{billing,since}', null, '... with since');
select tests.authenticate_as(tests.var('hr')::uuid, 'GET');
select is(api.dashboard() -> 'billing', 'null'::jsonb, 'an HR admin''s dashboard has no billing block');
select throws_ok($$select app.billing_lock(tests.var('org')::uuid)$$, '42501', null,
                 'no signed-in user asks an organisation''s billing state directly');

-- Over the seats, staff still write.
select lives_ok($$select tests.authenticate_as(tests.var('hr')::uuid, 'POST')$$,
                'over the seats, staff still write');
select tests.clear_authentication();

-- Canceled, on its last paid day: writes go on.
select is(tests.apply_stripe(tests.stripe_event('evt_lock_2', 'customer.subscription.deleted', 1767225700,
              tests.stripe_subscription('sub_lock', 'cus_lock', 'canceled', 'price_tiny',
                                        extract(epoch from timestamptz '2026-02-01 04:00:00+00')::bigint))) ->> 'outcome',
          'applied', 'the subscription is canceled');
select set_config('app.today', '2026-01-31', true);
select lives_ok($$select tests.authenticate_as(tests.var('hr')::uuid, 'POST')$$,
                'on the last paid day (the organisation''s), writes go on');
select tests.clear_authentication();

-- The day after: writes are refused, reads go on, syncs pause.
select set_config('app.today', '2026-02-01', true);
select throws_ok($$select tests.authenticate_as(tests.var('hr')::uuid, 'POST')$$, 'PT402',
                 'changing records is paused: the subscription is canceled',
                 'after the paid period, a write is refused with PT402');
select is((tests.error_of($$select tests.authenticate_as(tests.var('emp_user')::uuid, 'POST')$$)) ->> 'detail',
          'The organisation''s subscription (plan tiny) is canceled and was paid until 2026-01-31.',
          '... naming the state and the paid period');
select is((tests.error_of($$select tests.authenticate_as(tests.var('super')::uuid, 'PATCH')$$)) ->> 'hint',
          'A superadmin can renew the subscription in the billing portal; reading and exporting stay available.',
          '... and what to do');
select lives_ok($$select tests.authenticate_as(tests.var('hr')::uuid, 'GET')$$, 'reading is not refused');
select is((select count(*)::int from api.employees), 2, '... and every employee is still there');
select tests.clear_authentication();
select throws_ok($$select sync.start_run('billing-lock', 'employees', 'zenefits')$$, 'PT402',
                 'syncing is paused: the subscription is canceled', 'the sync pauses');
select is((select count(*)::int from app.sync_runs where org_id = tests.var('org')::uuid), 0, '... and opens no run');
set local role sync_worker;
select is(sync.enqueue_scheduled('billing-lock', 24) #>> '{paused,status}', 'canceled',
          'the scheduler queues no sync and says why');
reset role;
select is((select count(*)::int from app.sync_requests where org_id = tests.var('org')::uuid), 0, '... nothing is queued');

-- Subscribing again lifts it.
select is(tests.apply_stripe(tests.stripe_event('evt_lock_3', 'customer.subscription.created', 1767225800,
              tests.stripe_subscription('sub_lock_2', 'cus_lock', 'active', 'price_tiny',
                                        extract(epoch from timestamptz '2026-03-01 05:00:00+00')::bigint))) ->> 'outcome',
          'applied', 'a new subscription');
select lives_ok($$select tests.authenticate_as(tests.var('hr')::uuid, 'POST')$$, 'writes go on again');
select tests.clear_authentication();

-- The weekly usage snapshot: the last complete ISO week before the day, once.
select is(app.run_weekly_jobs('2026-02-04') ->> 'weeks' is not null, true, 'the weekly job runs');
select is((select iso_week || ' ' || week_start || ' ' || active_employees || ' ' || active_users
           from app.usage_snapshots where org_id = tests.var('org')::uuid),
          '2026-W05 2026-01-26 2 3', 'it records the last complete ISO week of the organisation');
update app.employees set status = 'inactive' where id = tests.var('emp2')::uuid;
select is(app.run_weekly_jobs('2026-02-05') ->> 'weeks', '0', 'a recorded week is not recorded again');
select is((select active_employees from app.usage_snapshots where org_id = tests.var('org')::uuid), 2,
          '... nor rewritten');

-- Analysts read the usage of their bound organisations only.
create role billing_test_analyst login in role analyst;
insert into app.analyst_organizations (role_name, org_id) values ('billing_test_analyst', tests.var('org')::uuid);
set local role billing_test_analyst;
select is((select array_agg(distinct organization) from analytics.usage_weekly), array['billing-lock'],
          'an analyst reads the weekly usage of its bound organisation only');
reset role;

select * from finish();
rollback;
