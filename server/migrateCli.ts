import { ConfigError, parseConfig } from './config.js'
import { createPool } from './db/pool.js'
import { migrate } from './db/migrate.js'
import { startEmbeddedPostgres } from './db/embedded.js'

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded Postgres) and exits. */
let config
try {
  config = parseConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  // like the server: the problems with their variable names, no stack trace, exit code 2
  process.stderr.write(`herald migrate: ${err.message}\nSee .env.example for every variable.\n`)
  process.exit(2)
}
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: config.dataDir })
const pool = createPool({ connectionString: config.databaseUrl ?? embedded!.url })
try {
  const { applied } = await migrate(pool)
  process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n')
} finally {
  await pool.end()
  await embedded?.stop()
}
