-- depends: 0012_self_evidence_setting
-- Billing (DESIGN §15, docs/billing.md): each organisation's Stripe subscription, the plans a
-- deployment sells (Stripe price id -> plan), every Stripe event received, and a weekly usage
-- snapshot. The state and its rules live here; the web app only verifies Stripe's signature and
-- hands each event to app.apply_stripe_event. Nothing is ever deleted because of billing.

-- Subscription statuses exactly as Stripe names them.
create type app.subscription_status as enum (
    'trialing', 'active', 'past_due', 'unpaid', 'canceled', 'incomplete', 'incomplete_expired',
    'paused'
);

-- The plans of this deployment (configuration, not an organisation's data).
create table app.billing_plans (
    stripe_price_id text primary key,
    plan text not null,
    seats_included integer not null,
    features jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint billing_plans_price_id_is_a_stripe_price check (stripe_price_id ~ '^price_[A-Za-z0-9_]+$'),
    constraint billing_plans_plan_is_not_blank check (btrim(plan) <> ''),
    constraint billing_plans_seats_included_positive check (seats_included > 0),
    constraint billing_plans_features_is_an_object check (jsonb_typeof(features) = 'object')
);
comment on table app.billing_plans is
    'The plans this deployment sells: Stripe price id -> plan name, seats included per unit, features.';

-- One subscription per organisation (a new Stripe subscription replaces the ended one in place;
-- the audit trail keeps the history). state_as_of is the Stripe `created` time of the newest
-- event applied to it: an older event changes nothing (Stripe does not guarantee order).
create table app.subscriptions (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    stripe_customer_id text not null,
    stripe_subscription_id text,
    stripe_price_id text,
    plan text,
    status app.subscription_status not null,
    seats integer,
    current_period_end timestamptz,
    cancel_at_period_end boolean not null default false,
    trial_end timestamptz,
    status_since timestamptz not null,
    state_as_of timestamptz not null,
    last_event_id text not null,
    seats_exceeded_since timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint subscriptions_one_per_organisation unique (org_id),
    constraint subscriptions_customer_is_one_organisations unique (stripe_customer_id),
    constraint subscriptions_customer_id_is_a_stripe_customer check (stripe_customer_id ~ '^cus_[A-Za-z0-9_]+$'),
    constraint subscriptions_seats_not_negative check (seats >= 0)
);
comment on table app.subscriptions is
    'Each organisation''s Stripe subscription as the webhooks last told it (status as Stripe names it).';
create index subscriptions_stripe_subscription_idx on app.subscriptions (stripe_subscription_id);

-- Every Stripe event received, once (its id is the idempotency key): what it was, when Stripe
-- made it, a digest of the payload, when and how it was applied. org_id is null when no
-- organisation matched it (recorded, acknowledged, never applied).
create table app.stripe_events (
    id text primary key,
    org_id uuid references app.organizations (id),
    type text not null,
    created timestamptz not null,
    payload_sha256 text not null,
    object_id text,
    applied_at timestamptz not null default now(),
    outcome text not null,
    detail text,
    constraint stripe_events_id_is_a_stripe_event check (id ~ '^evt_[A-Za-z0-9_]+$'),
    constraint stripe_events_outcome_is_known
        check (outcome in ('applied', 'stale', 'ignored', 'unmatched'))
);
comment on table app.stripe_events is
    'Every Stripe event received, once: type, Stripe''s created time, payload digest, when and how it was applied.';
create index stripe_events_org_idx on app.stripe_events (org_id, created) where org_id is not null;

alter table app.billing_plans enable row level security;
alter table app.billing_plans force row level security;
alter table app.subscriptions enable row level security;
alter table app.subscriptions force row level security;
alter table app.stripe_events enable row level security;
alter table app.stripe_events force row level security;

-- Usage per organisation per ISO week (the organisation's week, Monday to Sunday), written by the
-- weekly job: active employees, active users, completions recorded in that week.
create table app.usage_snapshots (
    org_id uuid not null references app.organizations (id),
    week_start date not null,
    iso_week text not null,
    active_employees integer not null,
    active_users integer not null,
    completions integer not null,
    recorded_at timestamptz not null default now(),
    primary key (org_id, week_start),
    constraint usage_snapshots_week_starts_on_monday check (extract(isodow from week_start) = 1),
    constraint usage_snapshots_counts_not_negative
        check (active_employees >= 0 and active_users >= 0 and completions >= 0)
);
comment on table app.usage_snapshots is
    'Usage per organisation per ISO week (the organisation''s days): active employees, users, completions.';
alter table app.usage_snapshots enable row level security;
alter table app.usage_snapshots force row level security;

-- The weekly job joins the daily and monthly ones in the scheduled jobs' ledger.
alter table sync.job_runs drop constraint job_runs_job_is_known;
alter table sync.job_runs add constraint job_runs_job_is_known check (job in ('daily', 'weekly', 'monthly'));
