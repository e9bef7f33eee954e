-- Tiers: advancement check, switch (HR), self-advance when eligible, history, legacy records.
begin;
select plan(26);

do $$ begin perform tests.engine_org('tiers'); end $$;

-- The check, as Ann (Bronze: 3 requirements, 15 points; Silver needs 50 % and 10 points).
select tests.authenticate_as(tests.var('emp_user')::uuid);
do $$ begin perform tests.set_var('check', api.check_tier_advancement(tests.var('emp')::uuid)::text); end $$;
select is((tests.var('check')::jsonb ->> 'eligible')::boolean, false, 'not eligible at 0 %');
select is(tests.var('check')::jsonb -> 'currentTier' ->> 'name', 'Bronze', 'currentTier named');
select is(tests.var('check')::jsonb -> 'nextTier' ->> 'name', 'Silver', 'nextTier named');
select is(tests.var('check')::jsonb -> 'requirements' -> 'required',
          '{"points": 10, "completionPct": 50.00}'::jsonb, 'required figures are the next tier''s minimums');
select is(tests.var('check')::jsonb -> 'requirements' -> 'current' ->> 'completionPct', '0.00', 'current figures');
select matches(tests.var('check')::jsonb ->> 'message', 'needs 50.00% completion and 10 points for Silver',
               'a sentence says what is missing');
select throws_ok($$select api.check_tier_advancement(tests.var('other')::uuid)$$, 'PT404', null,
                 'an employee checks only themselves');
select throws_ok($$select api.switch_tier(tests.var('emp')::uuid, tests.var('silver')::uuid, 'please')$$, 'PT409', null,
                 'self-advance is refused while not eligible');

-- Ann completes HIPAA (10 points) and the acknowledgement: 2 of 3 = 66.67 %, 10 points: eligible.
do $$ begin perform api.update_requirement_status(tests.var('r_ack')::uuid, 'in_progress'); end $$;
do $$ begin perform api.submit_requirement(tests.var('r_ack')::uuid, '{"signed": true}'); end $$;
select tests.authenticate_as(tests.var('mgr')::uuid);
do $$ begin perform api.record_assignment_result(tests.assignment_of(tests.var('emp')::uuid, tests.var('m_hipaa')::uuid), 90, now(), 10); end $$;
select is((api.check_tier_advancement(tests.var('emp')::uuid) ->> 'eligible')::boolean, true,
          'eligible once the figures reach Silver''s minimums');
select is(tests.notification_count(tests.var('emp_user')::uuid, 'tier.eligible'), 1,
          'the employee is told once that they may advance');
select throws_ok($$select api.switch_tier(tests.var('emp')::uuid, tests.var('silver')::uuid, 'go')$$, '42501', null,
                 'a manager may not switch tiers');

select tests.authenticate_as(tests.var('emp_user')::uuid);
select throws_ok($$select api.switch_tier(tests.var('emp')::uuid, tests.var('gold')::uuid, 'skip')$$, '42501', null,
                 'self-advance only to the next tier');
select is(api.switch_tier(tests.var('emp')::uuid, tests.var('silver')::uuid, 'ready') ->> 'kind', 'advancement',
          'an eligible employee advances themselves');
select tests.clear_authentication();
select is((select tier_id from app.employee_tiers where employee_id = tests.var('emp')::uuid),
          tests.var('silver')::uuid, 'the tier record is Silver');
select is((select (from_tier_id, to_tier_id, kind)::text from app.employee_tier_history
           where employee_id = tests.var('emp')::uuid order by id desc limit 1),
          format('(%s,%s,advancement)', tests.var('bronze'), tests.var('silver')), 'history records the change');
select is((select count(*)::int from app.employee_requirements
           where employee_id = tests.var('emp')::uuid and (is_legacy or status = 'inactive')), 0,
          'moving up keeps Bronze''s records as they were (tiers are cumulative): none legacy or inactive');
select is((select array_agg(status::text order by status::text) from app.employee_requirements er
           join app.compliance_requirements cr on cr.id = er.requirement_id
           where er.employee_id = tests.var('emp')::uuid and cr.tier_id = tests.var('silver')::uuid),
          array['pending', 'pending'], 'Silver''s requirements are pending');
select is(((tests.stats(tests.var('emp')::uuid)).total_requirements, (tests.stats(tests.var('emp')::uuid)).total_points,
           (tests.stats(tests.var('emp')::uuid)).completion_pct)::text,
          '(5,45,40.00)', 'stats count the new tier''s requirements and the lower tier''s (2 of 5 approved)');
select is(tests.notification_count(tests.var('emp_user')::uuid, 'tier.changed'), 1, 'the employee is notified');
select is(tests.audit_count(tests.var('emp')::uuid, 'tier_change'), 1, 'audit tier_change');
select is(tests.event_count(tests.var('emp')::uuid, 'tier.changed'), 1, 'event tier.changed');

-- HR switches Bob to Gold and back to Bronze: records of Bronze come back.
select tests.authenticate_as(tests.var('hr')::uuid);
select throws_ok($$select api.switch_tier(tests.var('other')::uuid, tests.var('bronze')::uuid, 'same')$$, 'PT409', null,
                 'switching to the current tier is a conflict');
select lives_ok($$select api.switch_tier(tests.var('other')::uuid, tests.var('gold')::uuid, 'promotion'),
                         api.switch_tier(tests.var('other')::uuid, tests.var('bronze')::uuid, 'mistake')$$,
                'HR switches to any tier and back');
select tests.clear_authentication();
select is((select count(*)::int from app.employee_requirements
           where employee_id = tests.var('other')::uuid and status = 'pending' and not is_legacy), 3,
          'back in Bronze: its records are pending again, not duplicated');
select is((select count(*)::int from app.employee_requirements er
           join app.compliance_requirements cr on cr.id = er.requirement_id
           where er.employee_id = tests.var('other')::uuid and cr.tier_id = tests.var('silver')::uuid
             and er.is_legacy and er.status = 'inactive'), 2,
          'moving down: only the records of tiers above the new one become legacy');
select is(tests.verify_stats_count(), 0, 'verify_stats finds nothing to fix');
select * from finish();
rollback;
