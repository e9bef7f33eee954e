-- Per-employee records: assignments, requirement records, tiers, tier history and stats.
-- Superadmins, HR admins, managers and viewers read the organisation's; an employee reads only
-- their own. Nobody writes them directly: the api functions and the database's rules do.
do $personal$
declare
    t text;
begin
    foreach t in array array['training_assignments', 'employee_requirements', 'employee_tiers',
                             'employee_tier_history', 'employee_compliance_stats'] loop
        execute format('drop policy if exists "org staff and the employee read %1$s" on app.%1$I', t);
        execute format($p$create policy "org staff and the employee read %1$s"
            on app.%1$I for select to authenticated
            using (org_id = (select app.current_org_id())
                   and ((select app.current_app_role()) <> 'employee'
                        or employee_id = (select app.current_employee_id())))$p$, t);
        execute format('grant select on app.%I to authenticated', t);
    end loop;
end
$personal$;

create view api.training_assignments with (security_invoker = true) as
    select a.org_id, a.id, a.employee_id, a.module_id, a.due_date, a.status, a.completion_date,
           a.score, a.attempts, a.minutes_spent, a.is_required, a.grace_days, a.is_late,
           a.days_late, a.required_until, a.not_required_reason, a.exemption_reason,
           a.exempted_by, a.exempted_at, a.classroom_submission_id, a.classroom_grade,
           a.last_synced_at, a.sync_status, a.created_at, a.updated_at
    from app.training_assignments a;
comment on view api.training_assignments is
$$Training assignments: one employee, one module, one due date (the seed's training completions).

status is not_started, in_progress, completed, overdue or exempted. Change it with
/rpc/update_assignment_status, /rpc/record_assignment_result, /rpc/exempt_assignment and
/rpc/unexempt_assignment; the database enforces the status machine. is_required false means the
assignment does not count (rates, overdue lists, notices): not_required_reason says why
(department_changed, rule_ended, module_retired, superseded_by_rehire, lapsed, renewed, optional,
next_cycle) and required_until since when.$$;

create view api.employee_requirements with (security_invoker = true) as
    select org_id, id, employee_id, requirement_id, status, evidence, evidence_url, submitted_at,
           reviewed_at, reviewed_by, review_comments, expires_at, is_legacy, created_at, updated_at
    from app.employee_requirements;
comment on view api.employee_requirements is
$$Each employee's record of each requirement of their tier (the seed's user compliance records).

status is pending, in_progress, submitted, approved, revision_required, rejected or inactive.
Use /rpc/submit_requirement, /rpc/review_requirement and /rpc/update_requirement_status.$$;

create view api.employee_tiers with (security_invoker = true) as
    select org_id, employee_id, tier_id, status, since, updated_at from app.employee_tiers;
comment on view api.employee_tiers is
$$The current compliance tier of each employee (status inactive after deactivation).

Change it with /rpc/switch_tier; /rpc/check_tier_advancement says whether the next tier is due.$$;

create view api.employee_tier_history with (security_invoker = true) as
    select org_id, id, employee_id, from_tier_id, to_tier_id, kind, reason, changed_by, changed_at
    from app.employee_tier_history;
comment on view api.employee_tier_history is
$$Every tier change of every employee: initial, manual, advancement or role_change, with reason.$$;

create view api.employee_compliance_stats with (security_invoker = true) as
    select org_id, employee_id, total_requirements, completed_requirements,
           in_progress_requirements, pending_requirements, completion_pct, total_points,
           earned_points, training_assigned, training_completed, training_overdue,
           training_exempted, training_rate, updated_at
    from app.employee_compliance_stats;
comment on view api.employee_compliance_stats is
$$Per-employee compliance figures, kept current by the database on every change.

completion_pct and points count the tier's requirements; training_rate is completed ÷ required
non-exempted assignments × 100 (100.00 when there are none).$$;
