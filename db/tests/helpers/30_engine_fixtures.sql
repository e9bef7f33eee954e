-- pgTAP fixtures of the compliance engine (db/tests/engine). Created by the test set-up only.
--
-- tests.engine_org(slug) builds an organisation whose rules exercise the engine and stores the ids
-- in test variables (tests.var):
--   org, dept (General), dept2 (Surgery), hr, superadmin, viewer (user ids);
--   mgr / mgr_emp (manager user / employee), emp / emp_user (an employee managed by mgr),
--   other / other_user (an employee with no manager);
--   bronze (level 1, default), silver (level 2: 50 % and 10 points), gold (level 3: 100 %, 100 points);
--   m_hipaa (new-hire module: grace 7 days, passing 70, 3 attempts, valid 365 days),
--   m_osha (required by General: due in 30 days, grace 7), m_fire (in no rule; Silver's training);
--   r_hipaa (Bronze, training HIPAA, 10 points), r_attest (Bronze, attestation, 5 points, reviewed),
--   r_ack (Bronze, attestation without review, 0 points), r_cpr (Silver, certification, 20 points,
--   valid 365 days), r_fire (Silver, training Fire Safety, 10 points);
--   the job title 'Nurse' maps to Silver.
-- Returns the organisation id.
create or replace function tests.engine_org(p_slug text) returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_org uuid := tests.create_org(p_slug);
    v_mgr_emp uuid;
    v_emp uuid;
    v_other uuid;
begin
    perform tests.set_var('org', v_org::text);
    perform tests.set_var('dept', (select d.id from app.departments d where d.org_id = v_org)::text);
    insert into app.departments (org_id, name) values (v_org, 'Surgery');
    perform tests.set_var('dept2', (select d.id from app.departments d
                                    where d.org_id = v_org and d.name = 'Surgery')::text);

    insert into app.compliance_tiers (org_id, name, level, min_completion_pct, min_points, is_default)
    values (v_org, 'Bronze', 1, 0, 0, true), (v_org, 'Silver', 2, 50, 10, false),
           (v_org, 'Gold', 3, 100, 100, false);
    perform tests.set_var('bronze', (select t.id from app.compliance_tiers t where t.org_id = v_org and t.name = 'Bronze')::text);
    perform tests.set_var('silver', (select t.id from app.compliance_tiers t where t.org_id = v_org and t.name = 'Silver')::text);
    perform tests.set_var('gold', (select t.id from app.compliance_tiers t where t.org_id = v_org and t.name = 'Gold')::text);
    insert into app.role_tier_mappings (org_id, job_role, tier_id)
    values (v_org, 'Nurse', tests.var('silver')::uuid);

    insert into app.training_modules (org_id, name, month_key, due_date, required_for_new_hires,
                                      grace_period_days, passing_score, max_attempts, validity_days)
    values (v_org, 'HIPAA', '2025-01', null, true, 7, 70, 3, 365),
           (v_org, 'OSHA', '2025-02', app.today() + 30, false, 7, 80, 3, null),
           (v_org, 'Fire Safety', '2025-03', app.today() + 60, false, 7, 80, 3, null);
    perform tests.set_var('m_hipaa', (select m.id from app.training_modules m where m.org_id = v_org and m.name = 'HIPAA')::text);
    perform tests.set_var('m_osha', (select m.id from app.training_modules m where m.org_id = v_org and m.name = 'OSHA')::text);
    perform tests.set_var('m_fire', (select m.id from app.training_modules m where m.org_id = v_org and m.name = 'Fire Safety')::text);
    insert into app.department_training_requirements (org_id, department_id, module_id, grace_days,
                                                      reminder_days_before)
    values (v_org, tests.var('dept')::uuid, tests.var('m_osha')::uuid, 7, 10);

    insert into app.compliance_requirements (org_id, name, type, points, tier_id, module_id,
                                             validity_days, review_required)
    values (v_org, 'HIPAA training', 'training', 10, tests.var('bronze')::uuid, tests.var('m_hipaa')::uuid, null, true),
           (v_org, 'Policy attestation', 'attestation', 5, tests.var('bronze')::uuid, null, null, true),
           (v_org, 'Handbook acknowledgement', 'attestation', 0, tests.var('bronze')::uuid, null, null, false),
           (v_org, 'CPR certification', 'certification', 20, tests.var('silver')::uuid, null, 365, true),
           (v_org, 'Fire training', 'training', 10, tests.var('silver')::uuid, tests.var('m_fire')::uuid, null, true);
    perform tests.set_var('r_hipaa', (select r.id from app.compliance_requirements r where r.org_id = v_org and r.name = 'HIPAA training')::text);
    perform tests.set_var('r_attest', (select r.id from app.compliance_requirements r where r.org_id = v_org and r.name = 'Policy attestation')::text);
    perform tests.set_var('r_ack', (select r.id from app.compliance_requirements r where r.org_id = v_org and r.name = 'Handbook acknowledgement')::text);
    perform tests.set_var('r_cpr', (select r.id from app.compliance_requirements r where r.org_id = v_org and r.name = 'CPR certification')::text);
    perform tests.set_var('r_fire', (select r.id from app.compliance_requirements r where r.org_id = v_org and r.name = 'Fire training')::text);

    perform tests.set_var('hr', tests.create_user(v_org, 'hr_admin', 'hr@' || p_slug || '.example')::text);
    perform tests.set_var('superadmin', tests.create_user(v_org, 'superadmin', 'root@' || p_slug || '.example')::text);
    perform tests.set_var('viewer', tests.create_user(v_org, 'viewer', 'viewer@' || p_slug || '.example')::text);
    v_mgr_emp := tests.create_employee(v_org, 'boss@' || p_slug || '.example', null, 'Manager');
    perform tests.set_var('mgr_emp', v_mgr_emp::text);
    perform tests.set_var('mgr', tests.create_user(v_org, 'manager', 'boss@' || p_slug || '.example', v_mgr_emp)::text);
    v_emp := tests.create_employee(v_org, 'ann@' || p_slug || '.example', v_mgr_emp, 'Staff');
    perform tests.set_var('emp', v_emp::text);
    perform tests.set_var('emp_user', tests.create_user(v_org, 'employee', 'ann@' || p_slug || '.example', v_emp)::text);
    v_other := tests.create_employee(v_org, 'bob@' || p_slug || '.example', null, 'Staff');
    perform tests.set_var('other', v_other::text);
    perform tests.set_var('other_user', tests.create_user(v_org, 'employee', 'bob@' || p_slug || '.example', v_other)::text);
    return v_org;
end
$$;

-- The (latest) assignment of an employee for a module, readable after a role switch.
create or replace function tests.assignment_of(p_employee uuid, p_module uuid) returns uuid
language sql stable security definer
set search_path = ''
as $$
    select a.id from app.training_assignments a
    where a.employee_id = p_employee and a.module_id = p_module
    order by a.due_date desc limit 1
$$;

-- The record of an employee for a requirement.
create or replace function tests.record_of(p_employee uuid, p_requirement uuid) returns uuid
language sql stable security definer
set search_path = ''
as $$
    select er.id from app.employee_requirements er
    where er.employee_id = p_employee and er.requirement_id = p_requirement
$$;

-- A row of a table by id, as jsonb, whatever the current role may read (assertions only).
create or replace function tests.assignment(p_id uuid) returns app.training_assignments
language sql stable security definer
set search_path = ''
as $$ select a from app.training_assignments a where a.id = p_id $$;

create or replace function tests.record(p_id uuid) returns app.employee_requirements
language sql stable security definer
set search_path = ''
as $$ select er from app.employee_requirements er where er.id = p_id $$;

create or replace function tests.stats(p_employee uuid) returns app.employee_compliance_stats
language sql stable security definer
set search_path = ''
as $$ select s from app.employee_compliance_stats s where s.employee_id = p_employee $$;

-- How many notifications / events / named audit events concern an employee (any role may ask).
create or replace function tests.notification_count(p_recipient uuid, p_type text) returns integer
language sql stable security definer
set search_path = ''
as $$
    select count(*)::integer from app.notifications n
    where n.recipient_id = p_recipient and n.type = p_type
$$;

create or replace function tests.event_count(p_employee uuid, p_type text) returns integer
language sql stable security definer
set search_path = ''
as $$
    select count(*)::integer from app.events e where e.employee_id = p_employee and e.type = p_type
$$;

create or replace function tests.audit_count(p_employee uuid, p_event_type text) returns integer
language sql stable security definer
set search_path = ''
as $$
    select count(*)::integer from audit.log l
    where l.employee_id = p_employee and l.event_type = p_event_type
$$;

create or replace function tests.verify_stats_count() returns integer
language sql stable security definer
set search_path = ''
as $$ select count(*)::integer from app.verify_stats() $$;

grant execute on all functions in schema tests to public;

-- The error a statement raises, as {code, message, detail, hint} (null when it raises none).
create or replace function tests.error_of(p_sql text) returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_code text; v_message text; v_detail text; v_hint text;
begin
    execute p_sql;
    return null;
exception when others then
    get stacked diagnostics v_code = returned_sqlstate, v_message = message_text,
                            v_detail = pg_exception_detail, v_hint = pg_exception_hint;
    return jsonb_build_object('code', v_code, 'message', v_message, 'detail', v_detail, 'hint', v_hint);
end
$$;
grant execute on function tests.error_of(text) to public;
