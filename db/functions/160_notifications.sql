-- The compliance engine, part 7: notifications the user acts on (DESIGN §8). The engine's
-- notifications are written by app.notify_user / app.notify_employee with dedupe keys (so a job
-- run twice notifies once); types:
--   requirement.submitted (to the manager and HR admins), requirement.approved,
--   requirement.revision_required, requirement.rejected, tier.eligible, tier.changed (to the
--   employee), assignment.due_soon, assignment.overdue (to the employee), assignment.escalated (to
--   the manager), certification.expiring (to the employee).

create or replace function api.mark_notifications_read(ids uuid[] default null) returns integer
language sql volatile
set search_path = ''
as $$
    with marked as (
        update app.notifications n
        set read_at = pg_catalog.now()
        where n.org_id = (select app.current_org_id())
          and n.recipient_id = (select app.current_user_id())
          and n.read_at is null
          and (ids is null or n.id = any (ids))
        returning 1
    )
    select pg_catalog.count(*)::integer from marked
$$;
comment on function api.mark_notifications_read(uuid[]) is
$$Marks your notifications read: those listed in ids, or all of them when ids is null.

Only your own unread notifications change; others' ids are ignored. Returns how many were marked.$$;
grant execute on function api.mark_notifications_read(uuid[]) to authenticated;
