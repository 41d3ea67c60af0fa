import { Router } from 'express'
import { ProblemError } from '../errors.js'
import type { DeviceService } from '../services/devices.js'
import type { Actor } from '../services/actor.js'

/** A user's devices and ending a device's session; `by` is recorded as who ended it. */
export function devicesRouter (devices: DeviceService, by: Actor): Router {
  const router = Router()
  router.get('/users/:user/devices', async (req, res) => {
    res.json(await devices.listForUser(req.params.user))
  })
  router.delete('/devices/:deviceId', async (req, res) => {
    const ended = await devices.end(req.params.deviceId, by)
    if (!ended) throw new ProblemError('not-found', `no device with id ${JSON.stringify(req.params.deviceId)}`)
    res.json(ended)
  })
  return router
}
