-- One PostgREST request POST /rpc/update_assignment_status, as PostgREST 12 runs it: a read-
-- committed transaction, the role and the JWT claims set locally, the pre-request hook, then the
-- RPC call built from the JSON body (json_to_record + named arguments), answered as JSON.
-- Variables (pgbench -D): rows, user_id. Assignment ids are 00000000-0000-4000-8000-<k, 12 digits>.
\set k random(1, :rows)
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', json_build_object('sub', :user_id::text, 'role', 'authenticated')::text, true), set_config('request.method', 'POST', true), set_config('request.path', '/rpc/update_assignment_status', true), set_config('request.headers', '{"content-type":"application/json"}', true), set_config('search_path', '"api", "public"', true);
SELECT app.pre_request();
WITH pgrst_source AS (SELECT pgrst_call.pgrst_scalar FROM (SELECT json_build_object('assignment_id', format('00000000-0000-4000-8000-%s', lpad(:k::text, 12, '0')), 'status', 'in_progress', 'minutes_spent', 1) AS json_data) pgrst_payload, LATERAL (SELECT "assignment_id", "status", "minutes_spent" FROM json_to_record(pgrst_payload.json_data) AS _("assignment_id" uuid, "status" app.status_name, "minutes_spent" app.minutes_spent) LIMIT 1) pgrst_body, LATERAL (SELECT "api"."update_assignment_status"("assignment_id" := pgrst_body."assignment_id", "status" := pgrst_body."status", "minutes_spent" := pgrst_body."minutes_spent") pgrst_scalar) pgrst_call) SELECT null::bigint AS total_result_set, 1 AS page_total, coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body, nullif(current_setting('response.headers', true), '') AS response_headers, nullif(current_setting('response.status', true), '') AS response_status FROM (SELECT "pgrst_scalar" FROM pgrst_source) _postgrest_t;
COMMIT;
