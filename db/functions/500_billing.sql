-- Billing (DESIGN §15, docs/billing.md): Stripe events are stored and applied here, in one
-- transaction per event; the web app only verifies their signature. Billing never blocks
-- evidence: the rules below tell superadmins, pause syncs and refuse staff writes after a
-- canceled or unpaid subscription's paid period, and never delete anything.

-- The superadmins of an organisation who are told about its billing (active users only).
create or replace function app.billing_recipients(p_org_id uuid) returns setof uuid
language sql stable security definer
set search_path = ''
as $$
    select u.id from app.app_users u
    where u.org_id = p_org_id and u.active and u.app_role = 'superadmin'
    order by u.id
$$;
comment on function app.billing_recipients(uuid) is
    'The active superadmins of an organisation: who is told about its billing.';

-- A Stripe timestamp (unix seconds, as a number or a string) as an instant; null stays null.
create or replace function app.stripe_time(p_value jsonb) returns timestamptz
language sql immutable parallel safe
set search_path = ''
as $$
    select case when pg_catalog.jsonb_typeof(p_value) in ('number', 'string')
                     and (p_value #>> '{}') ~ '^[0-9]{1,12}$'
                then pg_catalog.to_timestamp((p_value #>> '{}')::double precision) end
$$;
comment on function app.stripe_time(jsonb) is
    'A Stripe unix timestamp (seconds) as timestamptz; null when absent or not a timestamp.';

-- Whether an organisation's billing stops staff writes and syncs, and why: its subscription is
-- canceled or unpaid and the organisation's day is past the last paid day (the local date of
-- current_period_end). Null when nothing stops them (no subscription: billing is not used).
create or replace function app.billing_lock(p_org_id uuid) returns jsonb
language sql stable security definer
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
               'status', s.status, 'plan', s.plan,
               'paid_until', app.local_date(s.org_id, s.current_period_end))
    from app.subscriptions s
    where s.org_id = p_org_id
      and s.status in ('canceled', 'unpaid')
      and app.org_today(s.org_id) > coalesce(app.local_date(s.org_id, s.current_period_end), '-infinity'::date)
$$;
comment on function app.billing_lock(uuid) is
    'Why staff writes and syncs of the organisation are stopped ({status, plan, paid_until}), or null when they are not.';

-- Refuse a write because of billing (PT402), naming the subscription state and what to do.
create or replace function app.refuse_if_billing_locked(p_org_id uuid, p_what text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_lock jsonb := app.billing_lock(p_org_id);
begin
    if v_lock is not null then
        raise exception '% is paused: the subscription is %', p_what, v_lock ->> 'status'
            using errcode = 'PT402',
                  detail = pg_catalog.format(
                      'The organisation''s subscription%s is %s and was paid until %s.',
                      coalesce(' (plan ' || (v_lock ->> 'plan') || ')', ''), v_lock ->> 'status',
                      coalesce(v_lock ->> 'paid_until', 'no paid period')),
                  hint = 'A superadmin can renew the subscription in the billing portal; reading and exporting stay available.';
    end if;
end
$$;
comment on function app.refuse_if_billing_locked(uuid, text) is
    'Raises PT402 when the organisation''s canceled or unpaid subscription is past its paid period.';

-- Seats against active employees: when an organisation's active employees first exceed its
-- subscription's seats, seats_exceeded_since is set and the superadmins are told once; back
-- within the limit, it is cleared. Returns {seats, used, exceeded}. Nothing is ever refused.
create or replace function app.check_seats(p_org_id uuid) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_sub app.subscriptions;
    v_used integer;
    v_recipient uuid;
begin
    select * into v_sub from app.subscriptions s where s.org_id = p_org_id;
    if not found or v_sub.seats is null then
        return null;
    end if;
    select count(*)::integer into v_used
    from app.employees e where e.org_id = p_org_id and e.status = 'active';
    if v_used > v_sub.seats and v_sub.seats_exceeded_since is null then
        update app.subscriptions s set seats_exceeded_since = pg_catalog.now()
        where s.org_id = p_org_id;
        for v_recipient in select app.billing_recipients(p_org_id) loop
            perform app.notify_user(p_org_id, v_recipient, 'billing_seats_exceeded',
                'More active employees than seats',
                pg_catalog.format('%s active employees use the %s seats of the %s plan. Training and syncs go on; add seats in the billing portal.',
                                  v_used, v_sub.seats, coalesce(v_sub.plan, 'current')),
                null, 'medium', null,
                'billing:seats:' || pg_catalog.to_char(pg_catalog.now(), 'YYYY-MM-DD"T"HH24:MI:SS.US'));
        end loop;
    elsif v_used <= v_sub.seats and v_sub.seats_exceeded_since is not null then
        update app.subscriptions s set seats_exceeded_since = null where s.org_id = p_org_id;
    end if;
    return pg_catalog.jsonb_build_object('seats', v_sub.seats, 'used', v_used,
                                         'exceeded', v_used > v_sub.seats);
end
$$;
comment on function app.check_seats(uuid) is
    'Compares active employees with the subscription''s seats; tells superadmins once when over. Never refuses anything.';

-- Store and apply one Stripe event (the parsed body of a verified webhook), in the caller's
-- transaction. Returns {event_id, type, outcome, detail, org_id}; outcome is
--   applied    the event was applied (or changed nothing because the state already said it),
--   stale      older than the state it would change (Stripe does not guarantee order), or about
--              a subscription that was already deleted: changes nothing,
--   ignored    a type this product does not handle: recorded and acknowledged,
--   unmatched  no organisation matches it (unknown client_reference_id or customer),
--   duplicate  the event id was received before: nothing is written at all.
-- Order: each subscription keeps state_as_of, the Stripe `created` time of the newest event
-- applied to it; an event created earlier changes nothing. A deleted (canceled) subscription is
-- final in Stripe, so no later-arriving event about that subscription changes it either; a
-- renewal is a new subscription (new checkout or customer.subscription.created).
create or replace function app.apply_stripe_event(event jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_id text := event ->> 'id';
    v_type text := event ->> 'type';
    v_created timestamptz := app.stripe_time(event -> 'created');
    v_obj jsonb := event #> '{data,object}';
    v_org uuid;
    v_old app.subscriptions;
    v_new app.subscriptions;
    v_has_row boolean := false;
    v_sub_id text;
    v_customer text;
    v_status text;
    v_price text;
    v_outcome text := 'applied';
    v_detail text;
    v_notify_type text;
    v_notify_title text;
    v_notify_message text;
    v_recipient uuid;
    v_inserted text;
    v_changed boolean;
begin
    if event is null or pg_catalog.jsonb_typeof(event) <> 'object' then
        perform app.fail('22023', 'a Stripe event must be a JSON object',
                         pg_catalog.format('The body was %s.', coalesce(pg_catalog.jsonb_typeof(event), 'null')),
                         'Send the event exactly as Stripe delivered it.');
    end if;
    if v_id is null or v_id !~ '^evt_[A-Za-z0-9_]+$' or v_type is null or v_type !~ '^[a-z_.]+$'
       or v_created is null or pg_catalog.jsonb_typeof(v_obj) is distinct from 'object' then
        perform app.fail('22023', 'this is not a Stripe event',
                         pg_catalog.format('id %s, type %s, created %s, data.object %s.',
                                           coalesce(v_id, 'missing'), coalesce(v_type, 'missing'),
                                           coalesce(event ->> 'created', 'missing'),
                                           coalesce(pg_catalog.jsonb_typeof(v_obj), 'missing')),
                         'A Stripe event has an id evt_…, a type, a created time in unix seconds and data.object.');
    end if;

    -- Idempotency: the event id is recorded first; a redelivery writes nothing.
    insert into app.stripe_events (id, type, created, payload_sha256, object_id, outcome)
    values (v_id, v_type, v_created,
            pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(event::text, 'UTF8')), 'hex'),
            v_obj ->> 'id', 'ignored')
    on conflict (id) do nothing
    returning id into v_inserted;
    if v_inserted is null then
        return pg_catalog.jsonb_build_object('event_id', v_id, 'type', v_type, 'outcome', 'duplicate',
                                             'detail', 'this event was received before', 'org_id',
                                             (select e.org_id from app.stripe_events e where e.id = v_id));
    end if;

    if v_type not in ('checkout.session.completed', 'customer.subscription.created',
                      'customer.subscription.updated', 'customer.subscription.deleted',
                      'customer.subscription.trial_will_end', 'invoice.paid',
                      'invoice.payment_failed') then
        return pg_catalog.jsonb_build_object('event_id', v_id, 'type', v_type, 'outcome', 'ignored',
                                             'detail', 'not a type this product handles', 'org_id', null);
    end if;

    -- The organisation: checkout names it (client_reference_id); every other event is found by
    -- its Stripe customer, or, for a subscription not yet known, by the org_id in its metadata.
    v_customer := v_obj ->> 'customer';
    v_sub_id := case when v_type like 'customer.subscription.%' then v_obj ->> 'id'
                     else coalesce(v_obj ->> 'subscription',
                                   v_obj #>> '{parent,subscription_details,subscription}') end;
    if v_type = 'checkout.session.completed' then
        if (v_obj ->> 'client_reference_id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
            select o.id into v_org from app.organizations o where o.id = (v_obj ->> 'client_reference_id')::uuid;
        end if;
        v_detail := pg_catalog.format('no organisation has the client_reference_id %s',
                                      coalesce(v_obj ->> 'client_reference_id', '(none)'));
    else
        select s.org_id into v_org from app.subscriptions s where s.stripe_customer_id = v_customer;
        if v_org is null and v_type like 'customer.subscription.%'
           and (v_obj #>> '{metadata,org_id}') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
            select o.id into v_org from app.organizations o where o.id = (v_obj #>> '{metadata,org_id}')::uuid;
        end if;
        v_detail := pg_catalog.format('no organisation has the Stripe customer %s', coalesce(v_customer, '(none)'));
    end if;
    if v_org is null or v_customer is null or v_customer !~ '^cus_[A-Za-z0-9_]+$' then
        update app.stripe_events e set outcome = 'unmatched', detail = v_detail where e.id = v_id;
        return pg_catalog.jsonb_build_object('event_id', v_id, 'type', v_type, 'outcome', 'unmatched',
                                             'detail', v_detail, 'org_id', null);
    end if;
    v_detail := null;

    select * into v_old from app.subscriptions s where s.org_id = v_org for update;
    v_has_row := found;
    if v_has_row and v_old.stripe_customer_id <> v_customer then
        v_outcome := 'stale';
        v_detail := pg_catalog.format('the organisation''s Stripe customer is %s, not %s',
                                      v_old.stripe_customer_id, v_customer);
    elsif v_has_row and v_created < v_old.state_as_of then
        v_outcome := 'stale';
        v_detail := pg_catalog.format('created %s, before the state of %s',
                                      v_created, v_old.state_as_of);
    elsif v_has_row and v_old.status = 'canceled' and v_old.stripe_subscription_id = v_sub_id
          and v_type <> 'customer.subscription.deleted' then
        v_outcome := 'stale';
        v_detail := pg_catalog.format('subscription %s was already deleted', v_sub_id);
    elsif v_type like 'invoice.%' and (not v_has_row or v_old.stripe_subscription_id is distinct from v_sub_id) then
        v_outcome := 'stale';
        v_detail := pg_catalog.format('invoice of subscription %s, not the organisation''s current one',
                                      coalesce(v_sub_id, '(none)'));
    end if;
    if v_outcome = 'stale' then
        update app.stripe_events e set org_id = v_org, outcome = 'stale', detail = v_detail where e.id = v_id;
        return pg_catalog.jsonb_build_object('event_id', v_id, 'type', v_type, 'outcome', 'stale',
                                             'detail', v_detail, 'org_id', v_org);
    end if;

    if v_has_row then
        v_new := v_old;
    else
        v_new.org_id := v_org;
        v_new.cancel_at_period_end := false;
    end if;
    v_new.stripe_customer_id := v_customer;
    v_new.state_as_of := greatest(v_created, v_old.state_as_of);
    v_new.last_event_id := v_id;

    if v_type = 'checkout.session.completed' then
        if v_new.stripe_subscription_id is distinct from v_sub_id then
            -- a new subscription: active until its own events say otherwise
            v_new.stripe_subscription_id := v_sub_id;
            v_new.status := 'active';
            v_new.cancel_at_period_end := false;
            v_new.current_period_end := null;
            v_new.trial_end := null;
            v_new.seats := null;
        end if;
        v_price := coalesce(v_obj #>> '{metadata,price_id}', v_new.stripe_price_id);
    elsif v_type like 'customer.subscription.%' then
        v_status := v_obj ->> 'status';
        if v_type = 'customer.subscription.deleted' then
            v_status := 'canceled';
        end if;
        if v_status is null or not v_status = any (pg_catalog.enum_range(null::app.subscription_status)::text[]) then
            v_detail := pg_catalog.format('unknown subscription status %s', coalesce(v_status, '(none)'));
            update app.stripe_events e set org_id = v_org, outcome = 'ignored', detail = v_detail where e.id = v_id;
            return pg_catalog.jsonb_build_object('event_id', v_id, 'type', v_type, 'outcome', 'ignored',
                                                 'detail', v_detail, 'org_id', v_org);
        end if;
        v_new.stripe_subscription_id := v_sub_id;
        v_new.status := v_status::app.subscription_status;
        v_new.cancel_at_period_end := coalesce((v_obj ->> 'cancel_at_period_end')::boolean, false);
        v_new.current_period_end := coalesce(app.stripe_time(v_obj -> 'current_period_end'),
                                             app.stripe_time(v_obj #> '{items,data,0,current_period_end}'),
                                             v_new.current_period_end);
        v_new.trial_end := app.stripe_time(v_obj -> 'trial_end');
        v_price := coalesce(v_obj #>> '{items,data,0,price,id}', v_obj #>> '{plan,id}', v_new.stripe_price_id);
        v_new.seats := null;
        if v_type = 'customer.subscription.trial_will_end' then
            v_notify_type := 'billing_trial_ending';
            v_notify_title := 'The trial ends soon';
            v_notify_message := pg_catalog.format(
                'The trial ends on %s. Add a payment method in the billing portal to keep the subscription.',
                coalesce(app.local_date(v_org, v_new.trial_end)::text, 'its end date'));
        elsif v_type = 'customer.subscription.deleted' then
            v_notify_type := 'billing_canceled';
            v_notify_title := 'The subscription was canceled';
            v_notify_message := pg_catalog.format(
                'The subscription was canceled. Everything stays readable and exportable; after %s syncs pause and changes are refused until a superadmin subscribes again.',
                coalesce(app.local_date(v_org, v_new.current_period_end)::text, 'the paid period'));
        end if;
    elsif v_type = 'invoice.paid' then
        if v_new.status in ('past_due', 'unpaid', 'incomplete') then
            v_new.status := 'active';
        end if;
        v_new.current_period_end := greatest(v_new.current_period_end,
                                             app.stripe_time(v_obj #> '{lines,data,0,period,end}'));
        v_price := v_new.stripe_price_id;
    elsif v_type = 'invoice.payment_failed' then
        if v_new.status in ('active', 'trialing') then
            v_new.status := 'past_due';
        end if;
        v_price := v_new.stripe_price_id;
        v_notify_type := 'billing_payment_failed';
        v_notify_title := 'A payment failed';
        v_notify_message := pg_catalog.format(
            'Stripe could not collect invoice %s; the subscription is %s. Update the payment method in the billing portal. Training records and syncs are not affected.',
            coalesce(v_obj ->> 'number', v_obj ->> 'id'), v_new.status);
    end if;

    v_new.stripe_price_id := v_price;
    select p.plan, coalesce(v_new.seats, p.seats_included
                                         * greatest(coalesce((v_obj #>> '{items,data,0,quantity}')::integer,
                                                             (v_obj #>> '{quantity}')::integer, 1), 1))
    into v_new.plan, v_new.seats
    from app.billing_plans p where p.stripe_price_id = v_price;
    if v_price is not null and not found then
        v_detail := pg_catalog.format('price %s is not a plan of this deployment (app.billing_plans)', v_price);
        v_new.plan := null;
        v_new.seats := null;
    end if;
    if v_new.status is distinct from v_old.status then
        v_new.status_since := v_created;
    end if;

    v_changed := (v_new.stripe_subscription_id, v_new.stripe_price_id, v_new.plan, v_new.status,
                  v_new.seats, v_new.current_period_end, v_new.cancel_at_period_end, v_new.trial_end)
                 is distinct from
                 (v_old.stripe_subscription_id, v_old.stripe_price_id, v_old.plan, v_old.status,
                  v_old.seats, v_old.current_period_end, v_old.cancel_at_period_end, v_old.trial_end);
    if not v_has_row then
        insert into app.subscriptions (org_id, stripe_customer_id, stripe_subscription_id,
                                       stripe_price_id, plan, status, seats, current_period_end,
                                       cancel_at_period_end, trial_end, status_since, state_as_of,
                                       last_event_id)
        values (v_org, v_new.stripe_customer_id, v_new.stripe_subscription_id, v_new.stripe_price_id,
                v_new.plan, v_new.status, v_new.seats, v_new.current_period_end,
                v_new.cancel_at_period_end, v_new.trial_end, v_new.status_since, v_new.state_as_of,
                v_new.last_event_id)
        returning * into v_new;
    else
        update app.subscriptions s
        set stripe_subscription_id = v_new.stripe_subscription_id,
            stripe_price_id = v_new.stripe_price_id, plan = v_new.plan, status = v_new.status,
            seats = v_new.seats, current_period_end = v_new.current_period_end,
            cancel_at_period_end = v_new.cancel_at_period_end, trial_end = v_new.trial_end,
            status_since = v_new.status_since, state_as_of = v_new.state_as_of,
            last_event_id = v_new.last_event_id
        where s.org_id = v_org
        returning * into v_new;
    end if;

    if v_changed then
        perform audit.record_event(v_org, 'subscription_changed', null, 'subscriptions', v_new.id::text,
            pg_catalog.jsonb_build_object(
                'cause', pg_catalog.jsonb_build_object('stripe_event_id', v_id, 'type', v_type),
                'from', case when v_has_row then pg_catalog.jsonb_build_object(
                            'status', v_old.status, 'plan', v_old.plan, 'seats', v_old.seats,
                            'current_period_end', v_old.current_period_end,
                            'cancel_at_period_end', v_old.cancel_at_period_end) end,
                'to', pg_catalog.jsonb_build_object(
                            'status', v_new.status, 'plan', v_new.plan, 'seats', v_new.seats,
                            'current_period_end', v_new.current_period_end,
                            'cancel_at_period_end', v_new.cancel_at_period_end)));
        for v_recipient in select app.billing_recipients(v_org) loop
            perform app.emit_event(v_org, 'subscription.updated', 'subscription', v_new.id::text, null,
                                   pg_catalog.jsonb_build_object('status', v_new.status, 'plan', v_new.plan),
                                   v_recipient);
        end loop;
    end if;
    if v_notify_type is not null then
        for v_recipient in select app.billing_recipients(v_org) loop
            perform app.notify_user(v_org, v_recipient, v_notify_type, v_notify_title, v_notify_message,
                                    null, case when v_notify_type = 'billing_trial_ending' then 'medium'
                                               else 'high' end::app.notification_priority,
                                    null, 'stripe:' || v_id);
        end loop;
    end if;
    perform app.check_seats(v_org);

    update app.stripe_events e set org_id = v_org, outcome = 'applied',
                                   detail = coalesce(v_detail, case when not v_changed then 'the state already said so' end)
    where e.id = v_id;
    return pg_catalog.jsonb_build_object('event_id', v_id, 'type', v_type, 'outcome', 'applied',
                                         'detail', v_detail, 'org_id', v_org, 'changed', v_changed,
                                         'status', v_new.status);
end
$$;
comment on function app.apply_stripe_event(jsonb) is
    'Stores and applies one verified Stripe event, idempotently (by event id) and order-safely (by its created time).';

revoke execute on function app.billing_recipients(uuid), app.stripe_time(jsonb), app.billing_lock(uuid),
    app.refuse_if_billing_locked(uuid, text), app.check_seats(uuid), app.apply_stripe_event(jsonb)
    from public;
-- app.billing_lock and app.refuse_if_billing_locked are called only by definer functions
-- (app.pre_request, sync.start_run, app.dashboard_billing): no role is granted them, so nobody
-- asks another organisation's billing state.
grant execute on function app.apply_stripe_event(jsonb) to web_app;

-- What the web app needs to open a Stripe Checkout or Billing Portal session for the caller:
-- superadmins only (42501 otherwise); for checkout, a plan of this deployment (p_price_id,
-- 22023 when unknown). Returns {org_id, customer (null before the first checkout), plan, status}.
create or replace function app.billing_session_context(p_price_id text default null) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_plan text;
begin
    if v_org is null or not app.current_role_in('superadmin') then
        perform app.fail('42501', 'only superadmins manage billing',
                         pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
                         'Ask a superadmin of your organisation.');
    end if;
    if p_price_id is not null then
        select p.plan into v_plan from app.billing_plans p where p.stripe_price_id = p_price_id;
        if v_plan is null then
            perform app.fail('22023', pg_catalog.format('%s is not a plan of this deployment', p_price_id),
                             pg_catalog.format('The plans are: %s.',
                                 coalesce((select pg_catalog.string_agg(p.stripe_price_id || ' (' || p.plan || ')', ', '
                                                                        order by p.plan)
                                           from app.billing_plans p), 'none configured')),
                             'Pick one of the plans listed.');
        end if;
    end if;
    return (select pg_catalog.jsonb_build_object('org_id', v_org, 'customer', s.stripe_customer_id,
                                                 'plan', v_plan, 'status', s.status)
            from (select 1) one
            left join app.subscriptions s on s.org_id = v_org);
end
$$;
comment on function app.billing_session_context(text) is
    'For a superadmin: the organisation, its Stripe customer and the plan of a price, to open a Checkout or Portal session.';
revoke execute on function app.billing_session_context(text) from public;
grant execute on function app.billing_session_context(text) to authenticated;

-- The dashboard's billing block, for superadmins (null for everyone else, and when billing is
-- not used): {status, plan, seats, used, since, statusSince, currentPeriodEnd,
-- cancelAtPeriodEnd, writesPaused}. used = active employees; since = when they first exceeded
-- the seats (null while within them).
create or replace function app.dashboard_billing(p_org_id uuid) returns jsonb
language sql stable security definer
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
               'status', s.status, 'plan', s.plan, 'seats', s.seats,
               'used', (select pg_catalog.count(*) from app.employees e
                        where e.org_id = s.org_id and e.status = 'active'),
               'since', s.seats_exceeded_since, 'statusSince', s.status_since,
               'currentPeriodEnd', s.current_period_end,
               'cancelAtPeriodEnd', s.cancel_at_period_end,
               'writesPaused', app.billing_lock(s.org_id) is not null)
    from app.subscriptions s
    where s.org_id = p_org_id and p_org_id = app.current_org_id() and app.current_role_in('superadmin')
$$;
comment on function app.dashboard_billing(uuid) is
    'The billing block of api.dashboard(): for superadmins of the organisation only, else null.';
revoke execute on function app.dashboard_billing(uuid) from public;
grant execute on function app.dashboard_billing(uuid) to authenticated;

-- The weekly usage snapshot (a scheduled job, with the daily and monthly ones): for each
-- organisation, the last complete ISO week (Monday to Sunday) before p_day, the organisation's
-- day, is recorded once: active employees and users when the job runs, completions whose local
-- completion date falls in the week. Seats are compared with active employees at the same time.
-- Idempotent: a recorded week is never rewritten. Returns {weeks, seats_checked}.
create or replace function app.run_weekly_jobs(p_day date) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_weeks integer;
    v_checked integer := 0;
    v_org uuid;
begin
    if p_day is null then
        perform app.fail('22023', 'run_weekly_jobs needs a day', 'p_day was null.',
                         'Pass the date to run for.');
    end if;
    with weeks as (
        select o.id as org_id,
               pg_catalog.date_trunc('week', p_day - 7)::date as week_start
        from app.organizations o
    )
    insert into app.usage_snapshots (org_id, week_start, iso_week, active_employees, active_users,
                                     completions)
    select w.org_id, w.week_start, pg_catalog.to_char(w.week_start, 'IYYY-"W"IW'),
           (select pg_catalog.count(*) from app.employees e
            where e.org_id = w.org_id and e.status = 'active'),
           (select pg_catalog.count(*) from app.app_users u where u.org_id = w.org_id and u.active),
           (select pg_catalog.count(*) from app.training_assignments a
            where a.org_id = w.org_id and a.completion_date is not null
              and app.local_date(a.org_id, a.completion_date) >= w.week_start
              and app.local_date(a.org_id, a.completion_date) < w.week_start + 7)
    from weeks w
    on conflict (org_id, week_start) do nothing;
    get diagnostics v_weeks = row_count;
    for v_org in select s.org_id from app.subscriptions s order by s.org_id loop
        perform app.check_seats(v_org);
        v_checked := v_checked + 1;
    end loop;
    return pg_catalog.jsonb_build_object('weeks', v_weeks, 'seats_checked', v_checked);
end
$$;
comment on function app.run_weekly_jobs(date) is
    'Records each organisation''s usage for the last complete ISO week before the day (once), and checks seats.';
revoke execute on function app.run_weekly_jobs(date) from public;

-- analytics.usage_weekly: the weekly usage snapshots of the analyst's bound organisations.
drop view if exists analytics.usage_weekly;
create view analytics.usage_weekly with (security_invoker = true) as
    select u.org_id, o.slug as organization, u.week_start, u.iso_week, u.active_employees,
           u.active_users, u.completions, u.recorded_at
    from app.usage_snapshots u
    join app.organizations o on o.id = u.org_id;
comment on view analytics.usage_weekly is
$$Usage per organisation and ISO week (Monday to Sunday, the organisation's days), recorded once
by the weekly job after the week ended: active employees and active users when it ran,
completions whose local completion date falls in the week.$$;
comment on column analytics.usage_weekly.iso_week is 'The ISO week, e.g. 2026-W05.';
comment on column analytics.usage_weekly.completions is 'Assignments completed in the week (local completion date).';
grant select on analytics.usage_weekly to analyst;

-- The demo organisation's subscription (called by the demo seed, as the owner): the team plan of
-- the demo deployment and an active subscription, applied through app.apply_stripe_event as
-- Stripe would send it (the same event id each time, so a second call is a duplicate).
create or replace function app.billing_demo_subscription(
    p_org_id uuid, p_price_id text default 'price_demo_team', p_seats_included integer default 50
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_key text := pg_catalog.substr(pg_catalog.md5(p_org_id::text), 1, 16);
begin
    insert into app.billing_plans (stripe_price_id, plan, seats_included, features)
    values (p_price_id, 'team', p_seats_included, '{"exports": true, "sync": true}')
    on conflict (stripe_price_id) do nothing;
    return app.apply_stripe_event(pg_catalog.jsonb_build_object(
        'id', 'evt_demo_' || v_key, 'object', 'event', 'type', 'customer.subscription.created',
        'created', extract(epoch from pg_catalog.now())::bigint,
        'data', pg_catalog.jsonb_build_object('object', pg_catalog.jsonb_build_object(
            'id', 'sub_demo_' || v_key, 'object', 'subscription', 'customer', 'cus_demo_' || v_key,
            'status', 'active', 'cancel_at_period_end', false,
            'current_period_end', extract(epoch from pg_catalog.now() + interval '1 year')::bigint,
            'metadata', pg_catalog.jsonb_build_object('org_id', p_org_id),
            'items', pg_catalog.jsonb_build_object('data', pg_catalog.jsonb_build_array(
                pg_catalog.jsonb_build_object('quantity', 1,
                    'price', pg_catalog.jsonb_build_object('id', p_price_id))))))));
end
$$;
comment on function app.billing_demo_subscription(uuid, text, integer) is
    'Gives an organisation (the demo) an active subscription on a team plan, through app.apply_stripe_event; idempotent.';
revoke execute on function app.billing_demo_subscription(uuid, text, integer) from public;
