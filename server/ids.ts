/**
 * Identifiers that end up inside MQTT topics (`users/{user}/inbox`, `topics/{name}`) must be a
 * single topic level: no `/`, no wildcards, no control characters, no leading `$`, and no half
 * of a surrogate pair (not UTF-8 encodable: MQTT and Postgres' jsonb refuse it).
 */
const TOPIC_LEVEL = /^(?!\$)[^/+#\u0000-\u001f\u007f\ud800-\udfff]{1,128}$/u

export const MAX_ID_LENGTH = 128

export function isValidUserId (value: unknown): value is string {
  return typeof value === 'string' && TOPIC_LEVEL.test(value)
}

export function isValidTopicName (value: unknown): value is string {
  return typeof value === 'string' && TOPIC_LEVEL.test(value)
}

export const inboxTopic = (userId: string): string => `users/${userId}/inbox`
export const receiptsTopic = (userId: string): string => `users/${userId}/receipts`
export const broadcastTopic = (name: string): string => `topics/${name}`
export const BROADCAST_PREFIX = 'topics/'
