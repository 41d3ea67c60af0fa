import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import { ProblemError } from '../errors.js'
import jwt from 'jsonwebtoken'
import { isValidUserId } from '../ids.js'

export interface DeviceClaims {
  /** the user id */
  sub: string
  /** expiry, seconds since the epoch */
  exp: number
}

export type TokenProblem = 'malformed' | 'bad-signature' | 'expired' | 'missing-exp' | 'missing-sub' | 'bad-algorithm'

export class TokenError extends Error {
  constructor (readonly reason: TokenProblem, message: string) {
    super(message)
  }
}

export type TokenKeys =
  | { kind: 'secret', secret: string }
  | { kind: 'keypair', publicKey: string, privateKey?: string }

/** Longest token lifetime POST /v1/tokens issues: 30 days. */
export const MAX_TOKEN_TTL = 30 * 24 * 3600
export const DEFAULT_TOKEN_TTL = 24 * 3600

/**
 * Verifies (and, where a signing key is known, issues) device tokens. The algorithm is pinned
 * to the configured key: HS256 for a secret, RS256 or ES256 for a public key, so a token that
 * names another algorithm (`none`, or HS256 signed with the public key) is refused.
 */
export class DeviceTokens {
  readonly algorithm: 'HS256' | 'RS256' | 'ES256'
  // KeyObjects made once: given a string, jsonwebtoken parses it on every verify, first trying
  // it as a public key (and catching the error), which cost more than the rest of CONNECT
  private readonly verifyKey: KeyObject
  private readonly signKey: KeyObject | undefined

  constructor (keys: TokenKeys) {
    if (keys.kind === 'secret') {
      this.algorithm = 'HS256'
      this.verifyKey = createSecretKey(Buffer.from(keys.secret, 'utf8'))
      this.signKey = this.verifyKey
    } else {
      this.verifyKey = createPublicKey(keys.publicKey)
      const type = this.verifyKey.asymmetricKeyType
      if (type !== 'rsa' && type !== 'ec') {
        throw new Error(`JWT_PUBLIC_KEY: an RSA or EC (P-256) key is needed, got ${type}`)
      }
      this.algorithm = type === 'rsa' ? 'RS256' : 'ES256'
      this.signKey = keys.privateKey === undefined ? undefined : createPrivateKey(keys.privateKey)
    }
  }

  get canSign (): boolean {
    return this.signKey !== undefined
  }

  verify (token: string): DeviceClaims {
    let claims: jwt.JwtPayload | string
    try {
      claims = jwt.verify(token, this.verifyKey, { algorithms: [this.algorithm] })
    } catch (err) {
      if (err instanceof jwt.TokenExpiredError) throw new TokenError('expired', 'token expired')
      const message = (err as Error).message
      if (message === 'invalid algorithm') {
        throw new TokenError('bad-algorithm', `token must be signed with ${this.algorithm}`)
      }
      if (message === 'invalid signature') throw new TokenError('bad-signature', 'token signature does not verify')
      throw new TokenError('malformed', `token rejected: ${message}`)
    }
    if (typeof claims !== 'object') throw new TokenError('malformed', 'token payload is not a JSON object')
    if (typeof claims.exp !== 'number') throw new TokenError('missing-exp', 'token has no exp claim')
    if (!isValidUserId(claims.sub)) throw new TokenError('missing-sub', 'token has no valid sub claim (the user id)')
    return { sub: claims.sub, exp: claims.exp }
  }

  sign (userId: string, ttlSeconds: number): { token: string, expiresAt: Date } {
    if (this.signKey === undefined) {
      throw new ProblemError('token-signing-unavailable',
        'device tokens are verified with JWT_PUBLIC_KEY and no JWT_PRIVATE_KEY is set; ' +
        'sign tokens in your backend or set JWT_PRIVATE_KEY')
    }
    const exp = Math.floor(Date.now() / 1000) + ttlSeconds
    const token = jwt.sign({ sub: userId, exp }, this.signKey, { algorithm: this.algorithm })
    return { token, expiresAt: new Date(exp * 1000) }
  }
}
