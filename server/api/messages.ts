import { Router } from 'express'
import { ProblemError } from '../errors.js'
import { encodeLogCursor, parseLogQuery, type LogQueryRules } from '../http/logQuery.js'
import { requireUuid } from '../http/validate.js'
import type { MessageService } from '../services/messages.js'

// GET /v1/messages: a row per delivery, newest first
const LOG_RULES: LogQueryRules = {
  extra: [], defaultLimit: 50, maxLimit: 200, nextMember: 'nextCursor', cursorHasId: false, emptyIsAbsent: false
}

/** Reading and revoking; the two sends are served without express (sendRoutes.ts). */
export function messagesRouter (service: MessageService): Router {
  const router = Router()

  router.get('/', async (req, res) => {
    const { filter, after, limit } = parseLogQuery(req.query, LOG_RULES)
    const { items, next } = await service.log({ ...filter, after, limit })
    res.json({ items, nextCursor: next === undefined ? null : encodeLogCursor(next) })
  })

  router.get('/:id', async (req, res) => {
    const message = await service.get(requireUuid(req.params.id, 'message'))
    if (!message) throw new ProblemError('not-found', `no message with id ${req.params.id}`)
    res.json(message)
  })

  router.delete('/:id', async (req, res) => {
    const id = requireUuid(req.params.id, 'message')
    const result = await service.revoke(id, 'api')
    if (!result) throw new ProblemError('not-found', `no message with id ${id}`)
    res.json({ id, revoked: result.revoked })
  })

  return router
}
