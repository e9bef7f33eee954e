-- The paper an organisation prints on (organizations.paper_size, migration 0019): 'letter' or
-- 'a4'. When an organisation is created without one, it is derived from its time zone: Letter
-- for the zones of the United States (states and Puerto Rico) and Canada, A4 (ISO 216) for every
-- other zone. Changing the time zone later keeps the paper; superadmins set it on /organizations.

create or replace function app.default_paper_size(p_timezone text) returns text
language sql immutable parallel safe
as $$
    select case
        when p_timezone like any (array['US/%', 'Canada/%', 'America/Indiana/%',
                                        'America/Kentucky/%', 'America/North_Dakota/%'])
          or p_timezone = any (array[
                 'America/New_York', 'America/Detroit', 'America/Chicago', 'America/Denver',
                 'America/Phoenix', 'America/Los_Angeles', 'America/Anchorage', 'America/Juneau',
                 'America/Sitka', 'America/Metlakatla', 'America/Yakutat', 'America/Nome',
                 'America/Adak', 'America/Boise', 'America/Menominee', 'America/Indianapolis',
                 'America/Louisville', 'America/Fort_Wayne', 'America/Knox_IN', 'America/Atka',
                 'America/Shiprock', 'Navajo', 'Pacific/Honolulu', 'Pacific/Johnston',
                 'America/Puerto_Rico', 'America/St_Johns', 'America/Halifax',
                 'America/Glace_Bay', 'America/Moncton', 'America/Goose_Bay',
                 'America/Blanc-Sablon', 'America/Toronto', 'America/Montreal',
                 'America/Nipigon', 'America/Thunder_Bay', 'America/Iqaluit',
                 'America/Pangnirtung', 'America/Atikokan', 'America/Coral_Harbour',
                 'America/Winnipeg', 'America/Rainy_River', 'America/Resolute',
                 'America/Rankin_Inlet', 'America/Regina', 'America/Swift_Current',
                 'America/Edmonton', 'America/Cambridge_Bay', 'America/Yellowknife',
                 'America/Inuvik', 'America/Creston', 'America/Dawson_Creek',
                 'America/Fort_Nelson', 'America/Whitehorse', 'America/Dawson',
                 'America/Vancouver', 'EST5EDT', 'CST6CDT', 'MST7MDT', 'PST8PDT'])
        then 'letter'
        else 'a4'
    end
$$;
comment on function app.default_paper_size(text) is
    'The paper for an organisation in this time zone: letter in the United States and Canada, a4 elsewhere.';

-- A new organisation without a paper size gets its time zone's.
create or replace function app.organizations_default_paper_size() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.paper_size is null then
        new.paper_size := app.default_paper_size(new.timezone);
    end if;
    return new;
end
$$;
comment on function app.organizations_default_paper_size() is
    'Before insert on organizations: a missing paper_size from the time zone (app.default_paper_size).';

create or replace trigger organizations_default_paper_size
    before insert on app.organizations
    for each row execute function app.organizations_default_paper_size();
