-- depends: 0008_lean_bulk_writes
-- Minutes spent on an assignment add up call after call; a total that reached the top of integer
-- made every later call on that assignment fail with an overflow. The total now has a ceiling far
-- above any real training (1,000,000 minutes, about 694 days) and far below the overflow, so
-- adding one call's minutes (at most 1,440, app.minutes_spent) can never overflow; the api
-- functions refuse a call that would pass it, with a message (app.minutes_after).
--
-- A total already above the ceiling can only come from such an attack: it is lowered to the
-- ceiling (the audit trail keeps the old value), so the constraint holds for every row.
update app.training_assignments
set minutes_spent = 1000000
where minutes_spent > 1000000;

alter table app.training_assignments
    add constraint training_assignments_minutes_spent_at_most_1000000
    check (minutes_spent <= 1000000);
