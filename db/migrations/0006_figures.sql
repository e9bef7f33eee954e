-- depends: 0001_foundation
-- Compliance figures and analysts (issue 3, items 6 and 7; docs/analytics.md).
--
-- app.compliance_counters: the live counts behind every compliance rate, one row per
-- organisation × department × location × module × due date (the due date makes "due within N
-- days" a sum too), and app.compliance_headcounts (active employees
-- per organisation × department × location), kept current by statement-level triggers on
-- app.training_assignments and app.employees (db/functions/250_figures_counters.sql). Reading a
-- rate sums a few hundred rows instead of scanning every assignment.
--
-- app.analyst_organizations: which organisations each analyst login may read through the
-- analytics views.

create table app.compliance_counters (
    org_id uuid not null references app.organizations (id),
    id bigint generated always as identity,
    department_id uuid,
    location_id uuid,
    module_id uuid not null,
    due_date date not null,
    -- required assignments (is_required) of active employees, by status; required_count is
    -- their number whatever the status (exempted included)
    required_count integer not null default 0,
    completed_count integer not null default 0,
    in_progress_count integer not null default 0,
    not_started_count integer not null default 0,
    overdue_count integer not null default 0,
    exempted_count integer not null default 0,
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint compliance_counters_statuses_add_up check (
        required_count = completed_count + in_progress_count + not_started_count
                         + overdue_count + exempted_count)
) with (fillfactor = 50);  -- updated all day: room on each page keeps the updates HOT
create unique index compliance_counters_one_row_per_group
    on app.compliance_counters (org_id, department_id, location_id, module_id, due_date)
    nulls not distinct;
comment on table app.compliance_counters is
    'Live counts of required assignments of active employees per org × department × location × module × due date (trigger-maintained; app.verify_compliance_counters).';

-- Active employees per organisation × department × location (the head counts of the figures),
-- kept current by statement-level triggers on app.employees.
create table app.compliance_headcounts (
    org_id uuid not null references app.organizations (id),
    id bigint generated always as identity,
    department_id uuid,
    location_id uuid,
    active_employees integer not null default 0,
    updated_at timestamptz not null default now(),
    primary key (org_id, id)
) with (fillfactor = 50);
create unique index compliance_headcounts_one_row_per_group
    on app.compliance_headcounts (org_id, department_id, location_id) nulls not distinct;
comment on table app.compliance_headcounts is
    'Live count of active employees per org × department × location (trigger-maintained; app.verify_compliance_counters).';

-- What the counter triggers hand to app.tally_compliance_changes: one assignment counted (+1) or
-- uncounted (-1) in a group, with whether it counts towards compliance at all.
create type app.compliance_counter_change as (
    org_id uuid,
    department_id uuid,
    location_id uuid,
    module_id uuid,
    due_date date,
    counts boolean,
    status app.assignment_status,
    sign integer
);

create table app.analyst_organizations (
    role_name name not null,
    org_id uuid not null references app.organizations (id),
    created_at timestamptz not null default now(),
    primary key (role_name, org_id),
    constraint analyst_organizations_role_name_is_not_blank check (btrim(role_name) <> '')
);
create index analyst_organizations_org_idx on app.analyst_organizations (org_id);
comment on table app.analyst_organizations is
    'Which organisations each analyst login role (a member of role analyst) may read through the analytics views.';

-- The trend and as-of reports read the org-wide rows (department and location null) by date.
create index compliance_snapshots_org_wide_idx
    on app.compliance_snapshots (org_id, snapshot_date)
    where department_id is null and location_id is null;

alter table app.compliance_counters enable row level security;
alter table app.compliance_counters force row level security;
alter table app.compliance_headcounts enable row level security;
alter table app.compliance_headcounts force row level security;
alter table app.analyst_organizations enable row level security;
alter table app.analyst_organizations force row level security;
