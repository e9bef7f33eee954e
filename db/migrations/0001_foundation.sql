-- Foundation: schemas, roles, types and the whole domain model (DESIGN §4, §6).
-- Rules, identity helpers, policies and the api schema live in db/functions and db/policies.

-- Default deny ---------------------------------------------------------------------------------
revoke all on schema public from public;
alter default privileges revoke execute on functions from public;

create schema if not exists app;
create schema if not exists audit;
create schema if not exists sync;
create schema if not exists analytics;
create schema if not exists api;

comment on schema app is 'Tables and private helpers of the compliance service; never exposed.';
comment on schema audit is 'The append-only, hash-chained audit trail.';
comment on schema sync is 'Staging tables and merge functions of the sync workers.';
comment on schema analytics is 'Documented read-only views for SQL analysts.';
comment on schema api is 'The public contract served by PostgREST: views and functions, no data.';

-- Roles (cluster-wide, so created only when missing) ------------------------------------------
do $roles$
declare
    r record;
begin
    for r in
        select * from (values
            ('authenticator', 'login noinherit'),
            ('anon',          'nologin'),
            ('authenticated', 'nologin'),
            ('sync_worker',   'login'),
            ('web_app',       'login noinherit'),
            ('analyst',       'nologin')
        ) as roles(name, options)
    loop
        if not exists (select from pg_catalog.pg_roles where rolname = r.name) then
            execute format('create role %I %s', r.name, r.options);
        end if;
        execute format('alter role %I nosuperuser nobypassrls nocreatedb nocreaterole', r.name);
    end loop;
end
$roles$;

grant anon, authenticated to authenticator;
grant authenticated to web_app;

-- Types ---------------------------------------------------------------------------------------
create type app.app_role as enum ('superadmin', 'hr_admin', 'manager', 'employee', 'viewer');
create type app.employee_status as enum ('active', 'inactive', 'terminated');
create type app.record_sync_status as enum ('synced', 'pending', 'error');
create type app.assignment_status as enum ('not_started', 'in_progress', 'completed', 'overdue', 'exempted');
create type app.training_priority as enum ('critical', 'high', 'standard', 'optional');
create type app.requirement_type as enum ('training', 'document', 'certification', 'attestation');
create type app.requirement_status as enum
    ('pending', 'in_progress', 'submitted', 'approved', 'revision_required', 'rejected', 'inactive');
create type app.tier_status as enum ('active', 'inactive');
create type app.tier_change_kind as enum ('initial', 'manual', 'advancement', 'role_change');
create type app.sync_run_type as enum ('employees', 'training_modules', 'completions', 'full');
create type app.sync_source as enum ('zenefits', 'classroom', 'manual', 'scheduled');
create type app.sync_run_status as enum ('started', 'in_progress', 'completed', 'failed', 'partial');
create type app.sync_request_status as enum ('queued', 'running', 'done', 'failed');
create type app.notification_priority as enum ('low', 'medium', 'high');

-- Tenancy and people --------------------------------------------------------------------------
create table app.organizations (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    slug text not null,
    timezone text not null default 'America/Detroit',
    default_passing_score numeric(5, 2) not null default 80.00,
    audit_retention_months integer not null default 12,
    escalation_days integer not null default 14,
    reminder_days integer not null default 7,
    employee_self_report boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint organizations_slug_is_unique unique (slug),
    constraint organizations_slug_is_lowercase_words check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    constraint organizations_name_is_not_blank check (btrim(name) <> ''),
    constraint organizations_passing_score_between_0_and_100
        check (default_passing_score between 0 and 100),
    constraint organizations_retention_at_least_one_month check (audit_retention_months >= 1),
    constraint organizations_escalation_days_not_negative check (escalation_days >= 0),
    constraint organizations_reminder_days_not_negative check (reminder_days >= 0)
);

create table app.departments (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    name text not null,
    code text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint departments_name_is_unique_in_org unique (org_id, name),
    constraint departments_name_is_not_blank check (btrim(name) <> '')
);

create table app.locations (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    name text not null,
    address text,
    zenefits_id text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint locations_name_is_unique_in_org unique (org_id, name),
    constraint locations_name_is_not_blank check (btrim(name) <> '')
);

alter table app.departments add column zenefits_id text;
create unique index departments_zenefits_id_is_unique_in_org
    on app.departments (org_id, zenefits_id) where zenefits_id is not null;
create unique index locations_zenefits_id_is_unique_in_org
    on app.locations (org_id, zenefits_id) where zenefits_id is not null;

create table app.employees (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    zenefits_id text,
    email text not null,
    first_name text not null,
    last_name text not null,
    full_name text generated always as (first_name || ' ' || last_name) stored,
    department_id uuid,
    location_id uuid,
    job_title text,
    start_date date not null default current_date,
    status app.employee_status not null default 'active',
    manager_id uuid,
    classroom_user_id text,
    source_record jsonb,
    last_synced_at timestamptz,
    sync_status app.record_sync_status not null default 'synced',
    sync_errors jsonb,
    deactivated_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, department_id) references app.departments (org_id, id),
    foreign key (org_id, location_id) references app.locations (org_id, id),
    constraint employees_manager_is_in_same_org
        foreign key (org_id, manager_id) references app.employees (org_id, id),
    constraint employees_email_looks_like_an_address check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    constraint employees_first_name_is_not_blank check (btrim(first_name) <> ''),
    constraint employees_last_name_is_not_blank check (btrim(last_name) <> ''),
    constraint employees_manager_is_not_self check (manager_id is distinct from id),
    constraint employees_deactivated_only_when_not_active
        check (deactivated_at is null or status <> 'active')
);
create unique index employees_email_is_unique_in_org on app.employees (org_id, lower(email));
create unique index employees_zenefits_id_is_unique_in_org
    on app.employees (org_id, zenefits_id) where zenefits_id is not null;
create unique index employees_classroom_user_id_is_unique_in_org
    on app.employees (org_id, classroom_user_id) where classroom_user_id is not null;
create index employees_department_idx on app.employees (org_id, department_id);
create index employees_location_idx on app.employees (org_id, location_id);
create index employees_manager_idx on app.employees (org_id, manager_id);
create index employees_status_idx on app.employees (org_id, status);

create table app.app_users (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    email text not null,
    display_name text not null,
    app_role app.app_role not null default 'employee',
    employee_id uuid,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint app_users_employee_is_in_same_org
        foreign key (org_id, employee_id) references app.employees (org_id, id),
    constraint app_users_email_looks_like_an_address check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    constraint app_users_display_name_is_not_blank check (btrim(display_name) <> ''),
    constraint app_users_employee_role_has_an_employee
        check (app_role <> 'employee' or employee_id is not null)
);
-- The JWT's sub is an app_users id: identity look-ups go by id alone.
create unique index app_users_id_is_unique on app.app_users (id);
create unique index app_users_email_is_unique_in_org on app.app_users (org_id, lower(email));
create unique index app_users_employee_has_one_login
    on app.app_users (org_id, employee_id) where employee_id is not null;

-- Training ------------------------------------------------------------------------------------
create table app.training_modules (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    month_key text,
    name text not null,
    due_date date,
    classroom_course_id text,
    classroom_coursework_id text,
    classroom_url text,
    description text,
    estimated_minutes integer,
    passing_score numeric(5, 2) not null default 80.00,
    max_attempts integer not null default 3,
    required_for_new_hires boolean not null default false,
    grace_period_days integer not null default 7,
    validity_days integer,
    active boolean not null default true,
    last_synced_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint training_modules_month_key_is_yyyy_mm
        check (month_key ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    constraint training_modules_name_is_not_blank check (btrim(name) <> ''),
    constraint training_modules_passing_score_between_0_and_100 check (passing_score between 0 and 100),
    constraint training_modules_max_attempts_at_least_1 check (max_attempts >= 1),
    constraint training_modules_grace_period_not_negative check (grace_period_days >= 0),
    constraint training_modules_validity_days_positive check (validity_days is null or validity_days > 0),
    constraint training_modules_estimated_minutes_positive
        check (estimated_minutes is null or estimated_minutes > 0),
    constraint training_modules_coursework_needs_course
        check (classroom_coursework_id is null or classroom_course_id is not null)
);
create unique index training_modules_coursework_is_unique_in_org
    on app.training_modules (org_id, classroom_course_id, classroom_coursework_id)
    where classroom_coursework_id is not null;
create index training_modules_month_idx on app.training_modules (org_id, month_key);
create index training_modules_active_idx on app.training_modules (org_id, active);

create table app.department_training_requirements (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    department_id uuid not null,
    module_id uuid not null,
    required boolean not null default true,
    priority app.training_priority not null default 'standard',
    grace_days integer not null default 7,
    reminder_days_before integer not null default 7,
    completion_target numeric(5, 2) not null default 95.00,
    effective_start date not null default current_date,
    effective_end date,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, department_id) references app.departments (org_id, id),
    foreign key (org_id, module_id) references app.training_modules (org_id, id),
    constraint department_training_requirements_one_rule_per_module
        unique (org_id, department_id, module_id),
    constraint department_training_requirements_grace_days_not_negative check (grace_days >= 0),
    constraint department_training_requirements_reminder_days_not_negative
        check (reminder_days_before >= 0),
    constraint department_training_requirements_target_between_0_and_100
        check (completion_target between 0 and 100),
    constraint department_training_requirements_end_not_before_start
        check (effective_end is null or effective_end >= effective_start)
);
create index department_training_requirements_module_idx
    on app.department_training_requirements (org_id, module_id);

create table app.training_assignments (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    employee_id uuid not null,
    module_id uuid not null,
    due_date date not null,
    status app.assignment_status not null default 'not_started',
    completion_date timestamptz,
    score numeric(5, 2),
    attempts integer not null default 0,
    minutes_spent integer not null default 0,
    is_required boolean not null default true,
    is_late boolean not null default false,
    exemption_reason text,
    exempted_by uuid,
    exempted_at timestamptz,
    classroom_submission_id text,
    classroom_submission jsonb,
    classroom_grade numeric(7, 2),
    last_synced_at timestamptz,
    sync_status app.record_sync_status not null default 'synced',
    sync_errors jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    foreign key (org_id, module_id) references app.training_modules (org_id, id),
    constraint training_assignments_one_per_employee_module_due_date
        unique (org_id, employee_id, module_id, due_date),
    constraint training_assignments_score_between_0_and_100 check (score between 0 and 100),
    constraint training_assignments_attempts_not_negative check (attempts >= 0),
    constraint training_assignments_minutes_spent_not_negative check (minutes_spent >= 0),
    constraint training_assignments_completed_has_completion_date
        check (status <> 'completed' or completion_date is not null),
    constraint training_assignments_exempted_has_reason
        check (status <> 'exempted' or nullif(btrim(exemption_reason), '') is not null)
);
create index training_assignments_employee_idx on app.training_assignments (org_id, employee_id);
create index training_assignments_module_idx on app.training_assignments (org_id, module_id);
create index training_assignments_status_due_idx on app.training_assignments (org_id, status, due_date);
create unique index training_assignments_submission_is_unique_in_org
    on app.training_assignments (org_id, classroom_submission_id)
    where classroom_submission_id is not null;

-- Requirements and tiers ----------------------------------------------------------------------
create table app.compliance_tiers (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    name text not null,
    level integer not null,
    description text,
    min_completion_pct numeric(5, 2) not null default 0,
    min_points integer not null default 0,
    is_default boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint compliance_tiers_name_is_unique_in_org unique (org_id, name),
    constraint compliance_tiers_level_is_unique_in_org unique (org_id, level),
    constraint compliance_tiers_level_at_least_1 check (level >= 1),
    constraint compliance_tiers_min_completion_between_0_and_100
        check (min_completion_pct between 0 and 100),
    constraint compliance_tiers_min_points_not_negative check (min_points >= 0)
);
create unique index compliance_tiers_one_default_per_org
    on app.compliance_tiers (org_id) where is_default;

create table app.role_tier_mappings (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    job_role text not null,
    tier_id uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, tier_id) references app.compliance_tiers (org_id, id),
    constraint role_tier_mappings_job_role_is_not_blank check (btrim(job_role) <> '')
);
create unique index role_tier_mappings_one_tier_per_job_role
    on app.role_tier_mappings (org_id, lower(job_role));

create table app.compliance_requirements (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    name text not null,
    description text,
    type app.requirement_type not null,
    category text,
    difficulty text not null default 'standard',
    points integer not null default 0,
    tier_id uuid not null,
    module_id uuid,
    validity_days integer,
    review_required boolean not null default true,
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, tier_id) references app.compliance_tiers (org_id, id),
    foreign key (org_id, module_id) references app.training_modules (org_id, id),
    constraint compliance_requirements_name_is_unique_in_tier unique (org_id, tier_id, name),
    constraint compliance_requirements_training_links_a_module
        check ((type = 'training') = (module_id is not null)),
    constraint compliance_requirements_points_not_negative check (points >= 0),
    constraint compliance_requirements_validity_days_positive
        check (validity_days is null or validity_days > 0),
    constraint compliance_requirements_difficulty_is_known
        check (difficulty in ('basic', 'standard', 'advanced', 'expert'))
);
create index compliance_requirements_tier_idx on app.compliance_requirements (org_id, tier_id);
create index compliance_requirements_module_idx on app.compliance_requirements (org_id, module_id);

create table app.employee_requirements (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    employee_id uuid not null,
    requirement_id uuid not null,
    status app.requirement_status not null default 'pending',
    evidence jsonb,
    evidence_url text,
    submitted_at timestamptz,
    reviewed_at timestamptz,
    reviewed_by uuid,
    review_comments text,
    expires_at timestamptz,
    is_legacy boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    foreign key (org_id, requirement_id) references app.compliance_requirements (org_id, id),
    constraint employee_requirements_one_per_employee_requirement
        unique (org_id, employee_id, requirement_id),
    constraint employee_requirements_submitted_has_submitted_at
        check (status not in ('submitted', 'approved', 'rejected', 'revision_required')
               or submitted_at is not null),
    constraint employee_requirements_evidence_url_is_http
        check (evidence_url is null or evidence_url ~ '^https?://')
);
create index employee_requirements_employee_idx on app.employee_requirements (org_id, employee_id);
create index employee_requirements_requirement_idx on app.employee_requirements (org_id, requirement_id);
create index employee_requirements_status_idx on app.employee_requirements (org_id, status);

create table app.employee_tiers (
    org_id uuid not null references app.organizations (id),
    employee_id uuid not null,
    tier_id uuid not null,
    status app.tier_status not null default 'active',
    since timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, employee_id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    foreign key (org_id, tier_id) references app.compliance_tiers (org_id, id)
);
create index employee_tiers_tier_idx on app.employee_tiers (org_id, tier_id);

create table app.employee_tier_history (
    org_id uuid not null references app.organizations (id),
    id bigint generated always as identity,
    employee_id uuid not null,
    from_tier_id uuid,
    to_tier_id uuid not null,
    kind app.tier_change_kind not null,
    reason text,
    changed_by uuid,
    changed_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    foreign key (org_id, from_tier_id) references app.compliance_tiers (org_id, id),
    foreign key (org_id, to_tier_id) references app.compliance_tiers (org_id, id),
    constraint employee_tier_history_changes_the_tier check (from_tier_id is distinct from to_tier_id)
);
create index employee_tier_history_employee_idx on app.employee_tier_history (org_id, employee_id);

create table app.employee_compliance_stats (
    org_id uuid not null references app.organizations (id),
    employee_id uuid not null,
    total_requirements integer not null default 0,
    completed_requirements integer not null default 0,
    in_progress_requirements integer not null default 0,
    pending_requirements integer not null default 0,
    completion_pct numeric(5, 2) not null default 0,
    total_points integer not null default 0,
    earned_points integer not null default 0,
    training_assigned integer not null default 0,
    training_completed integer not null default 0,
    training_overdue integer not null default 0,
    training_exempted integer not null default 0,
    training_rate numeric(5, 2) not null default 100.00,
    updated_at timestamptz not null default now(),
    primary key (org_id, employee_id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    constraint employee_compliance_stats_counts_not_negative check (
        least(total_requirements, completed_requirements, in_progress_requirements,
              pending_requirements, total_points, earned_points, training_assigned,
              training_completed, training_overdue, training_exempted) >= 0),
    constraint employee_compliance_stats_percentages_between_0_and_100
        check (completion_pct between 0 and 100 and training_rate between 0 and 100)
);

-- Operations ----------------------------------------------------------------------------------
create table app.sync_runs (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    type app.sync_run_type not null,
    source app.sync_source not null,
    triggered_by text not null default current_user,
    request_id uuid,
    status app.sync_run_status not null default 'started',
    complete_fetch boolean not null default false,
    processed_count integer not null default 0,
    created_count integer not null default 0,
    updated_count integer not null default 0,
    failed_count integer not null default 0,
    details jsonb not null default '{}',
    errors jsonb not null default '[]',
    warnings jsonb not null default '[]',
    started_at timestamptz not null default now(),
    completed_at timestamptz,
    duration interval generated always as (completed_at - started_at) stored,
    primary key (org_id, id),
    constraint sync_runs_counts_not_negative
        check (least(processed_count, created_count, updated_count, failed_count) >= 0),
    constraint sync_runs_finished_runs_have_completed_at
        check ((status in ('started', 'in_progress')) = (completed_at is null)),
    constraint sync_runs_errors_is_a_list check (jsonb_typeof(errors) = 'array'),
    constraint sync_runs_warnings_is_a_list check (jsonb_typeof(warnings) = 'array')
);
create index sync_runs_started_idx on app.sync_runs (org_id, started_at desc);
create index sync_runs_source_idx on app.sync_runs (org_id, source, started_at desc);

create table app.sync_requests (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    type app.sync_run_type not null default 'full',
    requested_by uuid,
    status app.sync_request_status not null default 'queued',
    requested_at timestamptz not null default now(),
    picked_at timestamptz,
    finished_at timestamptz,
    run_id uuid,
    primary key (org_id, id),
    foreign key (org_id, run_id) references app.sync_runs (org_id, id),
    constraint sync_requests_picked_when_not_queued
        check ((status = 'queued') = (picked_at is null))
);
create index sync_requests_queued_idx on app.sync_requests (requested_at) where status = 'queued';

create table app.notifications (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    recipient_id uuid not null,
    type text not null,
    title text not null,
    message text not null,
    action_url text,
    priority app.notification_priority not null default 'medium',
    employee_id uuid,
    dedupe_key text,
    created_at timestamptz not null default now(),
    read_at timestamptz,
    primary key (org_id, id),
    constraint notifications_recipient_is_a_user_of_the_org
        foreign key (org_id, recipient_id) references app.app_users (org_id, id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    constraint notifications_type_is_dotted_words check (type ~ '^[a-z_]+(\.[a-z_]+)*$'),
    constraint notifications_title_is_not_blank check (btrim(title) <> ''),
    constraint notifications_read_not_before_created check (read_at is null or read_at >= created_at)
);
create index notifications_recipient_idx on app.notifications (org_id, recipient_id, created_at desc);
create unique index notifications_dedupe_key_is_unique
    on app.notifications (org_id, recipient_id, dedupe_key) where dedupe_key is not null;

-- The outbox of change events (§8). tx_id records the writing transaction so that a reader can
-- stay below the oldest running transaction's horizon.
create table app.events (
    org_id uuid not null references app.organizations (id),
    id bigint generated always as identity,
    tx_id xid8 not null default pg_current_xact_id(),
    type text not null,
    employee_id uuid,
    recipient_id uuid,
    entity text,
    entity_id text,
    payload jsonb not null default '{}',
    created_at timestamptz not null default now(),
    primary key (org_id, id),
    constraint events_type_is_dotted_words check (type ~ '^[a-z_]+(\.[a-z_]+)*$'),
    constraint events_payload_is_small check (pg_column_size(payload) <= 4000)
);
create index events_org_tx_idx on app.events (org_id, tx_id, id);

create table app.compliance_snapshots (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    snapshot_date date not null,
    department_id uuid,
    location_id uuid,
    active_employees integer not null default 0,
    required_assignments integer not null default 0,
    completed_assignments integer not null default 0,
    overdue_assignments integer not null default 0,
    exempted_assignments integer not null default 0,
    compliance_rate numeric(5, 2) not null default 100.00,
    created_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, department_id) references app.departments (org_id, id),
    foreign key (org_id, location_id) references app.locations (org_id, id),
    constraint compliance_snapshots_counts_not_negative check (
        least(active_employees, required_assignments, completed_assignments,
              overdue_assignments, exempted_assignments) >= 0),
    constraint compliance_snapshots_rate_between_0_and_100 check (compliance_rate between 0 and 100)
);
create unique index compliance_snapshots_one_per_day_and_group
    on app.compliance_snapshots (org_id, snapshot_date, department_id, location_id) nulls not distinct;

-- Audit trail (§9) ----------------------------------------------------------------------------
create table audit.log (
    org_id uuid not null,
    id bigint generated always as identity,
    occurred_at timestamptz not null default clock_timestamp(),
    tx_id xid8 not null default pg_current_xact_id(),
    actor_user_id uuid,
    actor_role text not null default current_user,
    event_type text not null,
    table_name text,
    op text,
    entity_id text,
    employee_id uuid,
    old_values jsonb,
    new_values jsonb,
    changed_fields text[],
    details jsonb,
    prev_hash bytea,
    hash bytea,
    primary key (org_id, id),
    constraint log_op_is_known check (op is null or op in ('INSERT', 'UPDATE', 'DELETE')),
    constraint log_event_type_is_snake_case check (event_type ~ '^[a-z_]+$')
);
create index log_employee_idx on audit.log (org_id, employee_id, occurred_at);
create index log_event_type_idx on audit.log (org_id, event_type, occurred_at);
create index log_occurred_idx on audit.log (org_id, occurred_at);
create index log_entity_idx on audit.log (org_id, table_name, entity_id);

-- Sync staging (§10): raw pages as the source sent them, merged by sync.apply_*().
create table sync.staged_records (
    org_id uuid not null references app.organizations (id),
    run_id uuid not null,
    kind text not null,
    page integer not null,
    item integer not null,
    payload jsonb not null,
    loaded_at timestamptz not null default now(),
    primary key (org_id, run_id, kind, page, item),
    foreign key (org_id, run_id) references app.sync_runs (org_id, id) on delete cascade,
    constraint staged_records_kind_is_known check (
        kind in ('zenefits_person', 'zenefits_department', 'zenefits_location',
                 'zenefits_employment', 'classroom_coursework', 'classroom_submission',
                 'classroom_profile'))
);

-- Row-level security everywhere, for the owner too --------------------------------------------
do $rls$
declare
    t record;
begin
    for t in
        select n.nspname, c.relname
        from pg_catalog.pg_class c
        join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p') and n.nspname in ('app', 'audit', 'sync')
    loop
        execute format('alter table %I.%I enable row level security', t.nspname, t.relname);
        execute format('alter table %I.%I force row level security', t.nspname, t.relname);
    end loop;
end
$rls$;
