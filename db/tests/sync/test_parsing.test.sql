-- The sources' date and time strings: a real value parses, anything else is null (never an error,
-- so one bad field never aborts a merge of thousands of records).
begin;
select plan(22);

select is(sync.to_timestamptz('2025-03-04T17:02:11.512Z'), '2025-03-04 17:02:11.512+00'::timestamptz,
          'RFC 3339 in UTC with a fraction');
select is(sync.to_timestamptz('2025-03-04T17:02:11+02:00'), '2025-03-04 15:02:11+00'::timestamptz,
          'RFC 3339 with an offset');
select is(sync.to_timestamptz('2025-03-04 17:02:11-0530'), '2025-03-04 22:32:11+00'::timestamptz,
          'a space and an offset without a colon');
select is(sync.to_timestamptz('2024-02-29T00:00:00Z'), '2024-02-29 00:00:00+00'::timestamptz,
          '29 February of a leap year');
select is(sync.to_timestamptz('2000-02-29T00:00:00Z'), '2000-02-29 00:00:00+00'::timestamptz,
          '29 February of a leap century');
select is(sync.to_timestamptz('2025-04-30T23:59:59Z'), '2025-04-30 23:59:59+00'::timestamptz,
          'the last day of April');
select is(sync.to_timestamptz('2025-02-29T00:00:00Z'), null, '29 February of a common year is null');
select is(sync.to_timestamptz('2100-02-29T00:00:00Z'), null, '29 February of a common century is null');
select is(sync.to_timestamptz('2025-04-31T00:00:00Z'), null, '31 April is null');
select is(sync.to_timestamptz('2025-13-01T00:00:00Z'), null, 'month 13 is null');
select is(sync.to_timestamptz('2025-00-10T00:00:00Z'), null, 'month 0 is null');
select is(sync.to_timestamptz('2025-01-00T00:00:00Z'), null, 'day 0 is null');
select is(sync.to_timestamptz('2025-01-01T24:00:00Z'), null, 'hour 24 is null');
select is(sync.to_timestamptz('2025-01-01T10:00:00'), null, 'no offset is null (ambiguous)');
select is(sync.to_timestamptz('0000-01-01T10:00:00Z'), null, 'year 0 is null');
select is(sync.to_timestamptz('yesterday'), null, 'words are null');
select is(sync.to_timestamptz(null), null, 'null is null');
select is(sync.to_date('2024-02-29'), '2024-02-29'::date, 'sync.to_date: a leap day');
select is(sync.to_date('2025-02-29'), null, 'sync.to_date: 29 February of a common year is null');
select is(sync.to_date('2100-02-29'), null, 'sync.to_date: 29 February of a common century is null');
select is(sync.to_date('2025-04-31'), null, 'sync.to_date: 31 April is null');
select is(sync.to_date('2025-12-31'), '2025-12-31'::date, 'sync.to_date: the last day of the year');
select * from finish();
rollback;
