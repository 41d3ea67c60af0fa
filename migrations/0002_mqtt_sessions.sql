-- aedes' MQTT session state, written by server/broker/pgPersistence.ts.
-- A stored packet is its fields as jsonb (everything but the payload) plus the payload as bytea;
-- payload_is_text remembers that the payload was a string, so it comes back as one.

-- Every subscription, QoS 0 included (a session is restored from them). The broker matches topics
-- against an in-process index loaded from this table, never against the table itself.
create table mqtt_subscriptions (
  -- first-subscribe order, the order aedes gets a client's subscriptions back in
  id bigint generated always as identity primary key,
  client_id text not null,
  topic text not null,
  qos smallint not null check (qos between 0 and 2),
  -- MQTT 5 subscription options; null when the client did not send them (3.1.1)
  rh smallint,
  rap boolean,
  nl boolean,
  subscription_identifier integer,
  unique (client_id, topic)
);
create index mqtt_subscriptions_topic on mqtt_subscriptions (topic);

-- Per-client FIFO of QoS 1/2 packets for persistent sessions. id is the queue order.
-- (broker_id, broker_counter) identifies a packet for outgoingUpdate but is not unique: a broker
-- restarted with the same id counts from 0 again, so only id may key a row.
create table mqtt_outgoing (
  id bigint generated always as identity primary key,
  client_id text not null,
  broker_id text,
  broker_counter bigint,
  -- the MQTT packet identifier, null until the broker assigns one on sending
  message_id integer,
  packet jsonb not null,
  payload bytea,
  payload_is_text boolean not null default false
);
create index mqtt_outgoing_queue on mqtt_outgoing (client_id, id);
create index mqtt_outgoing_message on mqtt_outgoing (client_id, message_id) where message_id is not null;

-- QoS 2 PUBLISHes received from clients, held until their PUBREL.
create table mqtt_incoming (
  client_id text not null,
  message_id integer not null,
  packet jsonb not null,
  payload bytea,
  payload_is_text boolean not null default false,
  primary key (client_id, message_id)
);

-- "C" collation: retained lookups by topic prefix (topic ^@ prefix) can then use the primary key.
create table mqtt_retained (
  topic text collate "C" primary key,
  packet jsonb not null,
  payload bytea not null,
  payload_is_text boolean not null default false
);

-- One will per client; broker_id is the process that holds the client, so that the wills of a
-- dead broker can be found and published by the survivors.
create table mqtt_wills (
  client_id text primary key,
  broker_id text not null,
  packet jsonb not null,
  payload bytea,
  payload_is_text boolean not null default false
);
create index mqtt_wills_broker on mqtt_wills (broker_id);
