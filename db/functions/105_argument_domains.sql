-- The ranges of the api functions' arguments, as domains (DESIGN §11): a value the database
-- could store but not live with (a completion in 44 BC, two billion minutes in one call, a
-- megabyte of reason) is refused where it enters, before any row is read or written.
--
-- Each domain's CHECK calls one checking function (run as the caller: it raises by itself) that raises 22023 with a message naming the
-- argument and the value (a bare domain violation would only name the domain). The api schema is
-- dropped and rebuilt on every migrate, so nothing uses these domains when this file runs: they
-- are dropped and created again, and always say what the file says.
--
--   app.minutes_spent      integer, 0 to 1,440 (one day) per call; the stored total has its own
--                          limit (training_assignments_minutes_spent_at_most_1000000)
--   app.completion_time    timestamptz, finite, in 1900 or later (the future and times before
--                          the assignment existed are refused by the function, which knows both)
--   app.reason             text, at most 2,000 characters, no control characters but tab and
--                          line breaks (exempt, un-exempt, deactivate, switch tier)
--   app.review_comments    the same for a review's comments
--   app.status_name        text, at most 100 characters on one line: a status to set
--   app.review_decision    the same for a review's decision
--   app.sync_type_name     the same for the type of a requested sync
--   app.evidence           jsonb, at most 65,536 characters as JSON text

-- A count as people write it: 1,048,576.
create or replace function app.thousands(p_value bigint) returns text
language sql immutable parallel safe
set search_path = ''
as $$
    select pg_catalog.to_char(p_value, 'FM999,999,999,999,999,990')
$$;
revoke execute on function app.thousands(bigint) from public;
grant execute on function app.thousands(bigint) to authenticated, web_app, sync_worker;

-- Text of an argument: at most p_max characters, and no control character (tab, line feed and
-- carriage return are allowed where p_lines). Raises 22023 naming the argument; true otherwise.
create or replace function app.text_argument_ok(p_argument text, p_value text, p_max integer,
                                                p_lines boolean)
returns boolean
language plpgsql immutable parallel safe
set search_path = ''
as $$
declare
    v_length integer := pg_catalog.length(p_value);
    v_at integer;
begin
    if p_value is null then
        return true;
    end if;
    if v_length > p_max then
        raise exception using errcode = '22023',
            message = pg_catalog.format('%s is %s characters; at most %s', p_argument,
                                        app.thousands(v_length), app.thousands(p_max)),
            detail = pg_catalog.format('%s begins %s.', p_argument,
                                       pg_catalog.quote_literal(pg_catalog.left(p_value, 40) || '...')),
            hint = pg_catalog.format('Shorten %s to %s characters or fewer.', p_argument,
                                     app.thousands(p_max));
    end if;
    v_at := pg_catalog.regexp_instr(p_value,
        case when p_lines then E'[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]' else E'[\\x01-\\x1f\\x7f]' end);
    if v_at > 0 then
        raise exception using errcode = '22023',
            message = pg_catalog.format('%s contains a control character (U+%s) at position %s',
                                        p_argument,
                                        pg_catalog.upper(pg_catalog.lpad(pg_catalog.to_hex(
                                            pg_catalog.ascii(pg_catalog.substr(p_value, v_at, 1))),
                                            4, '0')),
                                        v_at),
            detail = pg_catalog.format('%s begins %s.', p_argument,
                                       pg_catalog.quote_literal(pg_catalog.left(p_value, 40))),
            hint = case when p_lines
                        then pg_catalog.format('Send %s as plain text (tabs and line breaks are fine).', p_argument)
                        else pg_catalog.format('Send %s as one line of plain text.', p_argument) end;
    end if;
    return true;
end
$$;
revoke execute on function app.text_argument_ok(text, text, integer, boolean) from public;
grant execute on function app.text_argument_ok(text, text, integer, boolean) to authenticated;

-- Minutes of one call: 0 to 1,440.
create or replace function app.minutes_spent_ok(p_value integer) returns boolean
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
    if p_value is not null and p_value not between 0 and 1440 then
        raise exception using errcode = '22023',
            message = pg_catalog.format('minutes_spent must be between 0 and 1,440 per call, not %s',
                                        app.thousands(p_value)),
            detail = pg_catalog.format('minutes_spent is %s.', p_value),
            hint = 'Send the minutes spent in this session or attempt (at most one day, 1,440).';
    end if;
    return true;
end
$$;
revoke execute on function app.minutes_spent_ok(integer) from public;
grant execute on function app.minutes_spent_ok(integer) to authenticated;

-- A completion time: finite, in 1900 or later.
create or replace function app.completion_time_ok(p_value timestamptz) returns boolean
language plpgsql stable parallel safe
set search_path = ''
as $$
begin
    if p_value is not null
       and (not pg_catalog.isfinite(p_value) or p_value < '1900-01-01 00:00:00+00'::timestamptz) then
        raise exception using errcode = '22023',
            message = pg_catalog.format('completed_at %s is not a possible completion time', p_value),
            detail = 'completed_at must be a real time in 1900 or later, not in the future, and not before the assignment was created.',
            hint = 'Send the time the attempt was finished, e.g. 2026-03-02T10:00:00Z.';
    end if;
    return true;
end
$$;
revoke execute on function app.completion_time_ok(timestamptz) from public;
grant execute on function app.completion_time_ok(timestamptz) to authenticated;

-- Evidence: at most 65,536 characters as JSON text.
create or replace function app.evidence_ok(p_value jsonb) returns boolean
language plpgsql immutable parallel safe
set search_path = ''
as $$
declare
    v_length integer := pg_catalog.length(p_value::text);
begin
    if v_length > 65536 then
        raise exception using errcode = '22023',
            message = pg_catalog.format('evidence is %s characters of JSON; at most 65,536',
                                        app.thousands(v_length)),
            detail = pg_catalog.format('evidence is a JSON %s of %s characters.',
                                       pg_catalog.jsonb_typeof(p_value), app.thousands(v_length)),
            hint = 'Send a link to the document (evidence.url) and a short note, not the document itself.';
    end if;
    return true;
end
$$;
revoke execute on function app.evidence_ok(jsonb) from public;
grant execute on function app.evidence_ok(jsonb) to authenticated;

drop domain if exists app.minutes_spent;
create domain app.minutes_spent as integer
    constraint minutes_spent_between_0_and_1440 check (app.minutes_spent_ok(value));
comment on domain app.minutes_spent is 'Minutes spent in one call: 0 to 1,440.';

drop domain if exists app.completion_time;
create domain app.completion_time as timestamptz
    constraint completion_time_is_finite_from_1900 check (app.completion_time_ok(value));
comment on domain app.completion_time is 'When an attempt was finished: a finite time in 1900 or later.';

drop domain if exists app.reason;
create domain app.reason as text
    constraint reason_is_plain_text_of_at_most_2000_characters
    check (app.text_argument_ok('reason', value, 2000, true));
comment on domain app.reason is 'Why: plain text, at most 2,000 characters.';

drop domain if exists app.review_comments;
create domain app.review_comments as text
    constraint review_comments_are_plain_text_of_at_most_2000_characters
    check (app.text_argument_ok('comments', value, 2000, true));
comment on domain app.review_comments is 'A reviewer''s comments: plain text, at most 2,000 characters.';

drop domain if exists app.status_name;
create domain app.status_name as text
    constraint status_name_is_one_line_of_at_most_100_characters
    check (app.text_argument_ok('status', value, 100, false));
comment on domain app.status_name is 'A status to set: one line, at most 100 characters.';

drop domain if exists app.review_decision;
create domain app.review_decision as text
    constraint review_decision_is_one_line_of_at_most_100_characters
    check (app.text_argument_ok('decision', value, 100, false));
comment on domain app.review_decision is 'A review decision: one line, at most 100 characters.';

drop domain if exists app.sync_type_name;
create domain app.sync_type_name as text
    constraint sync_type_name_is_one_line_of_at_most_100_characters
    check (app.text_argument_ok('type', value, 100, false));
comment on domain app.sync_type_name is 'The type of a requested sync: one line, at most 100 characters.';

drop domain if exists app.evidence;
create domain app.evidence as jsonb
    constraint evidence_at_most_65536_characters check (app.evidence_ok(value));
comment on domain app.evidence is 'Evidence of a requirement: JSON of at most 65,536 characters.';
