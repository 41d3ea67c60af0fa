// Configuration: every problem reported at once with the variable's name, by parseConfig and by
// the real entry process (exit code 2); first start prints generated secrets once; SIGTERM exits 0.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, DEFAULT_PORT, parseConfig } from '../server/config.js'
import { connectDevice } from './helpers/herald.js'
import { createTestDatabase, type TestDatabase } from './helpers/db.js'
import { killAllServers, logLines, serverEnv, spawnServer } from './helpers/process.js'

const databases: TestDatabase[] = []
after(async () => {
  await killAllServers()
  await Promise.all(databases.map(db => db.drop()))
})

const GOOD_SECRET = 'x'.repeat(32)
const PEM = '-----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\\n-----END PUBLIC KEY-----'

function problemsOf (env: Record<string, string>): string[] {
  try {
    parseConfig(env)
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.problems
  }
  assert.fail(`parseConfig accepted ${JSON.stringify(env)}`)
}

test('parseConfig: defaults for an empty environment', () => {
  const config = parseConfig({})
  assert.equal(config.port, DEFAULT_PORT)
  assert.equal(config.logLevel, 'info')
  assert.equal(config.databaseUrl, undefined)
  assert.equal(config.jwtSecret, undefined)
  assert.equal(config.mqttPort, undefined)
  assert.ok(Object.isFrozen(config))
})

test('parseConfig: accepts a complete valid environment', () => {
  const config = parseConfig({
    PORT: '9000',
    HOST: '127.0.0.1',
    DATABASE_URL: 'postgresql://u@h/db',
    JWT_SECRET: GOOD_SECRET,
    API_KEY: 'k'.repeat(32),
    ADMIN_PASSWORD: 'p'.repeat(12),
    MQTT_PORT: '1883',
    LOG_LEVEL: 'warn',
    DATA_DIR: '/tmp/herald-data'
  })
  assert.equal(config.port, 9000)
  assert.equal(config.mqttPort, 1883)
  assert.equal(config.logLevel, 'warn')
  assert.equal(config.dataDir, '/tmp/herald-data')
  // an escaped PEM from an env file gets its newlines back
  const keypair = parseConfig({ JWT_PUBLIC_KEY: PEM })
  assert.ok(keypair.jwtPublicKey?.includes('\n'))
  assert.ok(!keypair.jwtPublicKey?.includes('\\n'))
})

test('parseConfig: reports every problem at once, each with its variable name', () => {
  const problems = problemsOf({
    PORT: 'eighty',
    JWT_SECRET: 'short',
    JWT_PUBLIC_KEY: PEM,
    LOG_LEVEL: 'loud',
    DATABASE_URL: 'mysql://localhost/db',
    MQTT_PORT: '70000',
    API_KEY: 'too-short',
    ADMIN_PASSWORD: 'short',
    SHUTDOWN_TIMEOUT_MS: '-1',
    MAX_INFLIGHT_PER_DEVICE: '0'
  })
  const names = ['PORT', 'JWT_SECRET', 'JWT_SECRET and JWT_PUBLIC_KEY', 'LOG_LEVEL', 'DATABASE_URL', 'MQTT_PORT',
    'API_KEY', 'ADMIN_PASSWORD', 'SHUTDOWN_TIMEOUT_MS', 'MAX_INFLIGHT_PER_DEVICE']
  for (const name of names) {
    assert.ok(problems.some(p => p.startsWith(name)), `a problem names ${name}: ${JSON.stringify(problems, null, 1)}`)
  }
  assert.equal(problems.length, names.length, JSON.stringify(problems, null, 1))
  // the message of the error carries all of them too
  try { parseConfig({ PORT: 'eighty', LOG_LEVEL: 'loud' }) } catch (err) {
    assert.match((err as Error).message, /\bPORT\b/)
    assert.match((err as Error).message, /\bLOG_LEVEL\b/)
  }
})

test('parseConfig: each single problem', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: '65536' }, 'PORT'],
    [{ PORT: '80.5' }, 'PORT'],
    [{ PORT: '-1' }, 'PORT'],
    [{ JWT_SECRET: 'x'.repeat(31) }, 'JWT_SECRET'],
    [{ JWT_SECRET: GOOD_SECRET, JWT_PUBLIC_KEY: PEM }, 'JWT_SECRET and JWT_PUBLIC_KEY'],
    [{ JWT_PUBLIC_KEY: 'not a pem' }, 'JWT_PUBLIC_KEY'],
    [{ JWT_PRIVATE_KEY: PEM }, 'JWT_PRIVATE_KEY'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ DATABASE_URL: 'localhost:5432' }, 'DATABASE_URL'],
    [{ MQTT_PORT: 'x' }, 'MQTT_PORT'],
    [{ PORT: '9000', MQTT_PORT: '9000' }, 'MQTT_PORT']
  ]
  for (const [env, name] of cases) {
    const problems = problemsOf(env)
    assert.equal(problems.length, 1, `${JSON.stringify(env)}: ${JSON.stringify(problems)}`)
    assert.ok(problems[0].startsWith(name), `${JSON.stringify(env)}: ${problems[0]}`)
  }
})

test('parseConfig: TRUST_PROXY takes express\' trust proxy values; anything else is named', () => {
  assert.equal(parseConfig({}).trustProxy, false)
  const accepted: Array<[string, unknown]> = [
    ['false', false], ['true', true], ['0', 0], ['1', 1], ['2', 2],
    ['loopback', ['loopback']],
    ['10.0.0.1, 10.0.0.0/8,fd00::/8, 172.16.0.0/255.240.0.0',
      ['10.0.0.1', '10.0.0.0/8', 'fd00::/8', '172.16.0.0/255.240.0.0']],
    ['loopback,uniquelocal,linklocal', ['loopback', 'uniquelocal', 'linklocal']]
  ]
  for (const [value, expected] of accepted) {
    assert.deepEqual(parseConfig({ TRUST_PROXY: value }).trustProxy, expected, value)
  }
  const refused = [
    'yes', '10.0.0.0/33', 'fd00::/129', '10.0.0.1/fd00::', 'loopback,proxy.local', '1.5', '101', '10.0.0.1,,'
  ]
  for (const value of refused) {
    const problems = problemsOf({ TRUST_PROXY: value })
    assert.equal(problems.length, 1, `${value}: ${JSON.stringify(problems)}`)
    assert.ok(problems[0].startsWith(`TRUST_PROXY=${JSON.stringify(value)}: `), problems[0])
  }
  assert.match(problemsOf({ TRUST_PROXY: 'loopback,proxy.local' })[0], /"proxy.local" is not an address, CIDR or loopback/)
})

test('parseConfig: DATABASE_PREPARED_STATEMENTS is on unless set to false; anything but true/false is named', () => {
  assert.equal(parseConfig({}).preparedStatements, true)
  assert.equal(parseConfig({ DATABASE_PREPARED_STATEMENTS: 'true' }).preparedStatements, true)
  assert.equal(parseConfig({ DATABASE_PREPARED_STATEMENTS: ' false ' }).preparedStatements, false)
  for (const value of ['no', '0', 'off', 'FALSE']) {
    const problems = problemsOf({ DATABASE_PREPARED_STATEMENTS: value })
    assert.deepEqual(problems, [`DATABASE_PREPARED_STATEMENTS=${JSON.stringify(value)}: must be true or false`])
  }
})

test('the entry process exits 2 on a bad environment and names every variable on stderr', async () => {
  const server = await spawnServer({
    waitReady: false,
    env: { PORT: 'eighty', JWT_SECRET: 'short', JWT_PUBLIC_KEY: PEM, LOG_LEVEL: 'loud', DATABASE_URL: 'postgres://127.0.0.1:1/none' }
  })
  let timer: NodeJS.Timeout | undefined
  const exit = await Promise.race([server.exited, new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still running\n${server.output()}`)), 15_000)
  })])
  clearTimeout(timer)
  assert.equal(exit.code, 2, server.output())
  for (const name of ['PORT', 'JWT_SECRET', 'JWT_PUBLIC_KEY', 'LOG_LEVEL']) {
    assert.match(server.stderr(), new RegExp(`\\b${name}\\b`), server.output())
  }
  assert.ok(!server.stderr().includes('    at '), `no stack trace: ${server.stderr()}`)
  assert.doesNotMatch(server.stdout(), /herald ready/)
})

test('first start prints the admin password, a bootstrap API key and a curl; a second start does not', async () => {
  const db = await createTestDatabase({ migrated: false })
  databases.push(db)
  const env = serverEnv(db.url, { API_KEY: undefined, ADMIN_PASSWORD: undefined, JWT_SECRET: undefined })

  const first = await spawnServer({ env })
  // the banner follows the "herald ready" log line; its last command is the curl that sends a push
  await first.waitForStdout(/curl -s -X POST \S+\/v1\/messages[^\n]*\n[^\n]*-d '/)
  const banner = first.stdout()
  const password = /password:\s+(\S+)/.exec(banner)?.[1]
  const key = /Bootstrap API key[^\n]*\n\s+(\S+)/.exec(banner)?.[1]
  assert.ok(password, `admin password printed:\n${banner}`)
  assert.ok(key, `bootstrap API key printed:\n${banner}`)
  assert.match(banner, new RegExp(`Herald is running at ${first.url.replace(/[.]/g, '\\.')}`))
  assert.ok(banner.includes(`curl -s -X POST ${first.url}/v1/messages -H "Authorization: Bearer ${key}"`),
    `curl with the key:\n${banner}`)
  // the secrets are in the banner only, never in a log line
  for (const entry of logLines(banner)) {
    const line = JSON.stringify(entry)
    assert.ok(!line.includes(key) && !line.includes(password), `a log line carries a secret: ${line}`)
  }
  // stored hashed
  const stored = JSON.stringify((await db.pool.query('select * from api_keys')).rows) +
    JSON.stringify((await db.pool.query('select * from settings')).rows)
  assert.ok(!stored.includes(key) && !stored.includes(password), 'generated secrets are not stored in clear')

  // the printed key sends a push; the printed password manages keys
  const sent = await first.api('/v1/messages', {
    apiKey: key, body: { to: { user: 'alice' }, title: 'Hello', body: 'Your first push' }
  })
  assert.equal(sent.status, 202, JSON.stringify(sent.body))
  const basic = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`
  const keys = await first.api('/v1/api-keys', { headers: { authorization: basic } })
  assert.equal(keys.status, 200, JSON.stringify(keys.body))
  const issued = await first.api('/v1/tokens', { apiKey: key, body: { user: 'alice' } })
  assert.equal(issued.status, 201, JSON.stringify(issued.body))
  const deviceToken: string = issued.body.token
  assert.equal(
    (await first.api('/v1/messages', { apiKey: 'hk_' + 'x'.repeat(40), body: { to: { user: 'alice' } } })).status, 401)

  const stop = await first.term()
  assert.equal(stop.code, 0, `SIGTERM exits 0: ${JSON.stringify(stop)}\n${first.output()}`)
  assert.ok(stop.ms < 5_000, `SIGTERM took ${stop.ms} ms`)

  const second = await spawnServer({ env })
  await second.waitForStdout(/curl -s -X POST \S+\/v1\/messages[^\n]*\n[^\n]*-d '/)
  const out = second.output()
  assert.ok(!out.includes(key), 'the key is not printed again')
  assert.ok(!out.includes(password), 'the password is not printed again')
  assert.doesNotMatch(second.stdout(), /Bootstrap API key|Admin credentials/)
  assert.match(second.stdout(), /Herald is running at/)
  // everything generated on the first start still works
  assert.equal(
    (await second.api('/v1/messages', { apiKey: key, body: { to: { user: 'alice' }, body: 'again' } })).status, 202)
  assert.equal((await second.api('/v1/api-keys', { headers: { authorization: basic } })).status, 200)
  const device = await connectDevice(second.wsUrl, { clientId: 'alice-web', password: deviceToken, clean: true })
  await device.close()

  const stop2 = await second.term()
  assert.equal(stop2.code, 0, second.output())
})
