-- pgTAP fixtures of billing (db/tests/billing). Created by the test set-up only.

-- A Stripe event as Stripe sends it (the fields app.apply_stripe_event reads, and a few more).
create or replace function tests.stripe_event(p_id text, p_type text, p_created bigint, p_object jsonb)
returns jsonb
language sql immutable
set search_path = ''
as $$
    select jsonb_build_object('id', p_id, 'object', 'event', 'api_version', '2024-06-20',
                              'created', p_created, 'livemode', false, 'type', p_type,
                              'data', jsonb_build_object('object', p_object), 'pending_webhooks', 1,
                              'request', jsonb_build_object('id', null, 'idempotency_key', null))
$$;

-- A Stripe subscription object (one item of p_price × p_quantity).
create or replace function tests.stripe_subscription(
    p_id text, p_customer text, p_status text, p_price text, p_period_end bigint,
    p_cancel_at_period_end boolean default false, p_org uuid default null, p_quantity integer default 1,
    p_trial_end bigint default null
) returns jsonb
language sql immutable
set search_path = ''
as $$
    select jsonb_build_object('id', p_id, 'object', 'subscription', 'customer', p_customer,
                              'status', p_status, 'cancel_at_period_end', p_cancel_at_period_end,
                              'current_period_end', p_period_end, 'trial_end', p_trial_end,
                              'metadata', case when p_org is null then '{}'::jsonb
                                               else jsonb_build_object('org_id', p_org) end,
                              'items', jsonb_build_object('object', 'list', 'data', jsonb_build_array(
                                  jsonb_build_object('id', 'si_' || p_id, 'quantity', p_quantity,
                                                     'price', jsonb_build_object('id', p_price)))))
$$;

-- Apply an event as the web app does (role web_app, no user), then return to the test's role.
create or replace function tests.apply_stripe(p_event jsonb) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_result jsonb;
begin
    perform set_config('request.jwt.claims', '', true);
    perform set_config('role', 'web_app', true);
    v_result := app.apply_stripe_event(p_event);
    perform set_config('role', 'none', true);
    return v_result;
end
$$;

grant execute on all functions in schema tests to public;
