-- Monthly work (DESIGN §12): audit retention and event retention, started by the worker's timer.

-- Purge an organisation's audit rows older than p_cutoff, as a prefix of its chain, and record the
-- hash at the cut as the new anchor so the rest stays verifiable. Returns the chain entries purged.
-- The anchor refuses a cutoff later than the organisation's retention allows now.
-- The cut stops at the first chain entry whose row is not older than the cutoff (or is missing),
-- so an old row chained after a newer one waits for a later run.
create or replace function audit.purge_expired(p_org_id uuid, p_cutoff timestamptz) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_from bigint;
    v_stop bigint;
    v_to bigint;
begin
    perform pg_catalog.pg_advisory_xact_lock(audit.chain_lock_key(p_org_id));
    select s.seq into v_from from audit.chain_start(p_org_id) s;
    select c.seq into v_stop
    from audit.chain c
    left join audit.log l on l.org_id = c.org_id and l.id = c.log_id
    where c.org_id = p_org_id and c.seq > v_from
      and (l.id is null or l.occurred_at >= p_cutoff)
    order by c.seq
    limit 1;
    if v_stop is null then
        select pg_catalog.max(c.seq) into v_to from audit.chain c where c.org_id = p_org_id;
    else
        v_to := v_stop - 1;
    end if;
    if v_to is null or v_to <= v_from then
        return 0;
    end if;
    -- The anchor's trigger fills in the rest from the chain (and refuses a cut inside retention).
    perform pg_catalog.set_config('audit.purging', 'on', true);
    insert into audit.chain_anchors (org_id, seq, purged_before) values (p_org_id, v_to, p_cutoff);
    delete from audit.log l
    using audit.chain c
    where c.org_id = p_org_id and c.seq > v_from and c.seq <= v_to
      and l.org_id = p_org_id and l.id = c.log_id;
    delete from audit.chain c
    where c.org_id = p_org_id and c.seq > v_from and c.seq <= v_to;
    perform pg_catalog.set_config('audit.purging', 'off', true);
    return v_to - v_from;
end
$$;
comment on function audit.purge_expired(uuid, timestamptz) is
    'Retention: removes an organisation''s sealed audit rows older than the cutoff (a chain prefix) and anchors the chain.';

-- How many days app.events are kept: setting compliance.event_retention_days (default 30).
create or replace function app.event_retention_days() returns integer
language plpgsql stable
set search_path = ''
as $$
declare
    v_setting text := nullif(pg_catalog.current_setting('compliance.event_retention_days', true), '');
begin
    if v_setting is null then
        return 30;
    end if;
    if v_setting !~ '^[0-9]{1,5}$' or v_setting::integer < 1 then
        raise exception 'compliance.event_retention_days must be a whole number of days, 1 or more'
            using errcode = '22023',
                  detail = pg_catalog.format('The setting is %s.', pg_catalog.quote_literal(v_setting)),
                  hint = 'alter database ... set compliance.event_retention_days = 30';
    end if;
    return v_setting::integer;
end
$$;
comment on function app.event_retention_days() is
    'Days the events outbox keeps an event: setting compliance.event_retention_days, default 30.';

-- The monthly job: seal the audit trail, purge audit rows past each organisation's retention
-- (audit_retention_months, counted back from `day` in the organisation's time zone, never from a
-- day after the organisation's today) and events older than compliance.event_retention_days.
-- Idempotent: a second run the same day purges nothing.
create or replace function app.run_monthly_jobs(day date default current_date) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
    v_day date := run_monthly_jobs.day;
    v_sealed bigint;
    v_org record;
    v_cutoff timestamptz;
    v_purged bigint;
    v_orgs jsonb := '[]';
    v_audit_total bigint := 0;
    v_event_days integer := app.event_retention_days();
    v_events bigint;
begin
    if v_day is null or v_day > current_date + 62 then
        raise exception 'the monthly jobs run for today or a day up to two months ahead, not %',
            coalesce(v_day::text, 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('day is %s, today is %s.', coalesce(v_day::text, 'null'), current_date),
                  hint = 'A day far ahead would purge audit rows that must be kept; pass current_date.';
    end if;

    v_sealed := audit.seal();

    for v_org in select o.id, o.slug, o.timezone, o.audit_retention_months
                 from app.organizations o order by o.id
    loop
        -- A run for a day ahead purges no more than the retention allows on the organisation's
        -- day now: audit rows age by the clock that wrote them.
        v_cutoff := audit.retention_cutoff(
            least(v_day, (pg_catalog.now() at time zone v_org.timezone)::date),
            v_org.audit_retention_months, v_org.timezone);
        v_purged := audit.purge_expired(v_org.id, v_cutoff);
        if v_purged > 0 then
            v_audit_total := v_audit_total + v_purged;
            v_orgs := v_orgs || pg_catalog.jsonb_build_object(
                'org_id', v_org.id, 'slug', v_org.slug, 'cutoff', v_cutoff, 'audit_rows_purged', v_purged);
        end if;
    end loop;

    delete from app.events e
    where e.created_at < (v_day::timestamp - pg_catalog.make_interval(days => v_event_days))
                         at time zone 'UTC';
    get diagnostics v_events = row_count;

    return pg_catalog.jsonb_build_object(
        'day', v_day,
        'audit_rows_sealed', v_sealed,
        'audit_rows_purged', v_audit_total,
        'organizations', v_orgs,
        'event_retention_days', v_event_days,
        'events_purged', v_events);
end
$$;
comment on function app.run_monthly_jobs(date) is
$$Monthly: seals the audit chain, purges audit rows past each organisation's retention and old events.

Returns {day, audit_rows_sealed, audit_rows_purged, organizations[], event_retention_days,
events_purged}. Idempotent; the worker's timer calls it (daily is fine too).$$;

grant execute on function app.run_monthly_jobs(date) to sync_worker;
