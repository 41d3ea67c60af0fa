import { Router } from 'express'
import type { DeviceTokens } from '../auth/deviceTokens.js'
import { parseTokenRequest } from '../http/requests.js'

/** Signing device tokens for a user (behind an API key). */
export function tokensRouter (tokens: DeviceTokens): Router {
  const router = Router()
  router.post('/', (req, res) => {
    const { user, ttl } = parseTokenRequest(req.body)
    res.status(201).json(tokens.sign(user, ttl))
  })
  return router
}
