/** Renew this long before the token expires (at most half its lifetime), in ms. */
export const DEFAULT_RENEW_BEFORE_EXPIRY_MS = 60_000

/** A device token as the client holds it. */
export interface HeldToken {
  value: string
  /** the user the token is for (`sub`); undefined when the token cannot be read */
  userId: string | undefined
  /** `exp` in ms since the epoch; undefined when the token cannot be read */
  expiresAt: number | undefined
  /** when it was fetched from the provider (this device's clock) */
  fetchedAt: number
  /** the server has accepted it once: a refusal now means it changed, not that the provider is wrong */
  accepted: boolean
}

export function holdToken (value: string, now: number): HeldToken {
  const claims = readClaims(value)
  return {
    value,
    userId: typeof claims?.sub === 'string' ? claims.sub : undefined,
    expiresAt: typeof claims?.exp === 'number' ? claims.exp * 1000 : undefined,
    fetchedAt: now,
    accepted: false
  }
}

/**
 * When to fetch the next token: `renewBeforeMs` before it expires, or half-way through its life
 * for a token that lives less than twice that. Undefined when the time cannot be known: a token
 * without a readable `exp`, or one already expired by this device's clock when it was fetched
 * (a clock ahead of the server's would otherwise renew in a loop). The server then ends the
 * connection when the token expires by its clock, and the client fetches a new one.
 */
export function renewalTime (token: HeldToken, renewBeforeMs: number): number | undefined {
  if (token.expiresAt === undefined || token.expiresAt <= token.fetchedAt) return undefined
  return token.expiresAt - Math.min(renewBeforeMs, (token.expiresAt - token.fetchedAt) / 2)
}

/**
 * The claims of a JWT, without checking its signature (the server does): the client reads `sub`
 * for its topics and `exp` to renew in time. Undefined when it is not a readable JWT.
 */
export function readClaims (token: string): { sub?: unknown, exp?: unknown } | undefined {
  const part = token.split('.')[1]
  if (part === undefined) return undefined
  try {
    const claims = JSON.parse(decodeBase64Url(part)) as unknown
    return typeof claims === 'object' && claims !== null ? claims : undefined
  } catch {
    return undefined
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * base64url to text (UTF-8), by hand: `atob` is missing on older React Native engines and
 * `Buffer` on browsers.
 */
function decodeBase64Url (text: string): string {
  let bits = 0
  let value = 0
  let escaped = ''
  for (const char of text.replace(/=+$/, '')) {
    const digit = ALPHABET.indexOf(char)
    if (digit === -1) throw new SyntaxError('not base64url')
    value = (value << 6) | digit
    bits += 6
    if (bits >= 8) {
      bits -= 8
      escaped += '%' + ((value >> bits) & 0xff).toString(16).padStart(2, '0')
    }
  }
  return decodeURIComponent(escaped)
}
