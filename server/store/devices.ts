import { inTransaction, type Pool } from '../db/pool.js'
import { waiting } from './deliveryStatus.js'

export type ClaimResult =
  /** for a clean connect, `discardQueueUpTo` is the highest seq committed before it: older queue rows belong to an earlier session */
  | { ok: true, discardedPersistentSession: boolean, discardQueueUpTo?: number }
  | { ok: false, ownerUserId: string }

/**
 * Records that `deviceId` connected for `userId` on `nodeId`. A device id whose persistent
 * session (or live connection) belongs to another user is refused: one user's token must not
 * take over, or wipe, another user's session. A clean connect discards an earlier persistent
 * session of the same user, as MQTT says [MQTT-3.1.2-6].
 */
export async function claimDevice (pool: Pool, deviceId: string, userId: string, persistent: boolean, nodeId: string): Promise<ClaimResult> {
  type Claim = { owner: string | null, was_persistent: boolean | null, claimed: boolean, max_seq: number }
  const { rows } = await pool.query<Claim>({
    name: 'herald_claim_device',
    text: `with previous as (
       select user_id, persistent, connected_node from devices where device_id = $1 for update
     ), upsert as (
       insert into devices as d (device_id, user_id, persistent, connected_node, connected_at, last_seen_at)
       values ($1, $2, $3, $4, now(), now())
       on conflict (device_id) do update
         set user_id = excluded.user_id, persistent = excluded.persistent, connected_node = excluded.connected_node,
             connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at
         where d.user_id = excluded.user_id or not (d.persistent or d.connected_node is not null)
       returning 1
     )
     select (select user_id from previous) as owner, (select persistent from previous) as was_persistent,
            exists (select 1 from upsert) as claimed,
            (select coalesce(max(seq), 0) from deliveries) as max_seq`,
    values: [deviceId, userId, persistent, nodeId]
  })
  const row = rows[0]
  if (!row.claimed) return { ok: false, ownerUserId: row.owner ?? '' }
  return {
    ok: true,
    discardedPersistentSession: row.was_persistent === true && !persistent && row.owner === userId,
    discardQueueUpTo: persistent || row.owner === null ? undefined : row.max_seq
  }
}

export async function markDisconnected (pool: Pool, deviceIds: string[], nodeId: string): Promise<void> {
  if (deviceIds.length === 0) return
  await pool.query({
    name: 'herald_mark_disconnected',
    text: `update devices set connected_node = null, last_seen_at = now()
           where device_id = any($1::text[]) and connected_node = $2`,
    values: [deviceIds, nodeId]
  })
}

export interface DeviceRow {
  deviceId: string
  userId: string
  persistent: boolean
  online: boolean
  connectedAt: Date | null
  lastSeenAt: Date | null
  pending: number
}

export async function listUserDevices (pool: Pool, userId: string): Promise<DeviceRow[]> {
  const { rows } = await pool.query<DeviceRow>(
    `select d.device_id as "deviceId", d.user_id as "userId", d.persistent,
            d.connected_node is not null as online, d.connected_at as "connectedAt", d.last_seen_at as "lastSeenAt",
            (select count(*)::int from deliveries q
              where q.device_id = d.device_id and ${waiting('q')}) as pending
     from devices d where d.user_id = $1 order by d.last_seen_at desc nulls last, d.device_id`, [userId])
  return rows
}

/** Ends a device's session: it is no longer a target, and its queue is revoked. */
export async function endDeviceSession (pool: Pool, deviceId: string,
  reason: 'device-removed' | 'admin-device-removed'): Promise<{ found: boolean, revoked: number }> {
  return inTransaction(pool, async client => {
    const device = await client.query('update devices set persistent = false where device_id = $1 returning 1', [deviceId])
    const revoked = await client.query(
      "update deliveries set status = 'revoked', reason = $2 where device_id = $1 and status in ('queued', 'sent')",
      [deviceId, reason])
    return { found: device.rowCount === 1, revoked: revoked.rowCount ?? 0 }
  })
}

/** A node's heartbeat; devices held by a node whose heartbeat stopped are shown offline. */
export async function heartbeatNode (pool: Pool, nodeId: string): Promise<void> {
  await pool.query(
    'insert into nodes (id) values ($1) on conflict (id) do update set heartbeat_at = now()', [nodeId])
}

/** Marks offline every device held by a node that stopped beating (or by this node on shutdown). */
export async function releaseDeadNodes (pool: Pool, staleAfterSeconds: number, alsoNode?: string): Promise<number> {
  const dead = await pool.query<{ id: string }>(
    'delete from nodes where heartbeat_at < now() - make_interval(secs => $1) or id = $2 returning id', [staleAfterSeconds, alsoNode ?? null])
  const ids = dead.rows.map(r => r.id)
  const released = await pool.query(
    `update devices set connected_node = null
     where connected_node is not null and (connected_node = any($1::text[]) or connected_node not in (select id from nodes))`, [ids])
  return released.rowCount ?? 0
}
