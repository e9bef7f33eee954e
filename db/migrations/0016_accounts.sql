-- depends: 0012_self_evidence_setting
-- Sign-in through the organisation's identity provider (DESIGN §15): a token's (issuer, subject)
-- is linked to one app_users row; the organisation names the issuer whose tokens may link its
-- invited users by verified e-mail on their first sign-in.
alter table app.organizations add column identity_issuer text;
comment on column app.organizations.identity_issuer is
    'The iss of the identity provider whose tokens sign the organisation''s people in (null: development tokens only).';
create index organizations_identity_issuer_idx on app.organizations (identity_issuer)
    where identity_issuer is not null;

create table app.identity_links (
    org_id uuid not null references app.organizations (id),
    issuer text not null,
    subject text not null,
    user_id uuid not null,
    linked_at timestamptz not null default now(),
    primary key (org_id, issuer, subject),
    foreign key (org_id, user_id) references app.app_users (org_id, id),
    constraint identity_links_issuer_is_not_blank check (btrim(issuer) <> ''),
    constraint identity_links_subject_is_not_blank check (btrim(subject) <> '')
);
comment on table app.identity_links is
    'Which login a token''s (issuer, subject) signs in as; written by app.pre_request() on the first sign-in.';
-- The pre-request look-up goes by (issuer, subject) alone: one indexed read.
create unique index identity_links_subject_is_unique on app.identity_links (issuer, subject);
create unique index identity_links_one_per_user_and_issuer on app.identity_links (org_id, user_id, issuer);
alter table app.identity_links enable row level security;
alter table app.identity_links force row level security;
