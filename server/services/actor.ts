/**
 * Who asked for an operation: a backend through the REST API, or an admin in the admin UI.
 * Recorded as the reason of what it changed (`message-revoked` vs `admin-message-revoked`), so
 * the ledger says who revoked a message or ended a device's session.
 */
export type Actor = 'api' | 'admin'
