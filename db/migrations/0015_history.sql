-- depends: 0009_assignment_exceptions
-- Exact history (DESIGN §5 "History"; docs/analytics.md "History and point-in-time figures").
--
-- The state of every assignment and employee over time, as the database recorded it: one row per
-- version with its system-time validity range `valid` ([recorded, superseded)); the current
-- version has an open upper bound. Statement-level triggers (db/functions/252_history.sql) keep
-- them, so bulk sync writes stay set-based. Triggers rather than the `periods` extension: the
-- official postgres image of docker-compose.yml does not ship it, and the as-of rule needs its own
-- reading of a completion (by its valid time, flagged when recorded later), which the triggers
-- capture as named columns (robust to columns added to the tables).
--
-- btree_gist (contrib, in every PostgreSQL package and image) lets one GiST index answer
-- "this organisation's versions valid at instant T".
create extension if not exists btree_gist;

create table app.assignment_history (
    org_id uuid not null references app.organizations (id),
    assignment_id uuid not null,
    employee_id uuid not null,
    module_id uuid not null,
    status app.assignment_status not null,
    due_date date not null,
    grace_days integer not null,
    is_required boolean not null,
    completion_date timestamptz,
    score numeric(5, 2),
    is_late boolean not null,
    days_late integer,
    exemption_reason text,
    valid tstzrange not null,
    -- an employee's versions together: their trend, and when an assignment began
    primary key (org_id, employee_id, assignment_id, valid),
    constraint assignment_history_valid_is_not_empty check (not isempty(valid))
);
-- one current version per assignment (the trigger closes it before adding the next)
create unique index assignment_history_one_current_version
    on app.assignment_history (org_id, assignment_id) where upper_inf(valid);
create index assignment_history_valid_at on app.assignment_history using gist (org_id, valid);
comment on table app.assignment_history is
    'Every version of every training assignment with its system-time validity range (trigger-maintained; the current version has an open upper bound).';

create table app.employee_history (
    org_id uuid not null references app.organizations (id),
    id bigint generated always as identity,
    employee_id uuid not null,
    status app.employee_status not null,
    department_id uuid,
    location_id uuid,
    valid tstzrange not null,
    primary key (org_id, id),
    constraint employee_history_valid_is_not_empty check (not isempty(valid))
);
create unique index employee_history_one_current_version
    on app.employee_history (org_id, employee_id) where upper_inf(valid);
create index employee_history_valid_at on app.employee_history using gist (org_id, valid);
comment on table app.employee_history is
    'Every version of every employee''s status, department and location with its system-time validity range (trigger-maintained).';

alter table app.assignment_history enable row level security;
alter table app.assignment_history force row level security;
alter table app.employee_history enable row level security;
alter table app.employee_history force row level security;

-- What existed before the history was kept: the current state, valid since the row was created
-- (the best knowledge there is).
insert into app.assignment_history (org_id, assignment_id, employee_id, module_id, status, due_date,
                                    grace_days, is_required, completion_date, score, is_late,
                                    days_late, exemption_reason, valid)
select a.org_id, a.id, a.employee_id, a.module_id, a.status, a.due_date, a.grace_days, a.is_required,
       a.completion_date, a.score, a.is_late, a.days_late, a.exemption_reason,
       tstzrange(least(a.created_at, now()), null)
from app.training_assignments a;
insert into app.employee_history (org_id, employee_id, status, department_id, location_id, valid)
select e.org_id, e.id, e.status, e.department_id, e.location_id, tstzrange(least(e.created_at, now()), null)
from app.employees e;

-- Corrections of completions (HR's completion editor): a completion recorded with its real date,
-- or a recorded completion corrected (date, score, attended or not), always with a reason. The
-- assignment's versions keep the original; this row says who changed it, when and why.
create table app.completion_corrections (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    assignment_id uuid not null,
    employee_id uuid not null,
    kind text not null,
    previous_status app.assignment_status not null,
    previous_completion_date timestamptz,
    previous_score numeric(5, 2),
    attended boolean not null,
    completion_date timestamptz,
    score numeric(5, 2),
    reason text not null,
    corrected_by uuid,
    corrected_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, assignment_id) references app.training_assignments (org_id, id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    foreign key (org_id, corrected_by) references app.app_users (org_id, id),
    constraint completion_corrections_kind_is_recorded_or_corrected
        check (kind in ('recorded', 'corrected')),
    constraint completion_corrections_reason_is_not_blank check (btrim(reason) <> ''),
    constraint completion_corrections_reason_at_most_2000_characters check (length(reason) <= 2000),
    constraint completion_corrections_attended_has_completion_date
        check (not attended or completion_date is not null),
    constraint completion_corrections_score_between_0_and_100 check (score between 0 and 100)
);
create index completion_corrections_assignment_idx
    on app.completion_corrections (org_id, assignment_id, corrected_at);
alter table app.completion_corrections enable row level security;
alter table app.completion_corrections force row level security;

-- Snapshots become a cache of the as-of answer of an ended day (computed from the history), with
-- the completions of that day the database learnt of only after it ended.
alter table app.compliance_snapshots
    add column completed_recorded_later integer not null default 0,
    add column corrected_later integer not null default 0;
