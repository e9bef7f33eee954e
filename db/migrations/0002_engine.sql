-- depends: 0001_foundation
-- The compliance engine (issue 3): indexes its rules and daily jobs read by.

-- Daily job: approved records whose validity ends (requirement expiry, expiring certifications).
create index employee_requirements_expiry_idx
    on app.employee_requirements (org_id, expires_at) where status = 'approved';

-- Notifications to reviewers: the organisation's HR admins.
create index app_users_role_idx on app.app_users (org_id, app_role) where active;

-- What an AFTER STATEMENT trigger of training_assignments hands on from its transition tables.
create type app.assignment_change as (
    org_id uuid,
    id uuid,
    employee_id uuid,
    module_id uuid,
    status app.assignment_status,
    old_status app.assignment_status,
    score numeric,
    completion_date timestamptz,
    is_late boolean,
    old_employee_id uuid,
    op text,
    is_required boolean,
    old_is_required boolean
);

-- The same for employee_requirements.
create type app.requirement_change as (
    org_id uuid,
    id uuid,
    employee_id uuid,
    requirement_id uuid,
    status app.requirement_status,
    old_status app.requirement_status,
    is_legacy boolean,
    old_employee_id uuid,
    op text
);
