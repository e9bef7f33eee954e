-- The compliance engine, part 4b: the PostgREST functions of the requirement workflow (DESIGN §5,
-- §6). The status machine is the trigger's (130_requirement_rules.sql); these
-- check who may do what, then write.
--
--   update_requirement_status: the employee (own: every role but viewer with a linked employee
--     record), their manager, HR admins and superadmins move a record pending -> in_progress or
--     revision_required -> in_progress; HR admins and superadmins may also set inactive, or bring
--     an inactive record back to pending (on their own records only with hr_self_evidence:
--     125_assignment_api.sql, "evidence about oneself").
--   submit_requirement: your own record only (every role but viewer), with evidence (a JSON
--     object; "url" becomes evidence_url); a requirement without review_required is approved at once.
--   review_requirement: hr_admin, superadmin, or the employee's manager; never your own record.

create or replace function app.employee_requirement_json(p_row app.employee_requirements)
returns jsonb
language sql stable
set search_path = ''
as $$
    select pg_catalog.to_jsonb(p_row)
$$;

-- A record of the caller's organisation, by its own id, or (for the caller's own records) by the
-- id of the requirement. Locked; 404 when the caller may not read it.
create or replace function app.employee_requirement_for(p_id uuid) returns app.employee_requirements
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_org uuid := app.current_org_id();
    v_self uuid := app.current_employee_id();
    v_row app.employee_requirements;
begin
    select * into v_row from app.employee_requirements er
    where er.org_id = v_org and er.id = p_id
    for update;
    if v_row.id is null and v_self is not null then
        select * into v_row from app.employee_requirements er
        where er.org_id = v_org and er.employee_id = v_self and er.requirement_id = p_id
        for update;
    end if;
    if v_row.id is null
       or (app.current_role_in('employee') and not app.is_own_employee(v_row.employee_id)) then
        perform app.fail('PT404', pg_catalog.format('requirement record %s not found', p_id),
            pg_catalog.format('No requirement record (or requirement of yours) with id %s that you may read.', p_id),
            'Check the id; list records at /employee_requirements.');
    end if;
    return v_row;
end
$$;

-- The reviewers of an employee's submissions, to notify: the acting manager's login (the nearest
-- active manager up the chain, app.acting_manager_user_id) and the
-- organisation's HR admins (never the submitter).
create or replace function app.notify_reviewers(p_row app.employee_requirements, p_requirement_name text)
returns integer
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_employee app.employees;
    v_count integer;
begin
    select * into v_employee from app.employees e
    where e.org_id = p_row.org_id and e.id = p_row.employee_id;
    select pg_catalog.count(app.notify_user(p_row.org_id, u.id, 'requirement.submitted',
               pg_catalog.format('%s submitted %s', v_employee.full_name, p_requirement_name),
               pg_catalog.format('%s submitted evidence for %s; please review it.',
                                 v_employee.full_name, p_requirement_name),
               pg_catalog.format('/requirements/%s', p_row.id), 'medium', p_row.employee_id,
               pg_catalog.format('requirement.submitted:%s:%s', p_row.id,
                                 extract(epoch from p_row.submitted_at))))
    into v_count
    from (select distinct u.id
          from app.app_users u
          where u.org_id = p_row.org_id and u.active
            and (u.app_role = 'hr_admin'
                 or u.id = app.acting_manager_user_id(p_row.org_id, p_row.employee_id))
            and u.employee_id is distinct from p_row.employee_id) u;
    return v_count;
end
$$;

create or replace function api.update_requirement_status(requirement_id uuid, status app.status_name)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_text text := pg_catalog.lower(pg_catalog.btrim(update_requirement_status.status));
    v_status app.requirement_status;
    v_row app.employee_requirements;
    v_admin boolean := app.current_role_in('superadmin', 'hr_admin');
begin
    if v_text is null or v_text not in ('pending', 'in_progress', 'inactive') then
        perform app.fail('22023',
            pg_catalog.format('status %s cannot be set with update_requirement_status',
                              coalesce(pg_catalog.quote_literal(update_requirement_status.status), 'null')),
            'Accepted: in_progress; HR admins also inactive and pending (to reopen an inactive record).',
            case when v_text = 'submitted' then 'Use /rpc/submit_requirement with your evidence.'
                 when v_text in ('approved', 'revision_required', 'rejected')
                     then 'Use /rpc/review_requirement (reviewers).'
                 else 'Send one of the accepted statuses.' end);
    end if;
    v_status := v_text::app.requirement_status;
    v_row := app.employee_requirement_for(update_requirement_status.requirement_id);
    if v_status in ('inactive', 'pending') then
        if not v_admin then
            perform app.fail('42501',
                pg_catalog.format('only HR admins and superadmins may set requirement record %s %s', v_row.id, v_status),
                pg_catalog.format('Your role is %s.', coalesce(app.current_app_role()::text, 'none')),
                'Ask an HR admin.');
        end if;
        if not app.admin_may_act_on(v_row.org_id, v_row.employee_id) then
            perform app.refuse_self_evidence(
                pg_catalog.format('set your own requirement record %s %s', v_row.id, v_status));
        end if;
    elsif not (v_admin
               or app.is_direct_report(v_row.employee_id)
               or (app.is_own_employee(v_row.employee_id) and not app.current_role_in('viewer'))) then
        perform app.fail('42501',
            pg_catalog.format('you may not change requirement record %s', v_row.id),
            pg_catalog.format('Your role is %s%s; the record belongs to employee %s, who is neither you nor your direct report.',
                              coalesce(app.current_app_role()::text, 'none'),
                              case when app.current_employee_id() is null
                                   then ' with no linked employee record' else '' end,
                              v_row.employee_id),
            case when app.current_role_in('viewer') then 'Viewers only read; ask the employee''s manager or HR.'
                 else 'Employees change their own records, managers their direct reports''.' end);
    end if;
    if v_row.status = v_status then
        return app.employee_requirement_json(v_row);   -- nothing to change
    end if;
    if v_status = 'pending' and v_row.status <> 'inactive' then
        perform app.requirement_transition_refused(v_row.id, v_row.status, v_status,
            'Only an inactive record can be reopened.');
    end if;
    update app.employee_requirements er
    set status = v_status, is_legacy = case when v_status = 'pending' then false else er.is_legacy end
    where er.org_id = v_row.org_id and er.id = v_row.id
    returning * into v_row;
    return app.employee_requirement_json(v_row);
end
$$;
comment on function api.update_requirement_status(uuid, app.status_name) is
$$Moves a requirement record: in_progress (you, your manager, HR), inactive or back to pending (HR).

requirement_id is the record's id, or for your own records the requirement's id. The requirement
status machine decides: 409 for a refused transition (naming record, from and to). Submitting and
reviewing have their own functions (/rpc/submit_requirement, /rpc/review_requirement): 400 for those
statuses here. 403 without the right (viewers never; HR admins set their own records inactive or
pending only when the organisation enables hr_self_evidence), 404 for a record you cannot read.
Returns the record.$$;
grant execute on function api.update_requirement_status(uuid, app.status_name) to authenticated;

create or replace function api.submit_requirement(requirement_id uuid, evidence app.evidence) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_evidence jsonb := submit_requirement.evidence;
    v_url text;
    v_row app.employee_requirements;
    v_req app.compliance_requirements;
    v_auto boolean;
begin
    if v_evidence is null or pg_catalog.jsonb_typeof(v_evidence) <> 'object' or v_evidence = '{}'::jsonb then
        perform app.fail('22023', 'evidence must be a non-empty JSON object',
            pg_catalog.format('evidence was %s.', coalesce(v_evidence::text, 'null')),
            'Send e.g. {"url": "https://...", "note": "..."}.');
    end if;
    v_url := v_evidence ->> 'url';
    if v_url is not null and v_url !~ '^https?://' then
        perform app.fail('22023', pg_catalog.format('evidence url %s is not an http(s) address', v_url),
            'evidence.url must start with http:// or https://.', 'Send a link to the document.');
    end if;
    v_row := app.employee_requirement_for(submit_requirement.requirement_id);
    if app.current_role_in('viewer') then
        perform app.fail('42501',
            pg_catalog.format('viewers may not submit requirements (record %s)', v_row.id),
            'Your role is viewer, which only reads.', 'Ask a superadmin for a role that may submit.');
    end if;
    if not app.is_own_employee(v_row.employee_id) then
        perform app.fail('42501',
            pg_catalog.format('you may only submit your own requirements, not record %s', v_row.id),
            pg_catalog.format('Record %s belongs to employee %s; %s.', v_row.id, v_row.employee_id,
                              case when app.current_employee_id() is null
                                   then 'your login has no linked employee record'
                                   else pg_catalog.format('yours is %s', app.current_employee_id()) end),
            'The employee submits their own evidence.');
    end if;
    select * into v_req from app.compliance_requirements cr
    where cr.org_id = v_row.org_id and cr.id = v_row.requirement_id;
    if v_req.type = 'training' then
        perform app.fail('PT409',
            pg_catalog.format('requirement %s is a training: it is approved when its module is completed', v_req.name),
            pg_catalog.format('Record %s, requirement %s, module %s.', v_row.id, v_req.id, v_req.module_id),
            'Complete the training; the database approves the requirement.');
    end if;
    if v_row.status not in ('pending', 'in_progress', 'revision_required') then
        perform app.requirement_transition_refused(v_row.id, v_row.status, 'submitted',
            'Only pending, in_progress or revision_required records can be submitted.');
    end if;
    v_auto := not v_req.review_required;
    update app.employee_requirements er
    set status = case when v_auto then 'approved' else 'submitted' end::app.requirement_status,
        evidence = v_evidence,
        evidence_url = v_url,
        submitted_at = pg_catalog.now(),
        reviewed_at = case when v_auto then pg_catalog.now() end,
        reviewed_by = null,
        expires_at = case when v_auto and v_req.validity_days is not null
                          then pg_catalog.now() + pg_catalog.make_interval(days => v_req.validity_days) end
    where er.org_id = v_row.org_id and er.id = v_row.id
    returning * into v_row;
    perform audit.record_event(v_row.org_id, 'requirement_submission', v_row.employee_id,
        'employee_requirements', v_row.id::text,
        pg_catalog.jsonb_build_object('requirement_id', v_req.id, 'requirement', v_req.name,
                                      'evidence_url', v_url, 'auto_approved', v_auto));
    if not v_auto then
        perform app.notify_reviewers(v_row, v_req.name);
    end if;
    return app.employee_requirement_json(v_row);
end
$$;
comment on function api.submit_requirement(uuid, app.evidence) is
$$Submits evidence for one of your own requirement records (by record id or requirement id).

evidence is a JSON object; its "url" (http/https) is kept as evidence_url. The record must be
pending, in_progress or revision_required (409 otherwise); training requirements are approved by
the database when the module is completed (409). Requirements that need no review are approved at
once; the others notify the reviewers (your manager and the HR admins). Every role but viewer
submits for its own linked employee record; 403 for someone else's record, for viewers and for a
login without an employee record; 400 for missing or malformed evidence. Returns the record.$$;
grant execute on function api.submit_requirement(uuid, app.evidence) to authenticated;

create or replace function api.review_requirement(id uuid, decision app.review_decision, comments app.review_comments default null)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_decision text := pg_catalog.lower(pg_catalog.btrim(review_requirement.decision));
    v_comments text := nullif(pg_catalog.btrim(review_requirement.comments), '');
    v_row app.employee_requirements;
    v_req app.compliance_requirements;
    v_title text;
begin
    if v_decision is null or v_decision not in ('approved', 'revision_required', 'rejected') then
        perform app.fail('22023',
            pg_catalog.format('decision %s is not a review decision',
                              coalesce(pg_catalog.quote_literal(review_requirement.decision), 'null')),
            'Accepted: approved, revision_required, rejected.', 'Send one of the accepted decisions.');
    end if;
    if v_decision <> 'approved' and v_comments is null then
        perform app.fail('22023', pg_catalog.format('a %s decision needs comments', v_decision),
            'comments was empty.', 'Tell the employee what to change or why it is rejected.');
    end if;
    v_row := app.employee_requirement_for(review_requirement.id);
    if app.is_own_employee(v_row.employee_id) then
        perform app.fail('42501',
            pg_catalog.format('you cannot review your own submission (record %s)', v_row.id),
            'The record belongs to you.', 'Another reviewer (your manager or an HR admin) must review it.');
    end if;
    if not (app.current_role_in('superadmin', 'hr_admin') or app.is_direct_report(v_row.employee_id)) then
        perform app.fail('42501',
            pg_catalog.format('you may not review requirement record %s', v_row.id),
            pg_catalog.format('Your role is %s; reviewers are HR admins, superadmins and the employee''s manager.',
                              coalesce(app.current_app_role()::text, 'none')),
            'Ask the employee''s manager or an HR admin.');
    end if;
    if v_row.status <> 'submitted' then
        perform app.requirement_transition_refused(v_row.id, v_row.status, v_decision::app.requirement_status,
            'Only a submitted record can be reviewed.', 'Wait until the employee submits evidence.');
    end if;
    select * into v_req from app.compliance_requirements cr
    where cr.org_id = v_row.org_id and cr.id = v_row.requirement_id;
    update app.employee_requirements er
    set status = v_decision::app.requirement_status,
        reviewed_at = pg_catalog.now(),
        reviewed_by = app.current_user_id(),
        review_comments = v_comments,
        expires_at = case when v_decision = 'approved' and v_req.validity_days is not null
                          then pg_catalog.now() + pg_catalog.make_interval(days => v_req.validity_days) end
    where er.org_id = v_row.org_id and er.id = v_row.id
    returning * into v_row;
    perform audit.record_event(v_row.org_id, 'requirement_review', v_row.employee_id,
        'employee_requirements', v_row.id::text,
        pg_catalog.jsonb_build_object('requirement_id', v_req.id, 'requirement', v_req.name,
                                      'decision', v_decision, 'comments', v_comments));
    v_title := case v_decision
        when 'approved' then pg_catalog.format('%s approved', v_req.name)
        when 'revision_required' then pg_catalog.format('%s needs changes', v_req.name)
        else pg_catalog.format('%s rejected', v_req.name) end;
    perform app.notify_employee(v_row.org_id, v_row.employee_id, 'requirement.' || v_decision,
        v_title,
        coalesce(v_title || ': ' || v_comments, v_title || '.'),
        pg_catalog.format('/requirements/%s', v_row.id),
        case when v_decision = 'approved' then 'low' else 'high' end::app.notification_priority,
        pg_catalog.format('requirement.review:%s:%s', v_row.id,
                          extract(epoch from v_row.reviewed_at)));
    return app.employee_requirement_json(v_row);
end
$$;
comment on function api.review_requirement(uuid, app.review_decision, app.review_comments) is
$$Reviews a submitted requirement record: approved, revision_required or rejected (with comments).

Reviewers are HR admins, superadmins and the employee's manager (403 otherwise); nobody reviews
their own submission (403). Only a submitted record can be reviewed (409). Comments are required
unless approving (400). Approval sets expires_at from the requirement's validity_days. The employee
is notified; the audit trail records requirement_review. Returns the record.$$;
grant execute on function api.review_requirement(uuid, app.review_decision, app.review_comments) to authenticated;
