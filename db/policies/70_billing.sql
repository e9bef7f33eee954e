-- Billing (docs/billing.md): superadmins read their organisation's subscription, the Stripe events
-- received for it and its weekly usage; nobody else reads any of it, and nobody writes it
-- directly (app.apply_stripe_event and the weekly job do). Analysts read the weekly usage of
-- their bound organisations. The deployment's plans (app.billing_plans) are read only by the
-- functions that map a price to a plan.

drop policy if exists "superadmins read their org's subscription" on app.subscriptions;
create policy "superadmins read their org's subscription" on app.subscriptions
    for select to authenticated
    using (org_id = (select app.current_org_id()) and (select app.current_role_in('superadmin')));
grant select on app.subscriptions to authenticated;

drop policy if exists "superadmins read their org's stripe events" on app.stripe_events;
create policy "superadmins read their org's stripe events" on app.stripe_events
    for select to authenticated
    using (org_id = (select app.current_org_id()) and (select app.current_role_in('superadmin')));
grant select on app.stripe_events to authenticated;

drop policy if exists "superadmins read their org's usage" on app.usage_snapshots;
create policy "superadmins read their org's usage" on app.usage_snapshots
    for select to authenticated
    using (org_id = (select app.current_org_id()) and (select app.current_role_in('superadmin')));
grant select on app.usage_snapshots to authenticated;

drop policy if exists "analysts read the usage of their bound organizations" on app.usage_snapshots;
create policy "analysts read the usage of their bound organizations" on app.usage_snapshots
    for select to analyst
    using (org_id = any ((select app.analyst_org_ids())::uuid[]));
grant select on app.usage_snapshots to analyst;

create view api.subscriptions with (security_invoker = true) as
    select org_id, plan, status, seats, current_period_end, cancel_at_period_end, trial_end,
           status_since, seats_exceeded_since, stripe_customer_id, stripe_subscription_id,
           stripe_price_id, state_as_of, updated_at
    from app.subscriptions;
comment on view api.subscriptions is
$$Your organisation's Stripe subscription (superadmins only; no row when billing is not used).

status is Stripe's: trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired
or paused. After a canceled or unpaid subscription's current_period_end, syncs pause and writes
are refused with PT402; reading and exporting stay. seats_exceeded_since is set while more
employees are active than seats (nothing is refused for it).$$;

create view api.stripe_events with (security_invoker = true) as
    select org_id, id, type, created, object_id, applied_at, outcome, detail, payload_sha256
    from app.stripe_events;
comment on view api.stripe_events is
$$The Stripe events received for your organisation and how each was applied (superadmins only).

outcome is applied, stale (older than the state it would change: nothing changed), ignored (a
type not handled) or unmatched.$$;

create view api.usage_snapshots with (security_invoker = true) as
    select org_id, week_start, iso_week, active_employees, active_users, completions, recorded_at
    from app.usage_snapshots;
comment on view api.usage_snapshots is
$$Your organisation's usage per ISO week (superadmins only): active employees and users when the
weekly job ran, completions recorded in the week (the organisation's days).$$;
