import { ConfigError, parseConfig } from './config.js'
import { createLogger } from './log.js'
import { startHerald, type Herald } from './app.js'
import { startEmbeddedPostgres } from './db/embedded.js'
import { printWelcome } from './welcome.js'

/**
 * The entry file: the only place that reads the environment, starts the embedded Postgres
 * when no DATABASE_URL is given, and handles signals.
 */
async function main (): Promise<void> {
  let config
  try {
    config = parseConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`herald: ${err.message}\nSee .env.example for every variable.\n`)
      process.exit(2)
    }
    throw err
  }
  const log = createLogger(config.logLevel)

  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined
  let databaseUrl = config.databaseUrl
  if (!databaseUrl) {
    log.info({ dataDir: config.dataDir }, 'DATABASE_URL not set: starting the embedded Postgres')
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, log })
    databaseUrl = embedded.url
  }

  let herald: Herald
  try {
    herald = await startHerald({ ...config, databaseUrl }, { log })
  } catch (err) {
    log.fatal({ err }, 'herald failed to start')
    await embedded?.stop()
    process.exit(1)
  }
  printWelcome(herald, { embedded: embedded !== undefined, dataDir: config.dataDir })

  let signalled = false
  const shutdown = (signal: string): void => {
    if (signalled) {
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    signalled = true
    log.info({ signal }, 'signal received')
    const deadline = setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting')
      process.exit(1)
    }, config.shutdownTimeoutMs)
    deadline.unref()
    herald.stop()
      .then(() => embedded?.stop())
      .then(() => process.exit(0), err => {
        log.error({ err }, 'shutdown failed')
        process.exit(1)
      })
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

main().catch(err => {
  process.stderr.write(`herald: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
