-- The compliance engine, part 1: shared helpers of the rules.
--
-- The engine's functions are SECURITY DEFINER where they write tables the caller may not write
-- (the api functions check the caller's right themselves, triggers run for every writer: a
-- PostgREST request, the sync worker, a job). They always scope by org_id explicitly.

-- "Today" is always an organisation's (db/functions/105_organisation_day.sql: app.org_today,
-- app.today_in). The server-date app.today() is gone; views that used it are re-created by their
-- files after this one.
drop function if exists app.today() cascade;

-- The compliance rate, THE definition (docs/analytics.md; 250_figures_counters.sql says which
-- assignments count): completed ÷ (counted - exempted) × 100, 2 decimals; 100.00 when that is 0.
-- Inlined like app.counts_toward_compliance (no SET clause; operators written as OPERATOR(pg_catalog.x), so
-- nothing depends on the caller's search_path): the dashboard computes hundreds of these.
create or replace function app.compliance_rate_of(p_completed bigint, p_counted bigint, p_exempted bigint)
returns numeric
language sql immutable parallel safe
as $$
    select case
        when (coalesce(p_counted, 0) operator(pg_catalog.-) coalesce(p_exempted, 0)) operator(pg_catalog.>) 0
        then pg_catalog.round(
                 (100.0 operator(pg_catalog.*) coalesce(p_completed, 0))
                 operator(pg_catalog./)
                 (coalesce(p_counted, 0) operator(pg_catalog.-) coalesce(p_exempted, 0)), 2)
        else 100.00
    end
$$;
comment on function app.compliance_rate_of(bigint, bigint, bigint) is
    'The compliance rate: completed ÷ (counted - exempted) × 100, rounded to 2 decimals; 100.00 when nothing is left to complete.';
grant execute on function app.compliance_rate_of(bigint, bigint, bigint)
    to authenticated, analyst, sync_worker, web_app;

-- Raise an error in one line: code, message, detail, hint (DESIGN §11).
create or replace function app.fail(p_code text, p_message text, p_detail text default null,
                                    p_hint text default null) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
    raise exception using errcode = p_code, message = p_message,
                          detail = coalesce(p_detail, ''), hint = coalesce(p_hint, '');
end
$$;
comment on function app.fail(text, text, text, text) is
    'Raises an error with the given SQLSTATE, message, detail and hint.';

-- Whether the statement-level stats refresh is deferred: the engine's multi-statement operations
-- (employee initialisation, tier switch, deactivation) set app.defer_stats for their duration and
-- refresh once at the end, so that nobody sees (or is notified about) a half-done state.
create or replace function app.stats_deferred() returns boolean
language sql stable
set search_path = ''
as $$
    select coalesce(pg_catalog.current_setting('app.defer_stats', true), '') = 'on'
$$;

-- Defer the stats refresh; returns the previous setting, to hand back to app.undefer_stats.
create or replace function app.defer_stats() returns text
language plpgsql volatile
set search_path = ''
as $$
declare
    v_previous text := coalesce(pg_catalog.current_setting('app.defer_stats', true), '');
begin
    perform pg_catalog.set_config('app.defer_stats', 'on', true);
    return v_previous;
end
$$;

create or replace function app.undefer_stats(p_previous text) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
    perform pg_catalog.set_config('app.defer_stats', coalesce(p_previous, ''), true);
end
$$;

-- Whether the acting party may exempt or un-exempt assignments: an hr_admin or superadmin
-- signed in, or an operator session without a token (a migration, a maintenance script). The
-- service logins never exempt: not the sync worker, not PostgREST's authenticator without a
-- token, not the web app.
create or replace function app.may_exempt() returns boolean
language sql stable
set search_path = ''
as $$
    select case
        when app.current_user_id() is not null then app.current_role_in('superadmin', 'hr_admin')
        else session_user::text not in ('sync_worker', 'authenticator', 'web_app', 'anon',
                                        'authenticated', 'analyst')
    end
$$;

-- The login (app_users id) of an employee, if they have an active one.
create or replace function app.employee_user_id(p_org_id uuid, p_employee_id uuid) returns uuid
language sql stable security definer
set search_path = ''
as $$
    select u.id from app.app_users u
    where u.org_id = p_org_id and u.employee_id = p_employee_id and u.active
$$;

drop function if exists app.manager_user_id(uuid, uuid);  -- unused (the daily job joins managers itself)

-- Notify an employee through their login (no login: nobody to notify, returns null).
create or replace function app.notify_employee(
    p_org_id uuid, p_employee_id uuid, p_type text, p_title text, p_message text,
    p_action_url text default null, p_priority app.notification_priority default 'medium',
    p_dedupe_key text default null
) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_user uuid := app.employee_user_id(p_org_id, p_employee_id);
begin
    if v_user is null then
        return null;
    end if;
    return app.notify_user(p_org_id, v_user, p_type, p_title, p_message, p_action_url,
                           p_priority, p_employee_id, p_dedupe_key);
end
$$;
comment on function app.notify_employee(uuid, uuid, text, text, text, text, app.notification_priority, text) is
    'Notifies the employee''s own login, if any (deduplicated by key like app.notify_user).';

