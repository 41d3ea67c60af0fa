import { inTransaction, type Pool } from '../db/pool.js'
import type { NodeSummary } from '../wire.js'
import { waiting } from './deliveryStatus.js'

export type ClaimResult =
  /**
   * for a clean connect, `discardQueueUpTo` is the highest seq committed before it: older queue
   * rows belong to an earlier session
   */
  | {
    ok: true
    discardedPersistentSession: boolean
    discardQueueUpTo?: number
    /** the node that held the device's connection until this claim, if another one did */
    previousNode?: string
  }
  | { ok: false, ownerUserId: string }

/**
 * Records that `deviceId` connected for `userId` on `nodeId`. A device id whose persistent
 * session (or live connection) belongs to another user is refused: one user's token must not
 * take over, or wipe, another user's session. A clean connect discards an earlier persistent
 * session of the same user, as MQTT says [MQTT-3.1.2-6].
 */
export async function claimDevice (
  pool: Pool,
  deviceId: string,
  userId: string,
  persistent: boolean,
  nodeId: string,
  /** this connection, so that its end clears only itself (markDisconnected) */
  connectionId: string
): Promise<ClaimResult> {
  type Claim = {
    owner: string | null
    was_persistent: boolean | null
    previous_node: string | null
    claimed: boolean
    max_seq: number
  }
  const { rows } = await pool.query<Claim>({
    name: 'herald_claim_device',
    text: `with previous as (
       select user_id, persistent, connected_node from devices where device_id = $1 for update
     ), upsert as (
       insert into devices as d (device_id, user_id, persistent, connected_node, connection_id, connected_at,
                                 last_seen_at)
       values ($1, $2, $3, $4, $5, now(), now())
       on conflict (device_id) do update
         set user_id = excluded.user_id, persistent = excluded.persistent, connected_node = excluded.connected_node,
             connection_id = excluded.connection_id, connected_at = excluded.connected_at,
             last_seen_at = excluded.last_seen_at
         where d.user_id = excluded.user_id or not (d.persistent or d.connected_node is not null)
       returning 1
     )
     select (select user_id from previous) as owner, (select persistent from previous) as was_persistent,
            (select connected_node from previous) as previous_node,
            exists (select 1 from upsert) as claimed,
            (select coalesce(max(seq), 0) from deliveries) as max_seq`,
    values: [deviceId, userId, persistent, nodeId, connectionId]
  })
  const row = rows[0]
  if (!row.claimed) return { ok: false, ownerUserId: row.owner ?? '' }
  return {
    ok: true,
    discardedPersistentSession: row.was_persistent === true && !persistent && row.owner === userId,
    discardQueueUpTo: persistent || row.owner === null ? undefined : row.max_seq,
    previousNode: row.previous_node !== null && row.previous_node !== nodeId ? row.previous_node : undefined
  }
}

export interface DeviceConnection { deviceId: string, connectionId: string }

/**
 * Records the end of these connections: a device is shown offline only if the connection that
 * ended is still its current one (it may have connected again, here or elsewhere, meanwhile).
 */
export async function markDisconnected (pool: Pool, connections: DeviceConnection[]): Promise<void> {
  if (connections.length === 0) return
  await pool.query({
    name: 'herald_mark_disconnected',
    text: `update devices d set connected_node = null, connection_id = null, last_seen_at = now()
           from unnest($1::text[], $2::text[]) as t(device_id, connection_id)
           where d.device_id = t.device_id and d.connection_id = t.connection_id`,
    values: [connections.map(c => c.deviceId), connections.map(c => c.connectionId)]
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
export async function endDeviceSession (
  pool: Pool,
  deviceId: string,
  reason: 'device-removed' | 'admin-device-removed'
): Promise<{ found: boolean, revoked: number, node: string | null }> {
  return inTransaction(pool, async client => {
    // the node holding its connection, if that node still runs (a dead one's devices wait to be released)
    const device = await client.query<{ node: string | null }>(
      `update devices d set persistent = false where device_id = $1
       returning (select n.id from nodes n where n.id = d.connected_node and n.gone_at is null) as node`, [deviceId])
    const revoked = await client.query(
      "update deliveries set status = 'revoked', reason = $2 where device_id = $1 and status in ('queued', 'sent')",
      [deviceId, reason])
    return { found: device.rowCount === 1, revoked: revoked.rowCount ?? 0, node: device.rows[0]?.node ?? null }
  })
}

export interface NodeInfo {
  version: string
  hostname: string
  pid: number
  /** device connections held now */
  connections: number
}

/**
 * A node's heartbeat, with what the admin's Nodes page shows of it. True when the node had been
 * marked gone (its devices then were marked offline: see reclaimDevices).
 */
export async function heartbeatNode (pool: Pool, nodeId: string, info: NodeInfo): Promise<boolean> {
  const { rows } = await pool.query<{ wasGone: boolean }>({
    name: 'herald_heartbeat_node',
    text: `with previous as (select gone_at from nodes where id = $1)
           insert into nodes (id, version, hostname, pid, connections) values ($1, $2, $3, $4, $5)
           on conflict (id) do update set heartbeat_at = now(), connections = excluded.connections, gone_at = null
           returning (select gone_at is not null from previous) as "wasGone"`,
    values: [nodeId, info.version, info.hostname, info.pid, info.connections]
  })
  return rows[0]?.wasGone === true
}

/**
 * Marks these connections' devices connected to this node again, unless they connected again
 * since; returns how many.
 */
export async function reclaimDevices (pool: Pool, nodeId: string, connections: DeviceConnection[]): Promise<number> {
  if (connections.length === 0) return 0
  const { rowCount } = await pool.query(
    `update devices d set connected_node = $1
     from unnest($2::text[], $3::text[]) as t(device_id, connection_id)
     where d.device_id = t.device_id and d.connection_id = t.connection_id and d.connected_node is null`,
    [nodeId, connections.map(c => c.deviceId), connections.map(c => c.connectionId)])
  return rowCount ?? 0
}

/**
 * Marks gone every node whose heartbeat stopped, or whose listener connection (application_name
 * `herald node <id>`, cluster.ts) is no longer in pg_stat_activity while it has beaten for more
 * than `settleSeconds` (a killed process' connections end with it, long before its heartbeat is
 * stale), and `alsoNode` (this node, on shutdown); their devices are marked offline. Returns the
 * devices released. Gone nodes are forgotten a day later.
 */
export async function markGoneNodes (pool: Pool, staleAfterSeconds: number,
  { alsoNode, settleSeconds = 15 }: { alsoNode?: string, settleSeconds?: number } = {}): Promise<number> {
  // one statement: nobody sees a node gone while its devices still read online (both updates
  // commit together; the devices update sees the nodes as they were before, hence `gone`)
  const { rows } = await pool.query<{ released: number }>(
    `with gone as (
       update nodes n set gone_at = now()
       where gone_at is null and (
         heartbeat_at < now() - make_interval(secs => $1) or id = $2
         or (started_at < now() - make_interval(secs => $3) and not exists (
               select 1 from pg_stat_activity a where a.application_name = 'herald node ' || n.id)))
       returning id
     ), released as (
       update devices set connected_node = null
       where connected_node is not null
         and (connected_node in (select id from gone)
              or connected_node not in (select id from nodes where gone_at is null))
       returning 1
     )
     select count(*)::int as released from released`, [staleAfterSeconds, alsoNode ?? null, settleSeconds])
  await pool.query("delete from nodes where gone_at < now() - interval '1 day'")
  return rows[0].released
}

/**
 * The advisory lock whose holder runs the cluster's chores (services/cluster.ts takes it on its
 * listener connection). pg_locks shows a one-bigint key below 2^32 as classid 0, objid the key,
 * objsubid 1.
 */
export const CHORES_LOCK = 0x4865_7263

/**
 * Every node known, for the admin's Nodes page: running ones first, then gone ones, newest
 * first, and the database's time. `leader` is whether the node's listener connection
 * (application_name `herald node <id>`) holds the chores' lock now, in this database (databases
 * on one Postgres each have their own leader).
 */
export async function listNodes (pool: Pool): Promise<{ at: Date, nodes: NodeSummary[] }> {
  const [now, nodes] = await Promise.all([
    pool.query<{ at: Date }>('select now() as at'),
    pool.query<NodeSummary>(
      `select n.id, n.version, n.hostname, n.pid, n.connections, n.started_at as "startedAt",
              n.heartbeat_at as "heartbeatAt", n.gone_at as "goneAt",
              exists (select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
                      where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = $1 and l.objsubid = 1
                        and a.datname = current_database() and a.application_name = 'herald node ' || n.id) as leader
       from nodes n order by n.gone_at is not null, n.started_at desc`, [CHORES_LOCK])
  ])
  return { at: now.rows[0].at, nodes: nodes.rows }
}

/** Of these devices, those whose connection is now held by another node (or by none). */
export async function devicesConnectedElsewhere (pool: Pool, nodeId: string, deviceIds: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `select device_id as id from devices
     where device_id = any($1::text[]) and connected_node is distinct from $2`, [deviceIds, nodeId])
  return rows.map(r => r.id)
}
