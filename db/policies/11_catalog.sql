-- The catalog: departments, locations, modules, department rules, tiers, role mappings and
-- requirement definitions. Every member of the organisation reads it (an employee needs to know
-- what a module or tier is); HR admins and superadmins create, edit and delete it (DESIGN §6).
do $catalog$
declare
    t text;
begin
    foreach t in array array['departments', 'locations', 'training_modules',
                             'department_training_requirements', 'compliance_tiers',
                             'role_tier_mappings', 'compliance_requirements'] loop
        execute format('drop policy if exists "members read %1$s of their org" on app.%1$I', t);
        execute format($p$create policy "members read %1$s of their org" on app.%1$I
            for select to authenticated
            using (org_id = (select app.current_org_id()))$p$, t);
        execute format('drop policy if exists "hr admins insert %1$s in their org" on app.%1$I', t);
        execute format($p$create policy "hr admins insert %1$s in their org" on app.%1$I
            for insert to authenticated
            with check (org_id = (select app.current_org_id())
                        and (select app.current_role_in('superadmin', 'hr_admin')))$p$, t);
        execute format('drop policy if exists "hr admins update %1$s in their org" on app.%1$I', t);
        execute format($p$create policy "hr admins update %1$s in their org" on app.%1$I
            for update to authenticated
            using (org_id = (select app.current_org_id())
                   and (select app.current_role_in('superadmin', 'hr_admin')))
            with check (org_id = (select app.current_org_id()))$p$, t);
        execute format('drop policy if exists "hr admins delete %1$s in their org" on app.%1$I', t);
        execute format($p$create policy "hr admins delete %1$s in their org" on app.%1$I
            for delete to authenticated
            using (org_id = (select app.current_org_id())
                   and (select app.current_role_in('superadmin', 'hr_admin')))$p$, t);
        execute format('grant select, delete on app.%1$I to authenticated', t);
    end loop;
end
$catalog$;

-- Departments -----------------------------------------------------------------------------------
grant insert (org_id, id, name, code), update (name, code) on app.departments to authenticated;
create view api.departments with (security_invoker = true) as
    select org_id, id, name, code, zenefits_id, created_at, updated_at from app.departments;
alter view api.departments alter column org_id set default app.current_org_id();
comment on view api.departments is
$$Departments of your organisation.

Every member reads them; HR admins and superadmins create, rename and delete them (one still used
by employees or rules cannot be deleted: 409).$$;

-- Locations -------------------------------------------------------------------------------------
grant insert (org_id, id, name, address), update (name, address) on app.locations to authenticated;
create view api.locations with (security_invoker = true) as
    select org_id, id, name, address, zenefits_id, created_at, updated_at from app.locations;
alter view api.locations alter column org_id set default app.current_org_id();
comment on view api.locations is
$$Locations (sites) of your organisation.

Every member reads them; HR admins and superadmins create, edit and delete them.$$;

-- Training modules ------------------------------------------------------------------------------
grant insert (org_id, id, month_key, name, due_date, classroom_course_id, classroom_coursework_id,
              classroom_url, description, estimated_minutes, passing_score, max_attempts,
              required_for_new_hires, grace_period_days, validity_days, recertification_window_days,
              active, content_summary, trainer, trainer_qualifications),
      update (month_key, name, due_date, classroom_course_id, classroom_coursework_id,
              classroom_url, description, estimated_minutes, passing_score, max_attempts,
              required_for_new_hires, grace_period_days, validity_days, recertification_window_days,
              active, content_summary, trainer, trainer_qualifications)
    on app.training_modules to authenticated;
create view api.training_modules with (security_invoker = true) as
    select org_id, id, month_key, name, due_date, classroom_course_id, classroom_coursework_id,
           classroom_url, description, estimated_minutes, passing_score, max_attempts,
           required_for_new_hires, grace_period_days, validity_days, recertification_window_days,
           active, last_synced_at, created_at, updated_at, content_summary, trainer,
           trainer_qualifications
    from app.training_modules;
alter view api.training_modules alter column org_id set default app.current_org_id();
comment on view api.training_modules is
$$Training modules (the monthly trainings), usually loaded from Google Classroom.

passing_score (default 80.00) decides completion; max_attempts caps failed attempts;
grace_period_days is added to due dates before an assignment is overdue; validity_days (null =
never expires) makes a completed module due again: the next cycle is assigned
recertification_window_days (default 30) before the completion expires, due on the expiry date.
A module required_for_new_hires is required of every active employee. Changing due_date moves the
open assignments that carry the old date. HR admins and superadmins edit them.

content_summary (at most 4,000 characters), trainer (the person conducting the training, one
line of at most 200 characters; a Classroom sync fills it from the course's teacher when it is
empty) and trainer_qualifications (at most 2,000 characters) are what a course roster
(/export/roster/{module}) shows beside its attendees.$$;

-- Department training rules ---------------------------------------------------------------------
grant insert (org_id, id, department_id, module_id, required, priority, grace_days,
              reminder_days_before, completion_target, effective_start, effective_end, due_date),
      update (required, priority, grace_days, reminder_days_before, completion_target,
              effective_start, effective_end, due_date)
    on app.department_training_requirements to authenticated;
create view api.department_training_requirements with (security_invoker = true) as
    select org_id, id, department_id, module_id, required, priority, grace_days,
           reminder_days_before, completion_target, effective_start, effective_end, due_date,
           created_at, updated_at
    from app.department_training_requirements;
alter view api.department_training_requirements alter column org_id set default app.current_org_id();
comment on view api.department_training_requirements is
$$Which modules each department must complete, with priority, reminders and a completion target.

completion_target (default 95.00 %) is what department_compliance compares against. A rule
reaches the department's active employees while effective (effective_start..effective_end, the
organisation's day) and required: due on its due_date (else the module's) when still ahead, else
grace_days after the day they became subject; grace_days governs their overdue date. Ending,
deleting or un-requiring a rule releases the open assignments it made (not required, reason
rule_ended); changing due_date or grace_days moves the open ones.$$;

-- Compliance tiers --------------------------------------------------------------------------------
grant insert (org_id, id, name, level, description, min_completion_pct, min_points, is_default),
      update (name, level, description, min_completion_pct, min_points, is_default)
    on app.compliance_tiers to authenticated;
create view api.compliance_tiers with (security_invoker = true) as
    select org_id, id, name, level, description, min_completion_pct, min_points, is_default,
           created_at, updated_at
    from app.compliance_tiers;
alter view api.compliance_tiers alter column org_id set default app.current_org_id();
comment on view api.compliance_tiers is
$$Compliance tiers, ordered by level.

An employee is eligible for the next tier when their completion % and earned points reach its
minimums; exactly one tier per organisation is the default for new employees.$$;

-- Role → tier mappings ----------------------------------------------------------------------------
grant insert (org_id, id, job_role, tier_id), update (job_role, tier_id)
    on app.role_tier_mappings to authenticated;
create view api.role_tier_mappings with (security_invoker = true) as
    select org_id, id, job_role, tier_id, created_at, updated_at from app.role_tier_mappings;
alter view api.role_tier_mappings alter column org_id set default app.current_org_id();
comment on view api.role_tier_mappings is
$$The initial tier of each job role (job title, matched case-insensitively).

Employees whose job title has no mapping start in the default tier.$$;

-- Compliance requirements -------------------------------------------------------------------------
grant insert (org_id, id, name, description, type, category, difficulty, points, tier_id,
              module_id, validity_days, review_required, active),
      update (name, description, type, category, difficulty, points, tier_id, module_id,
              validity_days, review_required, active)
    on app.compliance_requirements to authenticated;
create view api.compliance_requirements with (security_invoker = true) as
    select org_id, id, name, description, type, category, difficulty, points, tier_id,
           module_id, validity_days, review_required, active, created_at, updated_at
    from app.compliance_requirements;
alter view api.compliance_requirements alter column org_id set default app.current_org_id();
comment on view api.compliance_requirements is
$$Requirements of each tier: trainings, documents, certifications and attestations.

A training requirement names its module and is approved by the database when that module's
assignment completes; validity_days makes an approval expire.$$;
