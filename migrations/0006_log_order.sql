-- The delivery logs list newest first by accept time and, among rows accepted at the same
-- instant (a batch's messages share it), by seq: reverse accept order (server/store/logOrder.ts).
-- Until now ties were broken by message id, a random UUID, so a batch read in random order.
-- The log indexes change their tie-breaker from (message_id, device_id) to seq, one for one: as
-- many indexes as before, each written on every status change. message_id rides along (INCLUDE)
-- so the admin log's walk over deliveries, which skips the rest of a message's run of
-- deliveries, reads it from the index.
drop index deliveries_log;
drop index deliveries_log_user;
drop index deliveries_log_device;
drop index deliveries_log_status;
create index deliveries_log on deliveries (queued_at, seq) include (message_id);
create index deliveries_log_user on deliveries (user_id, queued_at, seq) include (message_id);
create index deliveries_log_device on deliveries (device_id, queued_at, seq) include (message_id);
create index deliveries_log_status on deliveries (status, queued_at, seq) include (message_id);

-- The admin log grouped per message, in the same order.
drop index messages_admin_log;
create index messages_admin_log on messages (accepted_at, seq);
