-- depends: 0001_foundation
-- The sync workers (issue 4, DESIGN §10): look-up indexes, more kinds of staged records, the
-- Classroom grading scale on modules, and the ledger of the scheduled SQL jobs the worker runs.

-- Runs are looked up by id by the merge functions (the worker knows the run id, not its org).
create unique index sync_runs_id_is_unique on app.sync_runs (id);
-- Open runs of an organisation: the ones a new run abandons when their worker has gone away.
create index sync_runs_open_idx on app.sync_runs (org_id) where status in ('started', 'in_progress');
-- A request's runs.
create index sync_runs_request_idx on app.sync_runs (org_id, request_id) where request_id is not null;
-- Queued and running requests of an organisation (claimed oldest first).
create index sync_requests_org_open_idx on app.sync_requests (org_id, requested_at)
    where status in ('queued', 'running');

-- Kinds of raw records the worker stages: Classroom courses and course rosters too.
alter table sync.staged_records drop constraint staged_records_kind_is_known;
alter table sync.staged_records add constraint staged_records_kind_is_known check (
    kind in ('zenefits_person', 'zenefits_department', 'zenefits_location', 'zenefits_employment',
             'classroom_course', 'classroom_coursework', 'classroom_student',
             'classroom_submission', 'classroom_profile'));

-- Classroom grades are points out of the course work's maxPoints; the score (0-100) is
-- assignedGrade / maxPoints * 100. Kept on the module so a result can be scored on its own.
alter table app.training_modules add column classroom_max_points numeric(9, 2);
alter table app.training_modules add constraint training_modules_classroom_max_points_positive
    check (classroom_max_points is null or classroom_max_points > 0);

-- The scheduled SQL jobs (app.run_daily_jobs, app.run_monthly_jobs) the workers start: one row per
-- job and day, so that of several workers exactly one runs each job once a day.
create table sync.job_runs (
    job text not null,
    day date not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    attempts integer not null default 1,
    ok boolean,
    result jsonb,
    error text,
    primary key (job, day),
    constraint job_runs_job_is_known check (job in ('daily', 'monthly')),
    constraint job_runs_attempts_positive check (attempts >= 1)
);
comment on table sync.job_runs is
    'Which scheduled SQL job ran for which day, when, and how it ended (written by sync.run_scheduled_jobs).';
alter table sync.job_runs enable row level security;
alter table sync.job_runs force row level security;

-- How many times a request was picked: a request left running by a worker that died goes back to
-- the queue, at most three times (a request that kills its worker must not kill them all).
alter table app.sync_requests add column attempts integer not null default 0;
alter table app.sync_requests add constraint sync_requests_attempts_not_negative check (attempts >= 0);

-- Staged pages live for one run: after a crash the next run fetches them again, so they need no
-- WAL (and no standby copy). Unlogged staging writes about half as much per page.
alter table sync.staged_records set unlogged;
