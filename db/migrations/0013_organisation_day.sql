-- depends: 0009_assignment_exceptions
-- The organisation's day (issue 14 items 1-2).
--
-- Lateness is a fact about the completion: late = the completion time's LOCAL date (in the
-- organisation's zone) after due date + grace days; days_late = the local days past it. Rows
-- written before were judged by the session's date and flagged late whenever they had been
-- overdue in between; they are judged again here, once, by the same definition the rules use
-- (db/functions/120_assignment_rules.sql).
alter table app.training_assignments disable trigger user;
update app.training_assignments a
set days_late = x.days_late, is_late = x.days_late is not null
from (
    select a2.org_id, a2.id,
           nullif(greatest((a2.completion_date at time zone o.timezone)::date
                           - (a2.due_date + a2.grace_days), 0), 0) as days_late
    from app.training_assignments a2
    join app.organizations o on o.id = a2.org_id
    where a2.status = 'completed'
) x
where a.org_id = x.org_id and a.id = x.id
  and (a.is_late, a.days_late) is distinct from (x.days_late is not null, x.days_late);
update app.training_assignments a
set is_late = false, days_late = null
where a.status <> 'completed' and (a.is_late or a.days_late is not null);
alter table app.training_assignments enable trigger user;
alter table app.training_assignments
    add constraint training_assignments_late_has_days_late
        check (is_late = (days_late is not null));

-- The daily jobs run per organisation, for the organisation's local day, once: this ledger says
-- which local day of which organisation ran (the worker catches up the missed days after the
-- last one, in order). Written only by sync.run_daily_jobs_due (SECURITY DEFINER).
create table sync.daily_job_runs (
    org_id uuid not null references app.organizations (id),
    day date not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    attempts integer not null default 1,
    ok boolean,
    result jsonb,
    error text,
    primary key (org_id, day),
    constraint daily_job_runs_attempts_positive check (attempts >= 1)
);
comment on table sync.daily_job_runs is
    'Which local day of which organisation the daily jobs ran for, when, and how it ended (sync.run_daily_jobs_due).';
alter table sync.daily_job_runs enable row level security;
alter table sync.daily_job_runs force row level security;

-- A new employee's start date and a new department rule's effective start default to the
-- organisation's today (filled by a BEFORE INSERT trigger, db/functions/105_organisation_day.sql),
-- no longer to the server's current_date.
alter table app.employees alter column start_date drop default;
alter table app.department_training_requirements alter column effective_start drop default;

-- Classroom's due instant of a module's course work (dueDate + dueTime, UTC), kept as Classroom
-- gave it; the module's due_date is its local date in the organisation's zone.
alter table app.training_modules add column classroom_due_at timestamptz;
