-- Stripe events (issue 17): stored once, applied idempotently and order-safely, each change
-- audited with its Stripe event as the cause, evented and told to the superadmins.
begin;
select plan(54);

insert into app.billing_plans (stripe_price_id, plan, seats_included, features)
values ('price_team', 'team', 25, '{"exports": true}'), ('price_pro', 'pro', 100, '{"exports": true}');

select tests.set_var('org', tests.create_org('billing-acme')::text);
select tests.set_var('other', tests.create_org('billing-other')::text);
select tests.set_var('super', tests.create_user(tests.var('org')::uuid, 'superadmin', 'super@billing.example')::text);
select tests.set_var('hr', tests.create_user(tests.var('org')::uuid, 'hr_admin', 'hr@billing.example')::text);
select tests.set_var('viewer', tests.create_user(tests.var('org')::uuid, 'viewer', 'viewer@billing.example')::text);
select tests.set_var('other_super', tests.create_user(tests.var('other')::uuid, 'superadmin', 'super@other.example')::text);
-- T = 2026-01-01T00:00:00Z; the paid period ends 31 days later
select tests.set_var('t', '1767225600');
select tests.set_var('end', (1767225600 + 31 * 86400)::text);

create function pg_temp.sub(p_id text, p_status text, p_price text, p_cancel boolean default false,
                            p_quantity integer default 1) returns jsonb
language sql as $$
    select tests.stripe_subscription(p_id, 'cus_acme', p_status, p_price, tests.var('end')::bigint,
                                     p_cancel, tests.var('org')::uuid, p_quantity)
$$;
create function pg_temp.at(p_seconds integer) returns bigint
language sql as $$ select tests.var('t')::bigint + p_seconds $$;
create function pg_temp.state() returns text
language sql as $$
    select concat_ws(' ', status, plan, seats, cancel_at_period_end, stripe_subscription_id)
    from app.subscriptions where org_id = tests.var('org')::uuid
$$;
create function pg_temp.outcome(p_event jsonb) returns text
language sql as $$ select tests.apply_stripe(p_event) ->> 'outcome' $$;

-- Not an event: refused, nothing written.
select throws_ok($$select tests.apply_stripe('{"id": "evt_1", "type": "invoice.paid"}')$$,
                 '22023', 'this is not a Stripe event', 'an event without created or data.object is refused');
select is((select count(*)::int from app.stripe_events), 0, '... and nothing is recorded');

-- The web app may apply events; a signed-in user may not.
select tests.authenticate_as(tests.var('super')::uuid);
select throws_ok($$select app.apply_stripe_event('{}')$$, '42501', null,
                 'a signed-in user (even a superadmin) may not apply Stripe events');
select tests.clear_authentication();

-- Unknown types are acknowledged and recorded; unmatched organisations too.
select is(pg_temp.outcome(tests.stripe_event('evt_unknown', 'customer.created', pg_temp.at(0),
                                             '{"id": "cus_acme", "object": "customer"}')),
          'ignored', 'an unknown type is ignored');
select is((select outcome from app.stripe_events where id = 'evt_unknown'), 'ignored', '... and recorded');
select is(pg_temp.outcome(tests.stripe_event('evt_nobody', 'checkout.session.completed', pg_temp.at(0),
              jsonb_build_object('id', 'cs_1', 'customer', 'cus_x', 'subscription', 'sub_x',
                                 'client_reference_id', gen_random_uuid()))),
          'unmatched', 'a checkout for no organisation is unmatched');
select is(pg_temp.outcome(tests.stripe_event('evt_nocus', 'invoice.paid', pg_temp.at(0),
              '{"id": "in_0", "customer": "cus_nobody", "subscription": "sub_x"}')),
          'unmatched', 'an invoice of an unknown customer is unmatched');
select is((select count(*)::int from app.subscriptions), 0, 'nothing was applied');

-- Checkout activates the subscription and maps its price to a plan.
select is(pg_temp.outcome(tests.stripe_event('evt_checkout', 'checkout.session.completed', pg_temp.at(0),
              jsonb_build_object('id', 'cs_1', 'customer', 'cus_acme', 'subscription', 'sub_1',
                                 'client_reference_id', tests.var('org'),
                                 'metadata', '{"price_id": "price_team"}'::jsonb))),
          'applied', 'checkout.session.completed is applied');
select is(pg_temp.state(), 'active team 25 f sub_1', 'the organisation has an active team subscription');
select is((select count(*)::int from audit.log where event_type = 'subscription_changed'
             and org_id = tests.var('org')::uuid and details #>> '{cause,stripe_event_id}' = 'evt_checkout'),
          1, 'the change is audited with the Stripe event as its cause');
select is((select count(*)::int from app.events where type = 'subscription.updated'
             and recipient_id = tests.var('super')::uuid), 1, 'the superadmin gets a subscription.updated event');
select is((select count(*)::int from app.events where type = 'subscription.updated'
             and recipient_id is distinct from tests.var('super')::uuid), 0, '... and nobody else');

-- A redelivery writes nothing.
select tests.set_var('audit_rows', (select count(*) from audit.log)::text);
select tests.set_var('event_rows', (select count(*) from app.events)::text);
select is(pg_temp.outcome(tests.stripe_event('evt_checkout', 'checkout.session.completed', pg_temp.at(0),
              jsonb_build_object('id', 'cs_1', 'customer', 'cus_acme', 'subscription', 'sub_1',
                                 'client_reference_id', tests.var('org'),
                                 'metadata', '{"price_id": "price_team"}'::jsonb))),
          'duplicate', 'a redelivered event is a duplicate');
select is((select count(*) from audit.log)::text || '/' || (select count(*) from app.events)::text,
          tests.var('audit_rows') || '/' || tests.var('event_rows'), '... which writes no audit row and no event');
select is((select count(*)::int from app.stripe_events where id = 'evt_checkout'), 1, '... and is stored once');

-- customer.subscription.created: quantity 2 of the team price.
select is(pg_temp.outcome(tests.stripe_event('evt_created', 'customer.subscription.created', pg_temp.at(10),
                                             pg_temp.sub('sub_1', 'active', 'price_team', false, 2))),
          'applied', 'customer.subscription.created is applied');
select is(pg_temp.state(), 'active team 50 f sub_1', 'seats = seats included × quantity');
select is((select current_period_end from app.subscriptions where org_id = tests.var('org')::uuid),
          to_timestamp(tests.var('end')::bigint), 'the current period end is Stripe''s');

-- Plan change, then an older update arriving late: it changes nothing.
select is(pg_temp.outcome(tests.stripe_event('evt_upgrade', 'customer.subscription.updated', pg_temp.at(20),
                                             pg_temp.sub('sub_1', 'active', 'price_pro'))),
          'applied', 'customer.subscription.updated is applied');
select is(pg_temp.state(), 'active pro 100 f sub_1', 'the plan follows the price');
select is(pg_temp.outcome(tests.stripe_event('evt_older', 'customer.subscription.updated', pg_temp.at(15),
                                             pg_temp.sub('sub_1', 'past_due', 'price_team'))),
          'stale', 'an older subscription.updated after a newer one is stale');
select is(pg_temp.state(), 'active pro 100 f sub_1', '... and changes nothing');
select is((select outcome || ' ' || org_id from app.stripe_events where id = 'evt_older'),
          'stale ' || tests.var('org'), '... and is recorded as stale for the organisation');

-- A failed payment, then a paid invoice.
select is(pg_temp.outcome(tests.stripe_event('evt_failed', 'invoice.payment_failed', pg_temp.at(30),
              '{"id": "in_1", "number": "ACME-0001", "customer": "cus_acme", "subscription": "sub_1"}')),
          'applied', 'invoice.payment_failed is applied');
select is(pg_temp.state(), 'past_due pro 100 f sub_1', 'a failed payment makes the subscription past due');
select is(tests.notification_count(tests.var('super')::uuid, 'billing_payment_failed'), 1,
          'the superadmin is told the payment failed');
select is(tests.notification_count(tests.var('hr')::uuid, 'billing_payment_failed'), 0, '... an HR admin is not');
select is(pg_temp.outcome(tests.stripe_event('evt_paid', 'invoice.paid', pg_temp.at(40),
              '{"id": "in_2", "customer": "cus_acme", "parent": {"subscription_details": {"subscription": "sub_1"}}}')),
          'applied', 'invoice.paid is applied (subscription under parent, as newer API versions send it)');
select is(pg_temp.state(), 'active pro 100 f sub_1', 'a paid invoice makes it active again');
select is(pg_temp.outcome(tests.stripe_event('evt_failed_late', 'invoice.payment_failed', pg_temp.at(35),
              '{"id": "in_1", "customer": "cus_acme", "subscription": "sub_1"}')),
          'stale', 'a payment failure older than the paid invoice is stale');
select is(pg_temp.state(), 'active pro 100 f sub_1', '... and leaves it active');

-- Trial ending: told, nothing else.
select is(pg_temp.outcome(tests.stripe_event('evt_trial', 'customer.subscription.trial_will_end', pg_temp.at(50),
              tests.stripe_subscription('sub_1', 'cus_acme', 'active', 'price_pro', tests.var('end')::bigint,
                                        false, null, 1, pg_temp.at(3 * 86400)))),
          'applied', 'customer.subscription.trial_will_end is applied');
select is(tests.notification_count(tests.var('super')::uuid, 'billing_trial_ending'), 1,
          'the superadmin is told the trial ends');

-- Cancel at the period's end, then reactivate.
select is(pg_temp.outcome(tests.stripe_event('evt_cancel', 'customer.subscription.updated', pg_temp.at(60),
                                             pg_temp.sub('sub_1', 'active', 'price_pro', true))),
          'applied', 'a cancellation at the period''s end is applied');
select is(pg_temp.state(), 'active pro 100 t sub_1', '... it stays active until then');
select is(pg_temp.outcome(tests.stripe_event('evt_renew', 'customer.subscription.updated', pg_temp.at(70),
                                             pg_temp.sub('sub_1', 'active', 'price_pro', false))),
          'applied', 'a reactivation is applied');
select is(pg_temp.state(), 'active pro 100 f sub_1', '... it no longer ends');

-- Deletion is final for that subscription.
select is(pg_temp.outcome(tests.stripe_event('evt_deleted', 'customer.subscription.deleted', pg_temp.at(80),
                                             pg_temp.sub('sub_1', 'canceled', 'price_pro'))),
          'applied', 'customer.subscription.deleted is applied');
select is(pg_temp.state(), 'canceled pro 100 f sub_1', 'the subscription is canceled');
select is(tests.notification_count(tests.var('super')::uuid, 'billing_canceled'), 1,
          'the superadmin is told it was canceled');
select is(pg_temp.outcome(tests.stripe_event('evt_before_delete', 'customer.subscription.updated', pg_temp.at(75),
                                             pg_temp.sub('sub_1', 'active', 'price_pro'))),
          'stale', 'an older subscription.updated after deleted is stale');
select is(pg_temp.outcome(tests.stripe_event('evt_after_delete', 'customer.subscription.updated', pg_temp.at(80),
                                             pg_temp.sub('sub_1', 'active', 'price_pro'))),
          'stale', 'an update of the deleted subscription is stale even at the same second');
select is(pg_temp.state(), 'canceled pro 100 f sub_1', '... the subscription stays canceled');

-- Subscribing again is a new subscription.
select is(pg_temp.outcome(tests.stripe_event('evt_new_sub', 'customer.subscription.created', pg_temp.at(90),
                                             pg_temp.sub('sub_2', 'active', 'price_team'))),
          'applied', 'a new subscription after a cancellation is applied');
select is(pg_temp.state(), 'active team 25 f sub_2', 'the organisation is active again on the new subscription');
select is((select count(*)::int from audit.log where event_type = 'subscription_changed'
             and org_id = tests.var('org')::uuid),
          10, 'each change, and only a change, is audited');

-- Superadmins read their organisation's billing; nobody else does.
select tests.authenticate_as(tests.var('super')::uuid, 'GET');
select is((select count(*)::int from api.subscriptions)::text || ' ' || (select count(*) from api.stripe_events)::text
          , '1 14', 'a superadmin reads the subscription and its Stripe events');
select tests.authenticate_as(tests.var('hr')::uuid, 'GET');
select is((select count(*)::int from api.subscriptions)::text || ' ' || (select count(*) from api.stripe_events)::text
          , '0 0', 'an HR admin reads no billing');
select tests.authenticate_as(tests.var('viewer')::uuid, 'GET');
select is((select count(*)::int from api.subscriptions) + (select count(*)::int from api.stripe_events), 0,
          'a viewer reads no billing');
select tests.authenticate_as(tests.var('other_super')::uuid, 'GET');
select is((select count(*)::int from api.subscriptions) + (select count(*)::int from api.stripe_events), 0,
          'another organisation''s superadmin reads none of it');
select tests.clear_authentication();

-- The demo organisation's subscription: active, through the same function, once.
select tests.set_var('demo', tests.create_org('billing-demo')::text);
select is(app.billing_demo_subscription(tests.var('demo')::uuid) ->> 'outcome', 'applied', 'the demo subscription is applied');
select is(app.billing_demo_subscription(tests.var('demo')::uuid) ->> 'outcome', 'duplicate', '... once');
select is((select status::text || ' ' || plan from app.subscriptions where org_id = tests.var('demo')::uuid),
          'active team', 'the demo organisation has an active team subscription');

select * from finish();
rollback;
