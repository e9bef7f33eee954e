-- Sync merges, shared helpers: tolerant parsing of the sources' date and time strings. Every field
-- of a source is optional and may be malformed; these answer null instead of raising, so one bad
-- value never aborts a merge of thousands of records.

-- Days of a month of the Gregorian calendar (month 1-12). Plain SQL, so it is inlined where used.
create or replace function sync.days_in_month(p_year integer, p_month integer) returns integer
language sql immutable parallel safe
as $$
    select case when p_month in (4, 6, 9, 11) then 30
                when p_month <> 2 then 31
                when p_year % 4 = 0 and (p_year % 100 <> 0 or p_year % 400 = 0) then 29
                else 28 end
$$;
comment on function sync.days_in_month(integer, integer) is
    'Days of a month (1-12) of a year of the Gregorian calendar.';

-- 'YYYY-MM-DD...' -> date, or null when it is not a real calendar date.
create or replace function sync.to_date(p_text text) returns date
language plpgsql immutable parallel safe
set search_path = ''
as $$
declare
    v_year integer;
    v_month integer;
    v_day integer;
begin
    if p_text is null or p_text !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' then
        return null;
    end if;
    v_year := substr(p_text, 1, 4)::integer;
    v_month := substr(p_text, 6, 2)::integer;
    v_day := substr(p_text, 9, 2)::integer;
    if v_year < 1 or v_month not between 1 and 12 or v_day < 1
       or v_day > sync.days_in_month(v_year, v_month) then
        return null;
    end if;
    return pg_catalog.make_date(v_year, v_month, v_day);
end
$$;
comment on function sync.to_date(text) is 'A YYYY-MM-DD string as a date, or null when it is not one.';

-- An RFC 3339 timestamp ('2025-03-04T17:02:11.512Z', '...+02:00') -> timestamptz, or null.
create or replace function sync.to_timestamptz(p_text text) returns timestamptz
language plpgsql stable parallel safe
set search_path = ''
as $$
declare
    v_month integer;
    v_day integer;
    v_year integer;
begin
    -- (the calendar checked here rather than by calling sync.to_date: this runs once a
    -- submission, and a plpgsql call costs more than the check)
    if p_text is null
       or p_text !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$' then
        return null;
    end if;
    v_year := pg_catalog.substr(p_text, 1, 4)::integer;
    v_month := pg_catalog.substr(p_text, 6, 2)::integer;
    v_day := pg_catalog.substr(p_text, 9, 2)::integer;
    if v_year < 1 or v_day > sync.days_in_month(v_year, v_month) then
        return null;
    end if;
    return p_text::timestamptz;
end
$$;
comment on function sync.to_timestamptz(text) is
    'An RFC 3339 timestamp string as a timestamptz, or null when it is not one.';

-- Helpers of earlier versions, now inlined in the merges.
drop function if exists sync.to_numeric(jsonb);
drop function if exists sync.ref_id(jsonb);
