/**
 * What went wrong, as a stable `code` to branch on (never the message text). `fatal` errors stop
 * the client: its state becomes `refused` and it makes no more attempts until it is created again.
 */
export type HeraldErrorCode =
  /** CONNACK 4: the token is missing, malformed, wrongly signed or expired; a fresh one was refused too */
  | 'token-refused'
  /** CONNACK 5: this device id holds a session of another user */
  | 'device-id-taken'
  /** CONNACK 2: the device id is longer than 128 characters */
  | 'device-id-rejected'
  /** CONNACK 1: the server does not speak MQTT 3.1.1 */
  | 'protocol-refused'
  /** CONNACK 3: the server cannot reach its database; retried */
  | 'server-unavailable'
  /** the token provider threw or returned something that is not a token; retried */
  | 'token-provider-failed'
  /** the connection could not be opened or was lost; retried */
  | 'connection-failed'
  /** the server refused a subscription (SUBACK 0x80): a topic name it does not accept */
  | 'subscription-refused'
  /** a message that is not a Herald push (not JSON, or no `id`): acknowledged and dropped */
  | 'bad-message'
  /** the storage threw: dedupe and offline receipts hold only in memory until it works again */
  | 'storage-failed'
  /** `whenConnected()` or an operation on a client that was closed */
  | 'closed'

export class HeraldError extends Error {
  override readonly name = 'HeraldError'
  constructor (
    readonly code: HeraldErrorCode,
    message: string,
    readonly fatal = false,
    options?: { cause?: unknown }
  ) {
    super(message, options)
  }
}

// CONNACK return codes, MQTT 3.1.1 §3.2.2.3, as Herald uses them (README "MQTT for devices")
const REFUSALS: Record<number, { code: HeraldErrorCode, fatal: boolean, message: string }> = {
  1: { code: 'protocol-refused', fatal: true, message: 'the server refused MQTT 3.1.1 (CONNACK 1)' },
  2: {
    code: 'device-id-rejected',
    fatal: true,
    message: 'the server rejected the device id (CONNACK 2): at most 128 characters'
  },
  3: { code: 'server-unavailable', fatal: false, message: 'the server is unavailable (CONNACK 3); retrying' },
  4: {
    code: 'token-refused',
    fatal: true,
    message: 'the server refused the device token (CONNACK 4): missing, malformed, wrongly signed or expired'
  },
  5: {
    code: 'device-id-taken',
    fatal: true,
    message: 'the device id belongs to another user (CONNACK 5)'
  }
}

/** The error for a CONNACK return code other than 0. */
export function refusal (returnCode: number): HeraldError {
  const known = REFUSALS[returnCode]
  if (known) return new HeraldError(known.code, known.message, known.fatal)
  return new HeraldError('connection-failed', `the server refused the connection (CONNACK ${returnCode})`)
}
