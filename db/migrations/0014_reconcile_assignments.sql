-- depends: 0009_assignment_exceptions
-- Assignments follow the organisation as it changes (reconciliation, recertification windows,
-- optional completions).
--
-- An assignment that stops being required keeps its row: is_required = false, required_until the
-- moment it stopped counting, not_required_reason why. Completed cycles stay as history.
--   department_changed    the employee moved to a department (or job) that does not require it
--   rule_ended            the department rule requiring it ended, was deleted or made optional
--   module_retired        the module was deactivated, or stopped being required of new hires
--   superseded_by_rehire  an open assignment of an earlier employment (the rehire gets new ones)
--   lapsed                a completion whose validity ran out (the next cycle counts instead)
--   renewed               a completion replaced by the next cycle's completion before it lapsed
--   optional              a result for a module nobody requires of the employee (from creation)
--   next_cycle            the next recertification cycle, created when its window opens; it
--                         starts counting when the current completion lapses or it is completed
alter table app.training_assignments
    add column required_until timestamptz,
    add column not_required_reason text,
    add constraint training_assignments_not_required_reason_is_known
        check (not_required_reason in ('department_changed', 'rule_ended', 'module_retired',
                                       'superseded_by_rehire', 'lapsed', 'renewed', 'optional',
                                       'next_cycle'));

-- Existing rows that were not required (a rule marked optional) keep their meaning.
alter table app.training_assignments disable trigger user;
update app.training_assignments set not_required_reason = 'optional' where not is_required;
alter table app.training_assignments enable trigger user;

-- The reconciliation looks assignments up by employee and module.
create index training_assignments_employee_module_idx
    on app.training_assignments (org_id, employee_id, module_id);

-- How many days before a completion lapses its recertification window opens (the next cycle is
-- assigned then, due on the expiry date).
alter table app.training_modules
    add column recertification_window_days integer not null default 30,
    add constraint training_modules_recertification_window_not_negative
        check (recertification_window_days >= 0);

-- A department rule may set its own due date for the module (else the module's applies).
alter table app.department_training_requirements
    add column due_date date;

-- A rule without an effective start takes effect on the organisation's day, not the server's: the
-- default moves to a trigger (app.department_rule_defaults) that knows the organisation.
alter table app.department_training_requirements
    alter column effective_start drop default;

-- One row of the required set (app.required_assignments): computed once per reconciliation.
create type app.required_assignment as (
    org_id uuid, employee_id uuid, module_id uuid, due_date date, grace_days integer, today date
);
