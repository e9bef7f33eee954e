-- depends: 0017_billing
-- The paper the organisation prints on: its PDFs (compliance report, training records, rosters)
-- are laid out for it. Letter for organisations in the United States or Canada, A4 elsewhere
-- (ISO 216): the default is derived from the time zone when the organisation is created
-- (app.default_paper_size, db/functions/107_paper_size.sql); superadmins change it on
-- /organizations. Existing organisations get the same default here, once, by the same rule.
alter table app.organizations add column paper_size text;
alter table app.organizations disable trigger user;
update app.organizations
set paper_size = case
        when timezone like any (array['US/%', 'Canada/%', 'America/Indiana/%',
                                      'America/Kentucky/%', 'America/North_Dakota/%'])
          or timezone = any (array[
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
        then 'letter' else 'a4' end;
alter table app.organizations enable trigger user;
alter table app.organizations
    alter column paper_size set not null,
    add constraint organizations_paper_size_is_letter_or_a4 check (paper_size in ('letter', 'a4'));
comment on column app.organizations.paper_size is
    'The paper its PDFs are laid out for: letter or a4 (default at creation: letter for a United States or Canadian time zone, else a4).';
