-- The organisation's day: local dates in the organisation's zone, the pinned day, days overdue.
begin;
select plan(9);

do $$ begin perform tests.set_var('kiri', tests.create_org('day-kiritimati')::text);
            perform tests.set_var('baker', tests.create_org('day-baker')::text); end $$;
update app.organizations set timezone = 'Pacific/Kiritimati' where id = tests.var('kiri')::uuid;  -- UTC+14
update app.organizations set timezone = 'Etc/GMT+12' where id = tests.var('baker')::uuid;         -- UTC-12
set local timezone = 'UTC';

select is(app.local_date(tests.var('kiri')::uuid, '2026-03-08 10:30:00+00'), '2026-03-09'::date,
          'UTC+14: 10:30 UTC is already the next local day');
select is(app.local_date(tests.var('baker')::uuid, '2026-03-08 10:30:00+00'), '2026-03-07'::date,
          'UTC-12: 10:30 UTC is still the previous local day');
select is(app.local_date(tests.var('kiri')::uuid, '2026-03-08 09:59:59+00'), '2026-03-08'::date,
          'UTC+14: local midnight is 10:00 UTC');
select is(app.org_today(tests.var('baker')::uuid), (now() at time zone 'Etc/GMT+12')::date,
          'each organisation has its own today (UTC-12)');
select is(app.org_today(tests.var('kiri')::uuid), (now() at time zone 'Pacific/Kiritimati')::date,
          'without a pinned day, today is the local date now');
set local timezone = 'Pacific/Kiritimati';
select is(app.local_date(tests.var('baker')::uuid, '2026-03-08 10:30:00+00'), '2026-03-07'::date,
          'the session''s time zone changes nothing');

select set_config('app.today', '2026-03-08', true);
select is(app.org_today(tests.var('kiri')::uuid), '2026-03-08'::date, 'a pinned day wins for every organisation');
select is(app.days_overdue('2026-03-01', '2026-03-08'), 7, 'days overdue count from the due date');
select is(app.days_overdue('2026-03-10', '2026-03-08'), 0, 'never negative before the due date');

select * from finish();
rollback;
