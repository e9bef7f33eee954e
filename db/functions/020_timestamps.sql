-- updated_at is kept by the database, never by a caller.
create or replace function app.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := pg_catalog.now();
    return new;
end
$$;

do $touch$
declare
    t record;
begin
    for t in
        select c.table_schema, c.table_name
        from information_schema.columns c
        join information_schema.tables tb using (table_schema, table_name)
        where c.column_name = 'updated_at' and c.table_schema = 'app' and tb.table_type = 'BASE TABLE'
    loop
        execute pg_catalog.format(
            'create or replace trigger touch_updated_at before update on %I.%I
             for each row execute function app.touch_updated_at()', t.table_schema, t.table_name);
    end loop;
end
$touch$;
