-- Why a delivery ended the way it did, shown beside its status in the REST rows and the admin
-- UI's per-device timeline. Null while a delivery is queued, sent or delivered.
--   expired:  ttl-ended (its TTL passed before it was delivered), connection-ended (a ttl-0
--             message whose connection ended first), clean-session-ended (the clean session it
--             was queued for ended)
--   replaced: collapsed (a newer message with the same collapseKey, named in replaced_by, took
--             its place before it was ever written to the device)
--   revoked:  message-revoked (DELETE /v1/messages/{id}), device-removed (DELETE
--             /v1/devices/{id}), admin-message-revoked and admin-device-removed (the same from
--             the admin UI), session-discarded (the device connected with a clean session over
--             its persistent one)
alter table deliveries
  add column reason text check (reason in ('ttl-ended', 'connection-ended', 'clean-session-ended', 'collapsed',
    'message-revoked', 'device-removed', 'admin-message-revoked', 'admin-device-removed', 'session-discarded')),
  add column replaced_by uuid;
