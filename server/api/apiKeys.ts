import { Router } from 'express'
import { ProblemError } from '../errors.js'
import { parseApiKeyRequest } from '../http/requests.js'
import { requireUuid } from '../http/validate.js'
import type { ApiKeyService } from '../services/apiKeys.js'

/** Creating, listing and revoking API keys (behind admin credentials, or the admin UI's session). */
export function apiKeysRouter (apiKeys: ApiKeyService): Router {
  const router = Router()

  router.post('/', async (req, res) => {
    // the only time the secret is shown
    res.status(201).json(await apiKeys.create(parseApiKeyRequest(req.body).name))
  })

  router.get('/', async (_req, res) => {
    res.json(await apiKeys.list())
  })

  router.delete('/:id', async (req, res) => {
    const id = requireUuid(req.params.id, 'API key')
    const row = await apiKeys.revoke(id)
    if (!row) throw new ProblemError('not-found', `no API key with id ${id}`)
    res.json(row)
  })

  return router
}
