import { Router } from 'express'
import type { Pool } from '../db/pool.js'
import { generateApiKey, hashApiKey } from '../auth/secrets.js'
import { insertApiKey, listApiKeys, revokeApiKey } from '../store/apiKeys.js'
import { ProblemError } from './problem.js'
import { Checker, objectBody, requireUuid, textProblem } from './validate.js'

const MAX_NAME_LENGTH = 100
/** Characters of a key shown in listings: enough to tell keys apart, useless to an attacker. */
export const KEY_PREFIX_LENGTH = 10

export function apiKeysRouter (pool: Pool, onRevoked: (id: string) => void): Router {
  const router = Router()

  router.post('/', async (req, res) => {
    const check = new Checker()
    const b = objectBody(check, req.body, ['name'])
    if (typeof b.name !== 'string' || b.name.trim().length === 0 || b.name.length > MAX_NAME_LENGTH) {
      check.fail('name', `is required: a string of 1 to ${MAX_NAME_LENGTH} characters that says who uses the key`)
    } else if (textProblem(b.name) !== undefined) check.fail('name', textProblem(b.name)!)
    check.done()
    const key = generateApiKey()
    const row = await insertApiKey(pool, (b.name as string).trim(), key.slice(0, KEY_PREFIX_LENGTH), hashApiKey(key))
    // the only time the secret is shown
    res.status(201).json({ ...row, key })
  })

  router.get('/', async (_req, res) => {
    res.json(await listApiKeys(pool))
  })

  router.delete('/:id', async (req, res) => {
    const id = requireUuid(req.params.id, 'API key')
    const row = await revokeApiKey(pool, id)
    if (!row) throw new ProblemError('not-found', `no API key with id ${id}`)
    onRevoked(id)
    res.json(row)
  })

  return router
}
