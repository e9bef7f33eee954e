-- The baseline: a plain UPDATE of the same kind of row by the table owner (no role switch, no
-- claims, no pre-request, no rights check). The table's triggers run as for every writer.
-- Variables (pgbench -D): rows, org_id. Assignment ids are 00000000-0000-4000-8000-<k, 12 digits>.
\set k random(1, :rows)
BEGIN ISOLATION LEVEL READ COMMITTED;
UPDATE app.training_assignments SET status = 'in_progress', minutes_spent = minutes_spent + 1 WHERE org_id = :org_id::uuid AND id = format('00000000-0000-4000-8000-%s', lpad(:k::text, 12, '0'))::uuid;
COMMIT;
