-- depends: 0004_sync
-- Bulk writes of the sync (issue 4 figures): checks that cost a round through the executor for
-- every row, and prove nothing that is not proved already, go.
--
-- Staged records: each page's INSERT ran two foreign-key checks per record. The one on the
-- organisation proved again what the one on the run proves ((org_id, run_id) references
-- app.sync_runs (org_id, id), whose org_id references app.organizations): it goes; the run's
-- stays (and takes a run's records along when the run is deleted).
alter table sync.staged_records drop constraint staged_records_org_id_fkey;

-- An assignment's organisation is its employee's: (org_id, employee_id) references
-- app.employees (org_id, id), whose org_id references app.organizations. The direct key was a
-- second check of the same fact on every inserted assignment.
alter table app.training_assignments drop constraint training_assignments_org_id_fkey;

-- (org_id, employee_id) is the leading part of the unique key (org_id, employee_id, module_id,
-- due_date), which serves every look-up by employee; the second index only cost its upkeep.
drop index app.training_assignments_employee_idx;
