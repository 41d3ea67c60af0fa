import { Router } from 'express'
import type { Pool } from '../db/pool.js'
import { isValidUserId } from '../ids.js'
import { endDeviceSession, listUserDevices } from '../store/devices.js'
import { ProblemError } from './problem.js'
import { textProblem } from './validate.js'
import type { DeliveryEngine } from '../delivery/engine.js'

/** `by`: who ends device sessions through this router, recorded as the reason of the revoked deliveries. */
export function devicesRouter (pool: Pool, engine: DeliveryEngine, endSession: ((deviceId: string) => Promise<void>) | undefined,
  by: 'api' | 'admin'): Router {
  const router = Router()

  router.get('/users/:user/devices', async (req, res) => {
    if (!isValidUserId(req.params.user)) throw new ProblemError('invalid-request', 'user: not a valid user id', { errors: [{ field: 'user', message: 'invalid' }] })
    const devices = await listUserDevices(pool, req.params.user)
    res.json(devices.map(d => ({
      deviceId: d.deviceId, persistent: d.persistent, online: d.online, connectedAt: d.connectedAt, lastSeenAt: d.lastSeenAt, pending: d.pending
    })))
  })

  router.delete('/devices/:deviceId', async (req, res) => {
    const deviceId = req.params.deviceId
    const problem = textProblem(deviceId)
    if (problem !== undefined) throw new ProblemError('invalid-request', `deviceId: ${problem}`, { errors: [{ field: 'deviceId', message: problem }] })
    const result = await endDeviceSession(pool, deviceId, by === 'admin' ? 'admin-device-removed' : 'device-removed')
    if (!result.found) throw new ProblemError('not-found', `no device with id ${JSON.stringify(deviceId)}`)
    // the session's subscriptions end with it: a later persistent connect starts a new session
    await endSession?.(deviceId)
    const disconnected = engine.closeDevice(deviceId)
    res.json({ deviceId, revoked: result.revoked, disconnected })
  })

  return router
}
