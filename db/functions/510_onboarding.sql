-- Onboarding (DESIGN §15): an operator creates an organisation with its first superadmin, with
-- `compliance org create` or this function. The organisation gets DESIGN §4's settings (the
-- table's defaults: passing score 80.00, audit retention 12 months, escalation after 14 days,
-- reminders 7 days before). Running it again with the same values changes nothing and answers
-- the same ids (created = false); a slug taken by a different organisation, an unknown time
-- zone or a malformed slug or address is refused with what to do.

create or replace function app.create_organization(
    p_name text, p_slug text, p_timezone text, p_admin_email text, p_admin_name text default null
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_name text := nullif(pg_catalog.btrim(p_name), '');
    v_slug text := pg_catalog.btrim(p_slug);
    v_tz text := pg_catalog.btrim(p_timezone);
    v_email text := pg_catalog.lower(pg_catalog.btrim(p_admin_email));
    v_org app.organizations;
    v_admin app.app_users;
    v_created boolean := false;
begin
    if v_name is null then
        perform app.fail('22023', 'the organisation needs a name', 'The name was empty.',
            'Give the name people know it by, e.g. --name "Ann Arbor Medical".');
    end if;
    if v_slug is null or v_slug !~ '^[a-z0-9]+(-[a-z0-9]+)*$' then
        perform app.fail('22023',
            pg_catalog.format('%s is not a valid slug', coalesce(pg_catalog.quote_literal(p_slug), 'null')),
            'A slug is lower-case letters and digits in words joined by hyphens.',
            'Use e.g. --slug annarbor-medical.');
    end if;
    if v_tz is null or not exists (select from pg_catalog.pg_timezone_names z where z.name = v_tz) then
        perform app.fail('22023',
            pg_catalog.format('unknown time zone %s', coalesce(pg_catalog.quote_literal(p_timezone), 'null')),
            'The organisation''s day (due dates, overdue, reports) is reckoned in this zone; it must be an IANA name.',
            'Use e.g. --timezone America/Detroit (select name from pg_timezone_names lists them).');
    end if;
    if v_email is null or v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
        perform app.fail('22023',
            pg_catalog.format('%s is not an e-mail address', coalesce(pg_catalog.quote_literal(p_admin_email), 'null')),
            'The first superadmin signs in with this address.', 'Use e.g. --admin-email it@example.org.');
    end if;

    -- one creation of a slug at a time
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('app.create_organization:' || v_slug));
    select * into v_org from app.organizations o where o.slug = v_slug;
    if v_org.id is null then
        insert into app.organizations (name, slug, timezone)
        values (v_name, v_slug, v_tz)
        returning * into v_org;
        v_created := true;
    elsif v_org.name <> v_name or v_org.timezone <> v_tz then
        perform app.fail('23505', pg_catalog.format('the slug %s is taken', v_slug),
            pg_catalog.format('Organisation %s (%s, time zone %s) has the slug %s; you asked for %s in %s.',
                              v_org.id, v_org.name, v_org.timezone, v_slug, v_name, v_tz),
            'Choose another slug, or repeat the exact name and time zone to re-run the creation.');
    end if;

    select * into v_admin from app.app_users u
    where u.org_id = v_org.id and pg_catalog.lower(u.email) = v_email;
    if v_admin.id is null then
        if not v_created and exists (select from app.app_users u
                                     where u.org_id = v_org.id and u.app_role = 'superadmin' and u.active) then
            perform app.fail('23505',
                pg_catalog.format('organisation %s already has a superadmin', v_slug),
                pg_catalog.format('%s is not among its users; its superadmins invite further users.', v_email),
                'Ask a superadmin to invite the address (/rpc/invite_user).');
        end if;
        insert into app.app_users (org_id, email, display_name, app_role)
        values (v_org.id, v_email,
                coalesce(nullif(pg_catalog.btrim(p_admin_name), ''), pg_catalog.split_part(v_email, '@', 1)),
                'superadmin')
        returning * into v_admin;
        v_created := true;
    elsif v_admin.app_role <> 'superadmin' or not v_admin.active then
        perform app.fail('23505',
            pg_catalog.format('%s is a user of %s but not an active superadmin', v_email, v_slug),
            pg_catalog.format('User %s has the role %s and is %s.', v_admin.id, v_admin.app_role,
                              case when v_admin.active then 'active' else 'inactive' end),
            'A superadmin of the organisation changes roles (/rpc/change_user_role).');
    end if;
    if v_created then
        perform audit.record_event(v_org.id, 'organization_created', null, 'organizations', v_org.id::text,
            pg_catalog.jsonb_build_object('name', v_org.name, 'slug', v_org.slug, 'timezone', v_org.timezone,
                                          'admin_user_id', v_admin.id, 'admin_email', v_admin.email));
    end if;
    return pg_catalog.jsonb_build_object(
        'created', v_created, 'organizationId', v_org.id, 'name', v_org.name, 'slug', v_org.slug,
        'timezone', v_org.timezone, 'adminUserId', v_admin.id, 'adminEmail', v_admin.email,
        'settings', pg_catalog.jsonb_build_object(
            'defaultPassingScore', v_org.default_passing_score,
            'auditRetentionMonths', v_org.audit_retention_months,
            'escalationDays', v_org.escalation_days, 'reminderDays', v_org.reminder_days));
end
$$;
comment on function app.create_organization(text, text, text, text, text) is
    'Creates an organisation and its first superadmin (operators only; idempotent for the same values).';
revoke execute on function app.create_organization(text, text, text, text, text) from public;
