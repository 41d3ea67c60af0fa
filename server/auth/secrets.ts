import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scryptAsync = promisify(scrypt) as
  (password: string, salt: Buffer, keylen: number, options: { N: number }) => Promise<Buffer>

/**
 * scrypt's cost (N; r = 8, p = 1, Node's defaults): ~30 ms of CPU a check on this machine. A
 * hash made with another cost names it (`scrypt:1024$…`), so a check uses the cost it was made
 * with; tests lower it (HeraldDeps.passwordHashCost), where a run made ~360 checks.
 */
export const PASSWORD_HASH_COST = 16_384

export const API_KEY_PREFIX = 'hk_'

/** A new API key: long and random, so a fast hash is enough to store it. */
export function generateApiKey (): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url')
}

export function hashApiKey (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function generatePassword (): string {
  return randomBytes(18).toString('base64url')
}

export function generateJwtSecret (): string {
  return randomBytes(48).toString('base64url')
}

/**
 * Passwords are chosen by people, so they get a slow, salted hash. Format: scrypt$salt$hash, or
 * scrypt:<cost>$salt$hash for a cost other than PASSWORD_HASH_COST.
 */
export async function hashPassword (password: string, cost = PASSWORD_HASH_COST): Promise<string> {
  const salt = randomBytes(16)
  const hash = await scryptAsync(password, salt, 32, { N: cost })
  const scheme = cost === PASSWORD_HASH_COST ? 'scrypt' : `scrypt:${cost}`
  return `${scheme}$${salt.toString('base64')}$${hash.toString('base64')}`
}

export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, salt, hash] = stored.split('$')
  const cost = scheme === 'scrypt' ? PASSWORD_HASH_COST : Number(/^scrypt:(\d+)$/.exec(scheme ?? '')?.[1])
  // scrypt takes a power of 2 above 1
  const validCost = Number.isInteger(cost) && cost > 1 && (cost & (cost - 1)) === 0
  if (!validCost || salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64'), expected.length, { N: cost })
  return timingSafeEqual(actual, expected)
}

/**
 * Compares two secrets (a user name, a token) in time that does not depend on where they differ,
 * nor on their lengths: both are hashed to 32 bytes first.
 */
export function sameText (a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}
