// The public schema of a database as SQL-like text, read from the catalogue: what
// test/migrations.test.ts compares with the committed test/schema.sql. Read through SQL rather
// than pg_dump so that no client tools are needed and the text does not change with pg_dump's
// version; objects that belong to an extension (pg_trgm's functions) are left out, the extension
// is named instead.
import type pg from 'pg'

export const SCHEMA_SNAPSHOT_HEADER = [
  "-- Herald's schema after every migration, read from the catalogue (test/helpers/schema.ts).",
  '-- test/migrations.test.ts fails when migrations produce anything else. After changing a migration',
  '-- on purpose, update it with `npm run schema:snapshot` and commit it with the migration.',
  ''
].join('\n')

// objects created by an extension (deptype 'e'), which the extension's own name stands for
const NOT_EXTENSION = (oid: string, catalog: string): string => `not exists (select 1 from pg_depend d
  where d.classid = '${catalog}'::regclass and d.objid = ${oid} and d.deptype = 'e')`

export async function schemaText (pool: pg.Pool): Promise<string> {
  const rows = async <T extends pg.QueryResultRow>(sql: string): Promise<T[]> => (await pool.query<T>(sql)).rows
  const out: string[] = [SCHEMA_SNAPSHOT_HEADER]

  // versions differ between Postgres releases, and the schema does not depend on them
  for (const { extname } of await rows<{ extname: string }>(
    "select extname from pg_extension where extname <> 'plpgsql' order by 1")) {
    out.push(`create extension ${extname};`)
  }

  for (const { typname, labels } of await rows<{ typname: string, labels: string[] }>(`
    select t.typname, array_agg(e.enumlabel::text order by e.enumsortorder) as labels
    from pg_type t join pg_enum e on e.enumtypid = t.oid
    where t.typnamespace = 'public'::regnamespace and ${NOT_EXTENSION('t.oid', 'pg_type')}
    group by t.typname order by 1`)) {
    out.push(`create type ${typname} as enum (${labels.map(l => `'${l}'`).join(', ')});`)
  }

  interface Column {
    relname: string
    attname: string
    type: string
    notnull: boolean
    def: string | null
    identity: string
    generated: string
  }
  const columns = await rows<Column>(`
    select c.relname, a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as notnull,
      pg_get_expr(ad.adbin, ad.adrelid) as def, a.attidentity as identity, a.attgenerated as generated
    from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    left join pg_attrdef ad on ad.adrelid = c.oid and ad.adnum = a.attnum
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and ${NOT_EXTENSION('c.oid', 'pg_class')}
    order by c.relname, a.attnum`)
  const tables = new Map<string, string[]>()
  for (const col of columns) {
    const parts = [col.attname, col.type]
    if (col.identity) parts.push(`generated ${col.identity === 'a' ? 'always' : 'by default'} as identity`)
    else if (col.generated === 's') parts.push(`generated always as (${col.def}) stored`)
    else if (col.def !== null) parts.push(`default ${col.def}`)
    if (col.notnull) parts.push('not null')
    tables.set(col.relname, [...tables.get(col.relname) ?? [], parts.join(' ')])
  }
  for (const [table, cols] of tables) out.push(`create table ${table} (\n  ${cols.join(',\n  ')}\n);`)

  // contype 'n' (not-null constraints, catalogued from Postgres 18) is the column's "not null" above
  for (const { rel, conname, def } of await rows<{ rel: string, conname: string, def: string }>(`
    select conrelid::regclass::text as rel, conname, pg_get_constraintdef(oid) as def from pg_constraint
    where connamespace = 'public'::regnamespace and conrelid <> 0 and contype <> 'n' order by 1, 2`)) {
    out.push(`alter table ${rel} add constraint ${conname} ${def};`)
  }

  // indexes a primary key, unique or exclusion constraint made are that constraint, above
  for (const { def } of await rows<{ def: string }>(`
    select pg_get_indexdef(i.indexrelid) as def from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relnamespace = 'public'::regnamespace
      and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid
                      and k.contype in ('p', 'u', 'x'))
    order by c.relname`)) {
    out.push(`${def};`)
  }

  // sequences an identity column owns are that column's "generated … as identity", above
  for (const { relname } of await rows<{ relname: string }>(`
    select c.relname from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind = 'S' and ${NOT_EXTENSION('c.oid', 'pg_class')}
      and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
                      and d.deptype = 'i')
    order by 1`)) {
    out.push(`create sequence ${relname};`)
  }

  for (const { relname, kind, def } of await rows<{ relname: string, kind: string, def: string }>(`
    select c.relname, c.relkind::text as kind, pg_get_viewdef(c.oid) as def from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm') and ${NOT_EXTENSION('c.oid', 'pg_class')}
    order by 1`)) {
    out.push(`create ${kind === 'm' ? 'materialized view' : 'view'} ${relname} as\n${def.trimEnd()}`)
  }

  for (const { def } of await rows<{ def: string }>(`
    select pg_get_functiondef(p.oid) as def from pg_proc p
    where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p') and ${NOT_EXTENSION('p.oid', 'pg_proc')}
    order by p.proname, pg_get_function_identity_arguments(p.oid)`)) {
    out.push(`${def.trimEnd()};`)
  }

  for (const { def } of await rows<{ def: string }>(`
    select pg_get_triggerdef(t.oid) as def from pg_trigger t join pg_class c on c.oid = t.tgrelid
    where c.relnamespace = 'public'::regnamespace and not t.tgisinternal order by c.relname, t.tgname`)) {
    out.push(`${def};`)
  }

  return out.join('\n') + '\n'
}
