import type { Pool } from '../db/pool.js'
import { ProblemError } from '../errors.js'
import { isValidUserId, textProblem } from '../ids.js'
import type { Metrics } from '../metrics.js'
import { endDeviceSession, listUserDevices } from '../store/devices.js'
import type { DeliveryEngine } from '../delivery/engine.js'
import type { Device } from '../wire.js'
import type { Actor } from './actor.js'

export interface DeviceServiceDeps {
  pool: Pool
  engine: DeliveryEngine
  /** forgets a device's MQTT session state (its subscriptions) */
  forgetSession: (deviceId: string) => Promise<void>
  /** closes the device's connection on the process holding it, when that is another one */
  closeElsewhere: (nodeId: string, deviceId: string) => Promise<void>
  /** this process */
  nodeId: string
  metrics?: Metrics
}

/** A user's devices, and ending a device's session: the REST API and the admin UI call these. */
export class DeviceService {
  constructor (private readonly deps: DeviceServiceDeps) {}

  async listForUser (userId: string): Promise<Device[]> {
    if (!isValidUserId(userId)) {
      throw new ProblemError('invalid-request', 'user: not a valid user id',
        { errors: [{ field: 'user', message: 'invalid' }] })
    }
    const devices = await listUserDevices(this.deps.pool, userId)
    return devices.map(d => ({
      deviceId: d.deviceId,
      persistent: d.persistent,
      online: d.online,
      connectedAt: d.connectedAt,
      lastSeenAt: d.lastSeenAt,
      pending: d.pending
    }))
  }

  /**
   * Ends a device's session: its queue is revoked (recorded with who did it), its subscriptions
   * are forgotten, so that a later persistent connect starts a new session, and its connection
   * is closed if it is connected here. Undefined when there is no such device.
   */
  async end (
    deviceId: string,
    by: Actor
  ): Promise<{ deviceId: string, revoked: number, disconnected: boolean } | undefined> {
    const problem = textProblem(deviceId)
    if (problem !== undefined) {
      throw new ProblemError('invalid-request', `deviceId: ${problem}`,
        { errors: [{ field: 'deviceId', message: problem }] })
    }
    const reason = by === 'admin' ? 'admin-device-removed' : 'device-removed'
    const result = await endDeviceSession(this.deps.pool, deviceId, reason)
    if (!result.found) return undefined
    this.deps.metrics?.deliveries.inc({ status: 'revoked' }, result.revoked)
    await this.deps.forgetSession(deviceId)
    let disconnected = this.deps.engine.closeDevice(deviceId)
    if (!disconnected && result.node !== null && result.node !== this.deps.nodeId) {
      await this.deps.closeElsewhere(result.node, deviceId)
      disconnected = true
    }
    return { deviceId, revoked: result.revoked, disconnected }
  }
}
