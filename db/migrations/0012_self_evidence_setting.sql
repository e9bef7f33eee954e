-- depends: 0008_lean_bulk_writes
-- Evidence about oneself needs another person: whether HR admins and superadmins may use their
-- powers over evidence (exempt, un-exempt, record results beyond employee self-report, set a
-- requirement record inactive or pending again, switch a tier by hand) on their OWN employee
-- record is the organisation's decision, off unless it enables it (HIPAA evidence).
alter table app.organizations
    add column hr_self_evidence boolean not null default false;
comment on column app.organizations.hr_self_evidence is
    'Whether HR admins and superadmins may exempt, record results on, inactivate or manually re-tier their own records.';
