-- Audit trail, part 4: reading it (DESIGN §7 audit_history, §9). Row-level security of audit.log
-- (db/policies/40_audit.sql) decides what a caller sees; this function only filters and pages.

create type api.audit_entry as (
    org_id uuid,
    id bigint,
    occurred_at timestamptz,
    actor_user_id uuid,
    actor_role text,
    db_role text,
    event_type text,
    table_name text,
    op text,
    entity_id text,
    employee_id uuid,
    old_values jsonb,
    new_values jsonb,
    changed_fields text[],
    details jsonb,
    total_count bigint
);
comment on type api.audit_entry is 'One audit trail entry, with the number of entries matching the filters.';

create or replace function api.audit_history(
    event_types text[] default null,
    entity text default null,
    entity_id text default null,
    employee_id uuid default null,
    date_from timestamptz default null,
    date_to timestamptz default null,
    page_size integer default 50,
    page integer default 1
) returns setof api.audit_entry
language plpgsql stable security invoker
set search_path = ''
as $$
declare
    v_total bigint;
begin
    if page_size is null or page_size not between 1 and 500 then
        raise exception 'page_size must be between 1 and 500, not %', coalesce(page_size::text, 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('page_size is %s.', coalesce(page_size::text, 'null')),
                  hint = 'Ask for at most 500 entries a page and follow with page=2, 3, ...';
    end if;
    if page is null or page < 1 then
        raise exception 'page must be 1 or more, not %', coalesce(page::text, 'null')
            using errcode = '22023',
                  detail = pg_catalog.format('page is %s.', coalesce(page::text, 'null')),
                  hint = 'Pages are numbered from 1.';
    end if;
    if date_from is not null and date_to is not null and date_from > date_to then
        raise exception 'date_from % is after date_to %', date_from, date_to
            using errcode = '22023',
                  detail = pg_catalog.format('date_from is %s, date_to is %s.', date_from, date_to),
                  hint = 'date_from is inclusive, date_to exclusive; swap them.';
    end if;
    if entity_id is not null and entity is null then
        raise exception 'entity_id needs entity'
            using errcode = '22023',
                  detail = pg_catalog.format('entity_id is %s but entity is missing.', entity_id),
                  hint = 'Name the table too, e.g. entity=training_assignments.';
    end if;

    select pg_catalog.count(*) into v_total
    from audit.log l
    where (audit_history.event_types is null or l.event_type = any (audit_history.event_types))
      and (audit_history.entity is null or l.table_name = audit_history.entity)
      and (audit_history.entity_id is null or l.entity_id = audit_history.entity_id)
      and (audit_history.employee_id is null or l.employee_id = audit_history.employee_id)
      and (audit_history.date_from is null or l.occurred_at >= audit_history.date_from)
      and (audit_history.date_to is null or l.occurred_at < audit_history.date_to);

    return query
        select l.org_id, l.id, l.occurred_at, l.actor_user_id, l.actor_role, l.db_role,
               l.event_type, l.table_name, l.op, l.entity_id, l.employee_id, l.old_values,
               l.new_values, l.changed_fields, l.details, v_total
        from audit.log l
        where (audit_history.event_types is null or l.event_type = any (audit_history.event_types))
          and (audit_history.entity is null or l.table_name = audit_history.entity)
          and (audit_history.entity_id is null or l.entity_id = audit_history.entity_id)
          and (audit_history.employee_id is null or l.employee_id = audit_history.employee_id)
          and (audit_history.date_from is null or l.occurred_at >= audit_history.date_from)
          and (audit_history.date_to is null or l.occurred_at < audit_history.date_to)
        order by l.occurred_at desc, l.id desc
        limit audit_history.page_size
        offset (audit_history.page - 1)::bigint * audit_history.page_size;
end
$$;
comment on function api.audit_history(text[], text, text, uuid, timestamptz, timestamptz, integer, integer) is
$$The audit trail you may read, newest first, filtered and paged.

Filters (all optional, combined with AND): event_types (e.g. {row_update,tier_change}), entity (a
table name such as training_assignments) and entity_id, employee_id, date_from (inclusive) and
date_to (exclusive). page_size is 1 to 500 (default 50), page counts from 1. Every entry carries
total_count, the number of entries matching the filters. HR admins, superadmins and viewers read
their organisation's trail, managers their direct reports' and their own, employees their own.
Row changes have event_type row_insert, row_update or row_delete with op, old_values, new_values
and changed_fields; named events (tier_change, requirement_review, ...) carry details.$$;
grant execute on function api.audit_history(text[], text, text, uuid, timestamptz, timestamptz, integer, integer)
    to authenticated;
