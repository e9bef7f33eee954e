-- The requirement workflow: submit own, review (no self-review), training approval, expiry.
begin;
select plan(33);

do $$ begin perform tests.engine_org('reqs'); end $$;
do $$ begin perform tests.set_var('att', tests.record_of(tests.var('emp')::uuid, tests.var('r_attest')::uuid)::text); end $$;
do $$ begin perform tests.set_var('ack', tests.record_of(tests.var('emp')::uuid, tests.var('r_ack')::uuid)::text); end $$;
do $$ begin perform tests.set_var('hip', tests.record_of(tests.var('emp')::uuid, tests.var('r_hipaa')::uuid)::text); end $$;
do $$ begin perform tests.set_var('mgr_att', tests.record_of(tests.var('mgr_emp')::uuid, tests.var('r_attest')::uuid)::text); end $$;

-- update_requirement_status.
select tests.authenticate_as(tests.var('emp_user')::uuid);
select is(api.update_requirement_status(tests.var('r_attest')::uuid, 'in_progress') ->> 'status', 'in_progress',
          'an employee starts their own requirement (by requirement id)');
select throws_ok($$select api.update_requirement_status(tests.var('att')::uuid, 'approved')$$, '22023', null,
                 'approving is a review, not a status update');
select throws_ok($$select api.update_requirement_status(tests.var('att')::uuid, 'inactive')$$, '42501', null,
                 'only HR sets a record inactive');
select throws_ok($$select api.update_requirement_status(tests.var('mgr_att')::uuid, 'in_progress')$$, 'PT404', null,
                 'an employee cannot reach another employee''s record');

-- Submissions.
select throws_ok($$select api.submit_requirement(tests.var('att')::uuid, '"just text"')$$, '22023', null,
                 'evidence must be a JSON object');
select throws_ok($$select api.submit_requirement(tests.var('att')::uuid, '{"url": "ftp://x"}')$$, '22023', null,
                 'an evidence url must be http(s)');
select throws_ok($$select api.submit_requirement(tests.var('hip')::uuid, '{"note": "done"}')$$, 'PT409', null,
                 'training requirements are approved by completing the module');
select is(api.submit_requirement(tests.var('att')::uuid, '{"url": "https://docs.example/signed.pdf"}') ->> 'status',
          'submitted', 'the employee submits evidence');
select is((tests.record(tests.var('att')::uuid)).evidence_url, 'https://docs.example/signed.pdf', 'evidence_url kept');
select is(tests.notification_count(tests.var('mgr')::uuid, 'requirement.submitted'), 1, 'the manager is notified');
select is(tests.notification_count(tests.var('hr')::uuid, 'requirement.submitted'), 1, 'HR admins are notified');
select is(tests.audit_count(tests.var('emp')::uuid, 'requirement_submission'), 1, 'audit requirement_submission');
select throws_ok($$select api.review_requirement(tests.var('att')::uuid, 'approved', null)$$, '42501', null,
                 'an employee cannot review (their own) submission');
select is(api.submit_requirement(tests.var('ack')::uuid, '{"signed": true}') ->> 'status', 'approved',
          'a requirement without review is approved on submission');

-- Someone else's record: submit only own.
select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok($$select api.submit_requirement(tests.var('att')::uuid, '{"note": "x"}')$$, '42501', null,
                 'nobody submits for someone else');
select throws_ok($$select api.review_requirement(tests.var('att')::uuid, 'maybe', null)$$, '22023', null,
                 'an unknown decision is refused');
select throws_ok($$select api.review_requirement(tests.var('att')::uuid, 'revision_required', null)$$, '22023', null,
                 'asking for a revision needs comments');
select is(api.review_requirement(tests.var('att')::uuid, 'revision_required', 'Please sign page 2') ->> 'status',
          'revision_required', 'the manager asks for a revision');
select is(tests.notification_count(tests.var('emp_user')::uuid, 'requirement.revision_required'), 1,
          'the employee is notified');
select throws_ok($$select api.review_requirement(tests.var('att')::uuid, 'approved', null)$$, 'PT409', null,
                 'only a submitted record can be reviewed');

-- Resubmission and approval by HR.
select tests.authenticate_as(tests.var('emp_user')::uuid);
select lives_ok($$select api.submit_requirement(tests.var('att')::uuid, '{"url": "https://docs.example/v2.pdf"}')$$,
                'revision_required -> submitted');
select tests.authenticate_as(tests.var('other_user')::uuid);
select throws_ok($$select api.review_requirement(tests.var('att')::uuid, 'approved', null)$$, 'PT404', null,
                 'another employee cannot even see the record');
select tests.authenticate_as(tests.var('hr')::uuid);
select is(api.review_requirement(tests.var('att')::uuid, 'approved', null) ->> 'status', 'approved',
          'HR admin approves');
select is(tests.audit_count(tests.var('emp')::uuid, 'requirement_review'), 2, 'audit requirement_review per review');
select is(tests.audit_count(tests.var('emp')::uuid, 'requirement_status_change'), 6,
          'audit requirement_status_change for each of the six status changes');

-- Bob (no manager) submits: Ann's manager and a viewer may not review it.
select tests.authenticate_as(tests.var('other_user')::uuid);
select lives_ok(format($$select api.submit_requirement(%L, '{"note": "signed"}')$$, tests.var('r_attest')),
                'Bob submits his attestation');
select tests.authenticate_as(tests.var('mgr')::uuid);
select throws_ok(format($$select api.review_requirement(%L, 'approved', null)$$,
                        tests.record_of(tests.var('other')::uuid, tests.var('r_attest')::uuid)),
                 '42501', null, 'a manager reviews only their direct reports');
select tests.authenticate_as(tests.var('viewer')::uuid);
select throws_ok(format($$select api.review_requirement(%L, 'approved', null)$$,
                        tests.record_of(tests.var('other')::uuid, tests.var('r_attest')::uuid)),
                 '42501', null, 'a viewer does not review');
select tests.authenticate_as(tests.var('hr')::uuid);

-- Training requirement approved when the module's assignment completes.
select lives_ok(format($$select api.record_assignment_result(%L, 88, now(), 20)$$,
                       tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid)),
                'HIPAA passed');
select tests.clear_authentication();
select is((tests.record(tests.var('hip')::uuid)).status::text, 'approved', 'the training requirement is approved');
select is(((tests.stats(tests.var('emp')::uuid)).completed_requirements, (tests.stats(tests.var('emp')::uuid)).earned_points,
           (tests.stats(tests.var('emp')::uuid)).completion_pct)::text,
          '(3,15,100.00)', 'stats: 3 of 3 approved, 15 points');

-- Expiry: an approved record whose validity ends goes back to pending (daily job).
update app.employee_requirements set expires_at = now() + interval '3 days' where id = tests.var('att')::uuid;
do $$ begin perform app.run_daily_jobs(app.today() + 5); end $$;
select is((tests.record(tests.var('att')::uuid)).status::text, 'pending', 'approved -> pending on expiry');
select is(tests.verify_stats_count(), 0, 'verify_stats finds nothing to fix');
select * from finish();
rollback;
