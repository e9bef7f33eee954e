-- depends: 0008_lean_bulk_writes
-- The assignment exception report: what the assignment rules could not honour, or what a person
-- must decide (an import that would have been overdue on arrival, duplicate people, results for
-- unknown modules or unmatched students, a regrade that would undo a completion, a removed grade).
-- Each case names the rule that raised it and how to resolve it; it stays open until a person
-- resolves it (with a note) or the rule itself sees the cause gone.

create type app.exception_kind as enum (
    'overdue_on_arrival', 'duplicate_person', 'unknown_module_result', 'unmatched_student',
    'regrade_below_passing', 'grade_removed'
);

create table app.assignment_exceptions (
    org_id uuid not null references app.organizations (id),
    id uuid not null default gen_random_uuid(),
    kind app.exception_kind not null,
    -- what the case is about, unique among the organisation's open cases of its kind
    subject_key text not null,
    rule text not null,
    message text not null,
    resolution_hint text not null,
    employee_id uuid,
    module_id uuid,
    assignment_id uuid,
    details jsonb not null default '{}',
    raised_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    resolved_at timestamptz,
    resolved_by uuid,
    resolution text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, id),
    foreign key (org_id, employee_id) references app.employees (org_id, id),
    foreign key (org_id, module_id) references app.training_modules (org_id, id),
    foreign key (org_id, assignment_id) references app.training_assignments (org_id, id),
    foreign key (org_id, resolved_by) references app.app_users (org_id, id),
    constraint assignment_exceptions_subject_key_is_not_blank check (btrim(subject_key) <> ''),
    constraint assignment_exceptions_resolved_has_resolution
        check ((resolved_at is null) = (resolution is null)),
    constraint assignment_exceptions_resolution_at_most_2000_characters
        check (resolution is null or length(resolution) <= 2000)
);
-- one open case per subject and kind; resolved ones stay as history
create unique index assignment_exceptions_one_open_per_subject
    on app.assignment_exceptions (org_id, kind, subject_key) where resolved_at is null;
create index assignment_exceptions_employee_idx
    on app.assignment_exceptions (org_id, employee_id) where employee_id is not null;

alter table app.assignment_exceptions enable row level security;
alter table app.assignment_exceptions force row level security;

-- Each assignment carries the grace days that govern it: the department rule's for the
-- employee's department where one requires the module, else the module's. Overdue marking and
-- lateness read it from the row, so a rule's grace is honoured and history keeps what applied.
-- days_late: local days between due date + grace and the completion's local date (completed late
-- only; null otherwise).
alter table app.training_assignments
    add column grace_days integer,
    add column days_late integer,
    add constraint training_assignments_grace_days_not_negative check (grace_days >= 0),
    add constraint training_assignments_days_late_positive check (days_late is null or days_late > 0);

alter table app.training_assignments disable trigger user;
update app.training_assignments a
set grace_days = coalesce(
        (select r.grace_days
         from app.employees e
         join app.department_training_requirements r
           on r.org_id = e.org_id and r.department_id = e.department_id and r.module_id = a.module_id
         where e.org_id = a.org_id and e.id = a.employee_id),
        (select m.grace_period_days from app.training_modules m
         where m.org_id = a.org_id and m.id = a.module_id));
alter table app.training_assignments enable trigger user;
alter table app.training_assignments alter column grace_days set not null;
