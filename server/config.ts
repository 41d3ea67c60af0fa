import { isIP } from 'node:net'
import path from 'node:path'

/** Everything Herald reads from the environment, parsed once and frozen. */
export interface Config {
  port: number
  host: string
  databaseUrl: string | undefined
  /** the hot statements are prepared once per connection; false behind a pooler in transaction mode */
  preparedStatements: boolean
  /** connections this process keeps to Postgres at most (its LISTEN connection is one of them) */
  databasePoolSize: number
  dataDir: string
  jwtSecret: string | undefined
  jwtPublicKey: string | undefined
  jwtPrivateKey: string | undefined
  apiKey: string | undefined
  adminPassword: string | undefined
  mqttPort: number | undefined
  logLevel: LogLevel
  shutdownTimeoutMs: number
  maxInflightPerDevice: number
  /** a device that owes PUBACKs and makes no progress for this long is disconnected (its queue stays in Postgres) */
  stalledDeviceTimeoutMs: number
  /** bearer token for GET /metrics (the admin credentials work too) */
  metricsToken: string | undefined
  /** serve /metrics, without credentials, on this separate port (keep it off the public network) */
  metricsPort: number | undefined
  /** which X-Forwarded-For hops to believe for the client address, as express' `trust proxy` */
  trustProxy: TrustProxy
}

/** false: the socket's address; true: every hop (the leftmost); n: n hops; or the proxies' addresses/CIDRs */
export type TrustProxy = boolean | number | string[]

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

// Defaults, each with its reason.
export const DEFAULT_PORT = 8080
export const DEFAULT_DATA_DIR = './data'
// Long enough that a stuck write cannot keep a deploy waiting, short enough for orchestrators' grace periods (30 s).
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000
// Unacknowledged QoS 1 PUBLISHes per device: enough to fill a mobile link, far below MQTT's 65,535 message ids.
export const DEFAULT_MAX_INFLIGHT_PER_DEVICE = 500
// A device that stops reading its socket (or acknowledging) holds a window of messages in the
// server's buffers; a phone on a poor link can stall for seconds, one stalled this long is gone.
export const DEFAULT_STALLED_DEVICE_TIMEOUT_MS = 30_000
// Preparing the statements of a device's connect once per connection halved Postgres' CPU for it.
// PgBouncer in transaction mode (without max_prepared_statements) hands each transaction any server
// connection, maybe one that never saw the PREPARE: there DATABASE_PREPARED_STATEMENTS=false.
export const DEFAULT_PREPARED_STATEMENTS = true
// Enough for the accept's group commit, delivery reads and state writes, the LISTEN connection and
// the webhook sender to proceed side by side; each process holds this many at most, so N processes
// need N times it within the server's max_connections (100 by default).
export const DEFAULT_DATABASE_POOL_SIZE = 10
// An HS256 secret shorter than this is guessable offline from one token.
const MIN_JWT_SECRET_LENGTH = 32
const MIN_API_KEY_LENGTH = 32
const MIN_ADMIN_PASSWORD_LENGTH = 12
const MIN_METRICS_TOKEN_LENGTH = 16

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
  }
}

type Env = Record<string, string | undefined>

/** Parses the environment; reports every problem at once, each with the variable's name. */
export function parseConfig (env: Env): Readonly<Config> {
  const problems: string[] = []
  const text = (name: string): string | undefined => {
    const value = env[name]
    return value === undefined || value.trim() === '' ? undefined : value
  }
  const int = (name: string, fallback: number | undefined, min: number, max: number): number | undefined => {
    const raw = text(name)
    if (raw === undefined) return fallback
    const value = Number(raw)
    if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: must be a whole number from ${min} to ${max}`)
      return fallback
    }
    return value
  }
  const minLength = (name: string, min: number): string | undefined => {
    const value = text(name)
    if (value !== undefined && value.length < min) problems.push(`${name}: must be at least ${min} characters long`)
    return value
  }
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = text(name)
    if (raw === undefined) return fallback
    if (raw.trim() === 'true') return true
    if (raw.trim() === 'false') return false
    problems.push(`${name}=${JSON.stringify(raw)}: must be true or false`)
    return fallback
  }
  const pem = (name: string): string | undefined => {
    // a PEM passed through an env file often has its newlines escaped
    const value = text(name)?.replace(/\\n/g, '\n')
    if (value !== undefined && !/-----BEGIN [A-Z ]+-----/.test(value)) problems.push(`${name}: must be a PEM key (-----BEGIN …-----)`)
    return value
  }

  const databaseUrl = text('DATABASE_URL')
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL: must be a postgres:// or postgresql:// URL')
  }
  const logLevel = (text('LOG_LEVEL') ?? 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)}: must be one of ${LOG_LEVELS.join(', ')}`)
  }

  const jwtSecret = minLength('JWT_SECRET', MIN_JWT_SECRET_LENGTH)
  const jwtPublicKey = pem('JWT_PUBLIC_KEY')
  const jwtPrivateKey = pem('JWT_PRIVATE_KEY')
  if (jwtSecret !== undefined && jwtPublicKey !== undefined) {
    problems.push('JWT_SECRET and JWT_PUBLIC_KEY: set one, not both ' +
      '(device tokens are verified with exactly one algorithm family)')
  }
  if (jwtPrivateKey !== undefined && jwtPublicKey === undefined) {
    problems.push('JWT_PRIVATE_KEY: needs JWT_PUBLIC_KEY, the key devices\' tokens are verified with')
  }

  const port = int('PORT', DEFAULT_PORT, 0, 65535)!
  const mqttPort = int('MQTT_PORT', undefined, 0, 65535)
  if (mqttPort !== undefined && mqttPort !== 0 && mqttPort === port) {
    problems.push(`MQTT_PORT: must differ from PORT (${port})`)
  }
  const metricsPort = int('METRICS_PORT', undefined, 0, 65535)
  if (metricsPort !== undefined && metricsPort !== 0 && (metricsPort === port || metricsPort === mqttPort)) {
    problems.push('METRICS_PORT: must differ from PORT and MQTT_PORT')
  }

  const trustProxy = parseTrustProxy(text('TRUST_PROXY'), problems)

  const config: Config = {
    port,
    host: text('HOST') ?? '0.0.0.0',
    databaseUrl,
    preparedStatements: bool('DATABASE_PREPARED_STATEMENTS', DEFAULT_PREPARED_STATEMENTS),
    // 3: the LISTEN connection, an accept and one more statement at a time
    databasePoolSize: int('DATABASE_POOL_SIZE', DEFAULT_DATABASE_POOL_SIZE, 3, 1000)!,
    dataDir: path.resolve(text('DATA_DIR') ?? DEFAULT_DATA_DIR),
    jwtSecret,
    jwtPublicKey,
    jwtPrivateKey,
    apiKey: minLength('API_KEY', MIN_API_KEY_LENGTH),
    adminPassword: minLength('ADMIN_PASSWORD', MIN_ADMIN_PASSWORD_LENGTH),
    mqttPort,
    logLevel,
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', DEFAULT_SHUTDOWN_TIMEOUT_MS, 0, 600_000)!,
    maxInflightPerDevice: int('MAX_INFLIGHT_PER_DEVICE', DEFAULT_MAX_INFLIGHT_PER_DEVICE, 1, 1000)!,
    stalledDeviceTimeoutMs: int('STALLED_DEVICE_TIMEOUT_MS', DEFAULT_STALLED_DEVICE_TIMEOUT_MS, 1_000, 600_000)!,
    metricsToken: minLength('METRICS_TOKEN', MIN_METRICS_TOKEN_LENGTH),
    metricsPort,
    trustProxy
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze(config)
}

// express' (proxy-addr's) names for well-known ranges
const TRUST_PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal']

/**
 * TRUST_PROXY, with express' `trust proxy` meanings: `false` (default) uses the socket's address;
 * `true` believes all of X-Forwarded-For (only behind a proxy that overwrites it); a hop count
 * believes that many proxies; a comma list names the proxies (addresses, CIDRs, loopback…), and the
 * client is the rightmost address not in it.
 */
function parseTrustProxy (raw: string | undefined, problems: string[]): TrustProxy {
  if (raw === undefined || raw.trim() === 'false') return false
  const value = raw.trim()
  if (value === 'true') return true
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    if (hops <= 100) return hops
    problems.push(`TRUST_PROXY=${JSON.stringify(raw)}: a hop count must be at most 100`)
    return false
  }
  const entries = value.split(',').map(e => e.trim())
  const wrong = entries.filter(e => !TRUST_PROXY_NAMES.includes(e) && !isAddressOrRange(e))
  if (wrong.length > 0) {
    const named = wrong.map(w => JSON.stringify(w)).join(', ')
    problems.push(`TRUST_PROXY=${JSON.stringify(raw)}: ${named} is not an address, ` +
      `CIDR or ${TRUST_PROXY_NAMES.join('/')}; use false, true, a hop count, or a comma-separated list of the proxies`)
    return false
  }
  return entries
}

function isAddressOrRange (entry: string): boolean {
  const [address, bits, ...rest] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || rest.length > 0) return false
  if (bits === undefined) return true
  if (/^\d+$/.test(bits)) return Number(bits) <= (family === 4 ? 32 : 128)
  return family === 4 && isIP(bits) === 4 // a netmask, 10.0.0.0/255.0.0.0
}
