import type { Pool } from '../db/pool.js'

// Who a topic message goes to, read from Postgres so that every process counts every device:
// persistent sessions' subscriptions (mqtt_subscriptions, QoS 1 or 2: a QoS 0 one is kept for
// the session but not matched) and the live subscriptions of connected devices, of any session
// kind and QoS (live_subscriptions, migration 0007), which count only while the node that wrote
// them holds the device's connection.

/** Devices subscribed to the broadcast topic `topic` (the full MQTT topic, topics/<name>). */
export async function topicSubscribers (pool: Pool, topic: string): Promise<string[]> {
  const { rows } = await pool.query<{ deviceId: string }>({
    name: 'herald_topic_subscribers',
    text: `select s.client_id as "deviceId" from mqtt_subscriptions s where s.topic = $1 and s.qos > 0
           union
           select l.device_id from live_subscriptions l
             join devices d on d.device_id = l.device_id and d.connected_node = l.node_id
            where l.topic = $1`,
    values: [topic]
  })
  return rows.map(r => r.deviceId)
}

/** A connected device's broadcast subscription, held by `nodeId` (before its SUBACK). */
export async function addLiveSubscription (pool: Pool, nodeId: string, deviceId: string, topic: string): Promise<void> {
  await pool.query({
    name: 'herald_add_live_subscription',
    text: `insert into live_subscriptions (device_id, topic, node_id) values ($1, $2, $3)
           on conflict (device_id, topic) do update set node_id = excluded.node_id`,
    values: [deviceId, topic, nodeId]
  })
}

/**
 * Forgets live subscriptions this node wrote for the device: `topics`, or all but `keep` (a
 * connection that ended, whose successor here kept some). Rows another node wrote stay.
 */
export async function removeLiveSubscriptions (pool: Pool, nodeId: string, deviceId: string,
  which: { topics: string[] } | { allBut: string[] }): Promise<void> {
  if ('topics' in which) {
    if (which.topics.length === 0) return
    await pool.query('delete from live_subscriptions where device_id = $1 and node_id = $2 and topic = any($3::text[])',
      [deviceId, nodeId, which.topics])
  } else {
    await pool.query(
      'delete from live_subscriptions where device_id = $1 and node_id = $2 and topic <> all($3::text[])',
      [deviceId, nodeId, which.allBut])
  }
}

/** Live subscriptions of nodes that are gone (a chore of the cluster's leader). */
export async function deleteOrphanLiveSubscriptions (pool: Pool): Promise<number> {
  const { rowCount } = await pool.query(
    'delete from live_subscriptions where node_id not in (select id from nodes where gone_at is null)')
  return rowCount ?? 0
}
