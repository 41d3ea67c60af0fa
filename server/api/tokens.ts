import { Router } from 'express'
import { DEFAULT_TOKEN_TTL, MAX_TOKEN_TTL, type DeviceTokens } from '../auth/deviceTokens.js'
import { isValidUserId } from '../ids.js'
import { ProblemError } from './problem.js'
import { Checker, objectBody } from './validate.js'

export function tokensRouter (tokens: DeviceTokens): Router {
  const router = Router()
  router.post('/', (req, res) => {
    const check = new Checker()
    const b = objectBody(check, req.body, ['user', 'ttl'])
    if (!isValidUserId(b.user)) check.fail('user', 'is required: a user id of 1 to 128 characters without "/", "+", "#" or a leading "$"')
    let ttl = DEFAULT_TOKEN_TTL
    if (b.ttl !== undefined) {
      if (typeof b.ttl !== 'number' || !Number.isInteger(b.ttl) || b.ttl < 1 || b.ttl > MAX_TOKEN_TTL) {
        check.fail('ttl', `must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL} (30 days)`)
      } else ttl = b.ttl
    }
    check.done()
    if (!tokens.canSign) {
      throw new ProblemError('token-signing-unavailable', 'device tokens are verified with JWT_PUBLIC_KEY and no JWT_PRIVATE_KEY is set; sign tokens in your backend or set JWT_PRIVATE_KEY')
    }
    const { token, expiresAt } = tokens.sign(b.user as string, ttl)
    res.status(201).json({ token, expiresAt })
  })
  return router
}
