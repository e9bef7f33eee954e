-- depends: 0014_reconcile_assignments
-- A rehire's new cycle may fall on the due date of an open assignment of the earlier employment
-- (terminated and rehired the same local day, or a module or rule due date still ahead): that
-- assignment is closed as superseded_by_rehire and kept as history, and the new one is created.
-- One assignment per employee, module and due date therefore holds among the rows that are not
-- superseded by a rehire.
alter table app.training_assignments
    drop constraint training_assignments_one_per_employee_module_due_date;
create unique index training_assignments_one_per_employee_module_due_date
    on app.training_assignments (org_id, employee_id, module_id, due_date)
    where not_required_reason is distinct from 'superseded_by_rehire';
