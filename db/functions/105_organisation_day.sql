-- The organisation's day (DESIGN §5, CONVENTIONS "Time"): every date the rules, jobs, figures,
-- notifications and exports use is the organisation's local date (organizations.timezone), never
-- the server's. These are the one place that turns an instant into an organisation's day.
--
-- The engine's pinned day: a transaction may set the `app.today` setting (the daily job for the
-- day it runs for; tests, to run "tomorrow"); app.org_today answers it when set.

-- The organisation's time zone (an IANA name such as America/Detroit).
create or replace function app.org_timezone(p_org_id uuid) returns text
language sql stable security definer parallel safe
set search_path = ''
as $$
    select o.timezone from app.organizations o where o.id = p_org_id
$$;
comment on function app.org_timezone(uuid) is
    'The IANA time zone of an organisation (organizations.timezone).';

-- Today in a time zone: the pinned day of the transaction, else the local date now there. No SET
-- clause (every name is qualified), so views that join organizations inline it per row:
-- app.today_in(o.timezone).
create or replace function app.today_in(p_timezone text) returns date
language sql stable parallel safe
as $$
    select coalesce(
        nullif(pg_catalog.current_setting('app.today', true), '')::date,
        pg_catalog.timezone(p_timezone, pg_catalog.now())::date)
$$;
comment on function app.today_in(text) is
    'Today in a time zone (an organisation''s: app.today_in(o.timezone)), or the day pinned by the transaction''s app.today setting.';

-- Today for an organisation: the pinned day of the transaction, else its local date now.
create or replace function app.org_today(p_org_id uuid) returns date
language sql stable parallel safe
set search_path = ''
as $$
    select app.today_in(app.org_timezone(p_org_id))
$$;
comment on function app.org_today(uuid) is
    'Today in the organisation''s time zone, or the day pinned by the transaction''s app.today setting (daily jobs, tests).';

-- The organisation's local calendar day of an instant (a completion time, an event).
create or replace function app.local_date(p_org_id uuid, p_at timestamptz) returns date
language sql stable parallel safe
set search_path = ''
as $$
    select pg_catalog.timezone(app.org_timezone(p_org_id), p_at)::date
$$;
comment on function app.local_date(uuid, timestamptz) is
    'The organisation''s local date of an instant.';

-- Days overdue, THE definition: whole local days from the due date to the given day, never
-- negative. Grace decides WHETHER an assignment is overdue; the count starts at the due date.
create or replace function app.days_overdue(p_due_date date, p_on date) returns integer
language sql immutable parallel safe
as $$
    select greatest(p_on operator(pg_catalog.-) p_due_date, 0)
$$;
comment on function app.days_overdue(date, date) is
    'Days overdue: local days from the due date to the given day (0 before it). One definition for grids, exports, reports and notifications.';

grant execute on function app.org_timezone(uuid), app.today_in(text), app.org_today(uuid),
    app.local_date(uuid, timestamptz), app.days_overdue(date, date)
    to authenticated, sync_worker, web_app, analyst;

-- Dates a writer leaves out default to the organisation's today: an employee's start date, a
-- department rule's effective start (BEFORE INSERT, only rows that leave them null).
create or replace function app.fill_local_dates() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_table_name = 'employees' then
        new.start_date := app.org_today(new.org_id);
    else
        new.effective_start := app.org_today(new.org_id);
    end if;
    return new;
end
$$;
comment on function app.fill_local_dates() is
    'BEFORE INSERT trigger: a start date (employees) or effective start (department rules) left out is the organisation''s today.';

create or replace trigger employees_start_date_is_local_today
    before insert on app.employees
    for each row when (new.start_date is null) execute function app.fill_local_dates();
create or replace trigger department_rules_effective_start_is_local_today
    before insert on app.department_training_requirements
    for each row when (new.effective_start is null) execute function app.fill_local_dates();
