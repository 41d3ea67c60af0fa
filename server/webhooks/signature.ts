import { createHmac, randomBytes } from 'node:crypto'

// Standard Webhooks (https://www.standardwebhooks.com): the signed content is
// `${webhook-id}.${webhook-timestamp}.${body}`, signed with HMAC-SHA256 under the secret's key
// bytes (the base64 after `whsec_`), sent as `v1,<base64 signature>` in webhook-signature.
// Receivers verify it with any Standard Webhooks library (the tests use the `standardwebhooks`
// npm package, as a receiver would).

const SECRET_PREFIX = 'whsec_'
// 32 bytes: the HMAC-SHA256 block is 64, and the libraries accept 24 to 64
const SECRET_BYTES = 32

export function generateWebhookSecret (): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64')
}

export interface SignedHeaders {
  'webhook-id': string
  'webhook-timestamp': string
  'webhook-signature': string
}

/** The three headers of a POST of `body`; `at` is its send time (each retry is signed again, with its own time). */
export function signWebhook (secret: string, id: string, body: string, at = new Date()): SignedHeaders {
  const timestamp = String(Math.floor(at.getTime() / 1000))
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64')
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` }
}
