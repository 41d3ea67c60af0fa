-- Several Herald processes on one database (README "Running several processes").

-- What the admin's Nodes page shows of each process, and processes that are gone: a process
-- whose heartbeat stopped (or that stopped cleanly) is marked gone rather than forgotten, so an
-- admin sees that it died and when; gone rows are deleted a day later.
alter table nodes
  add column version text,
  add column hostname text,
  add column pid integer,
  -- device connections held, as of the last heartbeat
  add column connections integer not null default 0,
  add column gone_at timestamptz;

-- Which connection of a device is the current one: a connection's end clears the device's
-- connection only if it is still this one, so a device that connected again (to this process or
-- another) before its old connection's end was recorded stays online.
alter table devices add column connection_id text;

-- Subscriptions to broadcast topics (topics/<name>) of connected devices, of every session kind
-- and QoS, written by the process holding the connection before its SUBACK. A topic message
-- sent through any process counts these (with the persistent sessions' mqtt_subscriptions), so
-- a subscription made on one process reaches messages sent through another. A row counts only
-- while devices.connected_node is the node that wrote it: a device that moved or went away
-- leaves nothing that could be matched.
create table live_subscriptions (
  device_id text not null,
  topic text not null,
  node_id text not null,
  primary key (device_id, topic)
);
create index live_subscriptions_topic on live_subscriptions (topic);
