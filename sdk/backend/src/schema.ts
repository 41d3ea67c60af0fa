// Generated from openapi.yaml by `npm run sdk:types` (sdk/backend/scripts/schemaTypes.ts): do not edit.
// test/sdk-backend-types.test.ts fails when this file differs from what the spec generates.
/* eslint-disable */
export interface paths {
    "/v1/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The delivery log, newest first
         * @description One row per message and target device, newest first (by accept time; the messages of one
         *     batch, accepted together, last item first), with the message's title and priority.
         *     Keyset-paginated: pass `nextCursor` as `cursor` to get the
         *     next page; a page reads about `limit` index entries however large the log is. Filters
         *     combine with AND.
         */
        get: operations["listDeliveries"];
        put?: never;
        /**
         * Send a notification to a user, a list of users or a topic
         * @description **202 means the message is committed to Postgres, together with one queue entry per
         *     target device, before this answer is sent: it will reach every one of those devices
         *     before it expires**, even if this server restarts or crashes in between (delivery is
         *     at-least-once; the message `id` is the dedupe key on the device). Per device, messages
         *     arrive in the order they were accepted.
         *
         *     Who receives it (`recipients` counts these devices):
         *     * `{"user": id}` / `{"users": [ids]}`: every device holding a persistent MQTT session
         *       (`clean=false`) of those users at this moment, online or not, plus clean-session
         *       devices of those users online at this moment. A device that first connects later does
         *       not get this message. Duplicate user ids count once.
         *     * `{"topic": name}`: every device subscribed to `topics/{name}` at this moment (queued
         *       for persistent sessions); it is delivered on that topic with `"topic": name` in the
         *       payload.
         *
         *     `recipients: 0` is not an error: the message is stored (and visible with
         *     `GET /v1/messages/{id}`) but no device will get it.
         *
         *     The JSON a device receives (`id`, `title`, `body`, `data`, `priority`, `collapseKey`,
         *     `sentAt`, `expiresAt`, `topic`) must fit in 4096 bytes, or the answer is 413 with
         *     `size` and `limit`.
         */
        post: operations["sendMessage"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Send up to 500 notifications in one request
         * @description Each item is a `POST /v1/messages` body, with the same rules and the same meaning of
         *     `recipients`. **The batch is all or nothing**: it is validated as a whole (every problem
         *     of every item is reported at once, named like `messages[3].to.user`), and the 202 comes
         *     after one transaction has committed every message with its per-device queue entries.
         *     Anything else means none of them was stored.
         *
         *     Messages of one batch are accepted in array order: a device that gets several of them
         *     gets them in that order, and a later item's `collapseKey` replaces an earlier one's.
         *
         *     Use it when a backend has many different messages to send at once (one per user, say):
         *     one request carries what would otherwise be hundreds, which is far cheaper for both
         *     sides. For the same message to many users, one `POST /v1/messages` with
         *     `{"users": [...]}` is simpler.
         *
         *     Limits: 1 to 500 messages, at most 10,000 user ids listed in `to.users` across the batch,
         *     topic messages queued for at most 100,000 devices together (400 otherwise: send messages
         *     to large topics in smaller batches or on their own), a body of at most 2 MiB, and each
         *     message's device JSON within 4096 bytes (413 naming the item in `field`). An
         *     `Idempotency-Key` covers the whole batch.
         */
        post: operations["sendMessages"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id from the 202 answer (a UUID). Anything else is answered 404. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        /** A message and its delivery to each target device */
        get: operations["getMessage"];
        put?: never;
        post?: never;
        /**
         * Revoke a message on every device that has not received it
         * @description Deliveries still `queued` or `sent` (not yet acknowledged) become `revoked` and are
         *     never sent again; devices that already acknowledged it keep it. Revoking twice is
         *     harmless (`revoked: 0` the second time).
         */
        delete: operations["revokeMessage"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tokens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Issue a device token (JWT) for a user
         * @description Signs a token with the server's device-token key (`sub` = the user, `exp` = now +
         *     `ttl`), so a backend need not sign tokens itself. The app passes it as the MQTT
         *     CONNECT password; the connection is closed when it expires. A server configured with
         *     only `JWT_PUBLIC_KEY` cannot sign (501).
         */
        post: operations["createDeviceToken"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{user}/devices": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The devices of a user
         * @description Every device (MQTT client id) that connected with a token of this user, most recently
         *     seen first. An unknown user has no devices (200 with `[]`).
         */
        get: operations["listUserDevices"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/devices/{deviceId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * End a device's session and revoke its queue
         * @description The device stops being a target of new messages while offline (its session is no
         *     longer persistent), every delivery still `queued` or `sent` to it becomes `revoked`,
         *     and its connection to this server, if any, is closed. It may connect again later and
         *     starts a new session then.
         */
        delete: operations["endDeviceSession"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/api-keys": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List API keys, revoked ones included
         * @description Newest first. Secrets are never shown again; `prefix` tells keys apart.
         */
        get: operations["listApiKeys"];
        put?: never;
        /**
         * Create an API key
         * @description The answer holds the key itself (`key`); it is shown only this once and stored as a hash.
         */
        post: operations["createApiKey"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/api-keys/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Revoke an API key
         * @description The key stops working (within 5 seconds on other servers). Revoking twice is harmless; the first revocation time is kept.
         */
        delete: operations["revokeApiKey"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List webhook endpoints
         * @description Newest first, disabled ones included. Secrets are never shown again.
         */
        get: operations["listWebhooks"];
        put?: never;
        /**
         * Register a webhook endpoint
         * @description Herald POSTs the events the endpoint wants to `url`, many per request, signed the
         *     Standard Webhooks way (see the `deliveryEvents` webhook below and README "Webhooks").
         *     The answer holds the signing secret (`secret`); it is shown only this once.
         */
        post: operations["createWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
            };
            cookie?: never;
        };
        /** Read a webhook endpoint and how its sending goes */
        get: operations["getWebhook"];
        put?: never;
        post?: never;
        /**
         * Remove a webhook endpoint
         * @description Nothing more is sent to it; its pending and failed deliveries are dropped with it.
         */
        delete: operations["deleteWebhook"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/enable": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
            };
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Enable a disabled webhook endpoint again
         * @description Sending resumes where it stopped: the events recorded while it was disabled (kept up to
         *     3 days) follow, in order. The batch that failed is not resent; replay it for that.
         *     Enabling an enabled endpoint changes nothing.
         */
        post: operations["enableWebhook"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
            };
            cookie?: never;
        };
        /**
         * The endpoint's deliveries (batches of events), newest first, with their last answer
         * @description The last 100; `failed` ones are kept until replayed or the endpoint is removed, delivered ones for 3 days.
         */
        get: operations["listWebhookDeliveries"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries/{deliveryId}/replay": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
                /** @description A delivery's id (its `webhook-id`). */
                deliveryId: string;
            };
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Send a failed (or waiting) delivery again now
         * @description The same events with the same `webhook-id`, signed anew, with a fresh retry window. A
         *     delivered one cannot be replayed (404).
         */
        post: operations["replayWebhookDelivery"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness: the process answers */
        get: operations["health"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness: database reachable, migrations applied, broker listening, not shutting down */
        get: operations["ready"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export interface webhooks {
    deliveryEvents: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * What Herald POSTs to a registered endpoint
         * @description One POST carries up to 1,000 events, in the order they happened. Headers, per
         *     [Standard Webhooks](https://www.standardwebhooks.com): `webhook-id` (the delivery's id,
         *     the same on every retry of it), `webhook-timestamp` (Unix seconds of this attempt) and
         *     `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under
         *     the secret's bytes). Verify it with a Standard Webhooks library before trusting the body.
         *     Any 2xx answer within 10 seconds delivers it; anything else (another status, no answer, a
         *     redirect) is retried with exponential backoff for up to 24 hours, after which the
         *     endpoint is disabled. Delivery is at least once: dedupe by each event's `id`.
         */
        post: operations["receiveDeliveryEvents"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export interface components {
    schemas: {
        /**
         * @description A user id: one MQTT topic level of 1 to 128 characters, without "/", "+", "#", control characters or a leading "$".
         * @example alice
         */
        UserId: string;
        /**
         * @description A broadcast topic name (devices subscribe to `topics/{name}`); same rules as a user id.
         * @example news
         */
        TopicName: string;
        /**
         * Format: date-time
         * @example 2026-01-31T12:00:00.000Z
         */
        Timestamp: string;
        /** Format: date-time */
        NullableTimestamp: string | null;
        /** @description Exactly one of `user`, `users` or `topic`. */
        Target: {
            user: components["schemas"]["UserId"];
        } | {
            /** @description 1 to 1000 user ids; duplicates count once. */
            users: components["schemas"]["UserId"][];
        } | {
            topic: components["schemas"]["TopicName"];
        };
        /**
         * @description `high` asks the app to show it at once; Herald delivers both the same way.
         * @enum {string}
         */
        Priority: "normal" | "high";
        /** @description At least one of `title`, `body` or `data` must be given. */
        SendRequest: {
            to: components["schemas"]["Target"];
            /** @description Shown as the notification's title. null is the same as absent. */
            title?: string | null;
            /** @description The notification's text. null is the same as absent. */
            body?: string | null;
            /**
             * @description Any JSON object, handed to the app as is, nesting objects and arrays at most 32
             *     levels deep (`data` itself is level 1), with keys and strings of valid Unicode
             *     without U+0000 (400 naming the path, e.g. `data.a.b` or `messages[3].data.list[0]`).
             *     null is the same as absent.
             */
            data?: Record<string, unknown> | null;
            /**
             * @description Seconds the message waits for devices that are offline (default and maximum
             *     2419200 = 28 days). After that, undelivered copies become `expired` and are never
             *     sent. `0` means only devices online right now: it is sent to them at once and never
             *     stored for later.
             * @default 2419200
             */
            ttl?: number;
            /** @default normal */
            priority?: components["schemas"]["Priority"];
            /**
             * @description A device holds at most one undelivered message per key: when this message is
             *     queued for a device that still holds an undelivered (`queued` or `sent`) message
             *     with the same key, that older one becomes `replaced` and is never sent. Messages
             *     already delivered are not affected.
             */
            collapseKey?: string | null;
        };
        SendResult: {
            /**
             * Format: uuid
             * @description The message id; devices receive it as `id` (their dedupe key).
             */
            id: string;
            /** @description The number of devices the message was queued or sent to (see the operation's description). 0 means no device will get it. */
            recipients: number;
        };
        SendBatchRequest: {
            messages: components["schemas"]["SendRequest"][];
        };
        SendBatchResult: {
            /** @description One result per item of the request, in the same order. */
            messages: components["schemas"]["SendResult"][];
        };
        /**
         * @description * `queued`: waiting for the device (offline, or not yet sent).
         *     * `sent`: published to the device, not yet acknowledged.
         *     * `delivered`: the device acknowledged it (MQTT PUBACK, or a receipt).
         *     * `expired`: its TTL ended before delivery (for a clean-session device: the connection it was meant for ended first). Read from the moment the TTL ends; a `ttl: 0` message in flight to an online device reads `sent` until acknowledged, or expired 30 s on.
         *     * `replaced`: a newer message with the same `collapseKey` took its place.
         *     * `revoked`: revoked by `DELETE /v1/messages/{id}` or `DELETE /v1/devices/{deviceId}`, or dropped when the device started a clean session.
         * @enum {string}
         */
        DeliveryStatus: "queued" | "sent" | "delivered" | "expired" | "replaced" | "revoked";
        /**
         * @description Why a delivery is `expired`, `replaced` or `revoked`; null for the other statuses.
         *     * `ttl-ended`: its TTL passed before it was delivered.
         *     * `connection-ended`: a `ttl: 0` message whose connection ended before it was acknowledged.
         *     * `clean-session-ended`: the clean session it was queued for ended.
         *     * `collapsed`: a newer message with the same `collapseKey` (`replacedBy`) took its place before it was written to the device. A delivery already written is never replaced.
         *     * `message-revoked`, `admin-message-revoked`: `DELETE /v1/messages/{id}`, or the same from the admin UI.
         *     * `device-removed`, `admin-device-removed`: `DELETE /v1/devices/{deviceId}`, or the same from the admin UI.
         *     * `session-discarded`: the device connected with a clean session, discarding its persistent one.
         * @enum {string|null}
         */
        DeliveryReason: "ttl-ended" | "connection-ended" | "clean-session-ended" | "collapsed" | "message-revoked" | "admin-message-revoked" | "device-removed" | "admin-device-removed" | "session-discarded" | null;
        /** @description A message's delivery to one device. `displayedAt`, `openedAt` and `dismissedAt` come from receipts the app publishes. */
        Delivery: {
            deviceId: string;
            userId: string;
            status: components["schemas"]["DeliveryStatus"];
            reason: components["schemas"]["DeliveryReason"];
            /**
             * Format: uuid
             * @description For `replaced`, the message that took its place.
             */
            replacedBy: string | null;
            queuedAt: components["schemas"]["Timestamp"];
            sentAt: components["schemas"]["NullableTimestamp"];
            deliveredAt: components["schemas"]["NullableTimestamp"];
            displayedAt: components["schemas"]["NullableTimestamp"];
            openedAt: components["schemas"]["NullableTimestamp"];
            dismissedAt: components["schemas"]["NullableTimestamp"];
        };
        Message: {
            /** Format: uuid */
            id: string;
            /** @description The target as accepted (a list of users without duplicates). */
            to: components["schemas"]["Target"];
            title: string | null;
            body: string | null;
            data: Record<string, unknown> | null;
            priority: components["schemas"]["Priority"];
            collapseKey: string | null;
            ttl: number;
            /** @description When it was accepted (the `sentAt` devices receive). */
            sentAt: components["schemas"]["Timestamp"];
            expiresAt: components["schemas"]["Timestamp"];
            revokedAt: components["schemas"]["NullableTimestamp"];
            recipients: number;
            /** @description The name of the API key that sent it. */
            apiKey: string | null;
            /** @description One row per target device, by user then device. */
            deliveries: components["schemas"]["Delivery"][];
        };
        /** @description A delivery with its message's id, title, priority and expiry. */
        DeliveryLogEntry: {
            /** Format: uuid */
            messageId: string;
            title: string | null;
            priority: components["schemas"]["Priority"];
            expiresAt: components["schemas"]["Timestamp"];
            deviceId: string;
            userId: string;
            status: components["schemas"]["DeliveryStatus"];
            reason: components["schemas"]["DeliveryReason"];
            /**
             * Format: uuid
             * @description For `replaced`, the message that took its place.
             */
            replacedBy: string | null;
            queuedAt: components["schemas"]["Timestamp"];
            sentAt: components["schemas"]["NullableTimestamp"];
            deliveredAt: components["schemas"]["NullableTimestamp"];
            displayedAt: components["schemas"]["NullableTimestamp"];
            openedAt: components["schemas"]["NullableTimestamp"];
            dismissedAt: components["schemas"]["NullableTimestamp"];
        };
        DeliveryLogPage: {
            items: components["schemas"]["DeliveryLogEntry"][];
            /** @description Pass as `cursor` for the next (older) page. null when this page holds fewer than `limit` rows; a full last page is followed by an empty one. */
            nextCursor: string | null;
        };
        RevokeResult: {
            /** Format: uuid */
            id: string;
            /** @description How many deliveries were revoked by this call (those not yet acknowledged). */
            revoked: number;
        };
        TokenRequest: {
            user: components["schemas"]["UserId"];
            /**
             * @description Token lifetime in seconds (default 1 day, at most 30 days).
             * @default 86400
             */
            ttl?: number;
        };
        Token: {
            /** @description A JWT with `sub` (the user) and `exp`; the MQTT CONNECT password. */
            token: string;
            expiresAt: components["schemas"]["Timestamp"];
        };
        Device: {
            /** @description The MQTT client id. */
            deviceId: string;
            /** @description It holds a persistent session (`clean=false`), so messages are queued for it while offline. */
            persistent: boolean;
            /** @description Connected to a live Herald server now. */
            online: boolean;
            connectedAt: components["schemas"]["NullableTimestamp"];
            lastSeenAt: components["schemas"]["NullableTimestamp"];
            /** @description Deliveries waiting for it (queued or sent, not expired). */
            pending: number;
        };
        DeviceEnded: {
            deviceId: string;
            /** @description Deliveries revoked (those not yet acknowledged). */
            revoked: number;
            /** @description It was connected to the server that answered, and that connection was closed. */
            disconnected: boolean;
        };
        ApiKeyRequest: {
            /** @description Who uses the key (1 to 100 characters, not only spaces; trimmed). */
            name: string;
        };
        ApiKey: {
            /** Format: uuid */
            id: string;
            name: string;
            /** @description The key's first 10 characters, to tell keys apart. */
            prefix: string;
            createdAt: components["schemas"]["Timestamp"];
            /** @description Last use, recorded within about 30 seconds. */
            lastUsedAt: components["schemas"]["NullableTimestamp"];
            revokedAt: components["schemas"]["NullableTimestamp"];
        };
        NewApiKey: {
            /** Format: uuid */
            id: string;
            name: string;
            prefix: string;
            createdAt: components["schemas"]["Timestamp"];
            lastUsedAt: components["schemas"]["NullableTimestamp"];
            revokedAt: components["schemas"]["NullableTimestamp"];
            /** @description The secret; shown only in this answer. Send it as `Authorization: Bearer <key>`. */
            key: string;
        };
        /**
         * @description `message.*`: one device's delivery of a message reached that state (`delivered`: the
         *     device acknowledged it; `displayed`/`opened`/`dismissed`: the device's receipt;
         *     `expired`, `replaced`, `revoked`: it ended undelivered, `reason` says why).
         *     `device.online`/`device.offline`: a device's connection began or ended (a move from one
         *     Herald process to another is neither).
         * @enum {string}
         */
        WebhookEventType: "message.delivered" | "message.displayed" | "message.opened" | "message.dismissed" | "message.expired" | "message.replaced" | "message.revoked" | "device.online" | "device.offline";
        WebhookRequest: {
            /** @description Where to POST, http or https, without user or password in it. */
            url: string;
            events: components["schemas"]["WebhookEventType"][];
            description?: string | null;
        };
        WebhookEndpoint: {
            /** Format: uuid */
            id: string;
            url: string;
            description: string | null;
            events: components["schemas"]["WebhookEventType"][];
            /**
             * @description `disabled` after failing for 24 hours: nothing is sent until it is enabled again; its events are kept for up to 3 days meanwhile.
             * @enum {string}
             */
            status: "enabled" | "disabled";
            createdAt: components["schemas"]["Timestamp"];
            disabledAt: components["schemas"]["NullableTimestamp"];
            /** @description Why, with the last attempt's error. */
            disabledReason: string | null;
            /** @description The first failed attempt of the delivery it is retrying now; null while healthy. */
            failingSince: components["schemas"]["NullableTimestamp"];
            lastDeliveredAt: components["schemas"]["NullableTimestamp"];
            /** @description Deliveries waiting to be sent (new or retried). */
            pendingDeliveries: number;
            /** @description Deliveries that failed for the whole retry window; each can be replayed. */
            failedDeliveries: number;
        };
        NewWebhookEndpoint: {
            /** Format: uuid */
            id: string;
            url: string;
            description: string | null;
            events: components["schemas"]["WebhookEventType"][];
            /** @enum {string} */
            status: "enabled" | "disabled";
            createdAt: components["schemas"]["Timestamp"];
            disabledAt: components["schemas"]["NullableTimestamp"];
            disabledReason: string | null;
            failingSince: components["schemas"]["NullableTimestamp"];
            lastDeliveredAt: components["schemas"]["NullableTimestamp"];
            pendingDeliveries: number;
            failedDeliveries: number;
            /** @description The signing secret, as Standard Webhooks libraries take it; shown only in this answer. */
            secret: string;
        };
        WebhookEndpointList: {
            webhooks: components["schemas"]["WebhookEndpoint"][];
        };
        WebhookDelivery: {
            /** @description The `webhook-id` it is sent with, on every attempt. */
            id: string;
            /** @enum {string} */
            status: "pending" | "delivered" | "failed";
            createdAt: components["schemas"]["Timestamp"];
            /** @description How many events it carries. */
            events: number;
            attempts: number;
            /** @description When it is tried next; null unless pending. */
            nextAttemptAt: components["schemas"]["NullableTimestamp"];
            failingSince: components["schemas"]["NullableTimestamp"];
            lastAttemptAt: components["schemas"]["NullableTimestamp"];
            /** @description The HTTP status of the last answer; null when there was none (refused, timed out). */
            lastStatus: number | null;
            /** @description Why the last attempt failed (`HTTP 500`, `ECONNREFUSED`, `no answer within 10000 ms`). */
            lastError: string | null;
            /** @description The first 1,000 characters of the last answer's body (at most 64 KiB of it is read). */
            lastResponse: string | null;
            deliveredAt: components["schemas"]["NullableTimestamp"];
        };
        WebhookDeliveryList: {
            deliveries: components["schemas"]["WebhookDelivery"][];
        };
        WebhookReplay: {
            id: string;
            /** @constant */
            status: "pending";
        };
        WebhookEventData: {
            /**
             * Format: uuid
             * @description The message, for `message.*` events; null for `device.*`.
             */
            messageId: string | null;
            deviceId: string;
            userId: components["schemas"]["UserId"];
            /** @description For `message.expired`, `message.replaced` and `message.revoked`; null otherwise. */
            reason: components["schemas"]["DeliveryReason"];
            /**
             * Format: uuid
             * @description For `message.replaced`, the message that took its place.
             */
            replacedBy: string | null;
        };
        WebhookEvent: {
            /** @description Unique and stable; an event delivered twice has the same id. */
            id: string;
            type: components["schemas"]["WebhookEventType"];
            /** @description When it happened (for `message.expired` with reason `ttl-ended`, the message's expiry). */
            timestamp: components["schemas"]["Timestamp"];
            data: components["schemas"]["WebhookEventData"];
        };
        WebhookPayload: {
            /** @description When the delivery was formed (the same on every retry). */
            timestamp: components["schemas"]["Timestamp"];
            events: components["schemas"]["WebhookEvent"][];
        };
        Health: {
            /** @constant */
            status: "ok";
        };
        Check: {
            ok: boolean;
            detail?: string;
        };
        Readiness: {
            /** @enum {string} */
            status: "ready" | "not ready";
            checks: {
                database: components["schemas"]["Check"];
                migrations: components["schemas"]["Check"];
                broker: components["schemas"]["Check"];
                accepting: components["schemas"]["Check"];
            };
        };
        /**
         * @description Stable error codes; clients branch on these.
         * @enum {string}
         */
        ProblemCode: "invalid-json" | "invalid-request" | "unauthorized" | "forbidden" | "not-found" | "method-not-allowed" | "unsupported-media-type" | "payload-too-large" | "idempotency-key-reused" | "token-signing-unavailable" | "too-many-requests" | "database-unavailable" | "shutting-down" | "internal";
        FieldError: {
            /** @description The JSON path of the wrong field (`to.users[3]`), `(body)` for the body as a whole, or a header or query parameter name. */
            field: string;
            message: string;
        };
        /** @description An RFC 9457 problem document. */
        Problem: {
            /**
             * Format: uri
             * @description `https://herald.dev/problems/{code}`.
             */
            type: string;
            code: components["schemas"]["ProblemCode"];
            /** @description Fixed per code. */
            title: string;
            /** @description The HTTP status, repeated. */
            status: number;
            /** @description What was wrong and how to fix it, for a developer. */
            detail: string;
            /** @description With `invalid-request`: every wrong field. */
            errors?: components["schemas"]["FieldError"][];
            /** @description With `payload-too-large` for a message: the size in bytes of the JSON a device would receive. */
            size?: number;
            /** @description With `payload-too-large` for a message: the limit (4096). */
            limit?: number;
            /** @description With `payload-too-large` for a message of a batch: which one (`messages[3]`). */
            field?: string;
        };
        BadRequestProblem: {
            /** @enum {unknown} */
            code?: "invalid-request" | "invalid-json";
            /** @constant */
            status?: 400;
        } & components["schemas"]["Problem"];
        UnauthorizedProblem: {
            /** @constant */
            code?: "unauthorized";
            /** @constant */
            status?: 401;
        } & components["schemas"]["Problem"];
        ForbiddenProblem: {
            /** @constant */
            code?: "forbidden";
            /** @constant */
            status?: 403;
        } & components["schemas"]["Problem"];
        NotFoundProblem: {
            /** @constant */
            code?: "not-found";
            /** @constant */
            status?: 404;
        } & components["schemas"]["Problem"];
        PayloadTooLargeProblem: {
            /** @constant */
            code?: "payload-too-large";
            /** @constant */
            status?: 413;
        } & components["schemas"]["Problem"];
        UnsupportedMediaTypeProblem: {
            /** @constant */
            code?: "unsupported-media-type";
            /** @constant */
            status?: 415;
        } & components["schemas"]["Problem"];
        IdempotencyKeyReusedProblem: {
            /** @constant */
            code?: "idempotency-key-reused";
            /** @constant */
            status?: 422;
        } & components["schemas"]["Problem"];
        TooManyRequestsProblem: {
            /** @constant */
            code?: "too-many-requests";
            /** @constant */
            status?: 429;
        } & components["schemas"]["Problem"];
        InternalProblem: {
            /** @constant */
            code?: "internal";
            /** @constant */
            status?: 500;
        } & components["schemas"]["Problem"];
        TokenSigningUnavailableProblem: {
            /** @constant */
            code?: "token-signing-unavailable";
            /** @constant */
            status?: 501;
        } & components["schemas"]["Problem"];
        DatabaseUnavailableProblem: {
            /** @constant */
            code?: "database-unavailable";
            /** @constant */
            status?: 503;
        } & components["schemas"]["Problem"];
        UnavailableProblem: {
            /** @enum {unknown} */
            code?: "database-unavailable" | "shutting-down";
            /** @constant */
            status?: 503;
        } & components["schemas"]["Problem"];
    };
    responses: {
        /** @description The request is invalid (`invalid-request`, with `errors` naming every wrong field) or its body is not JSON (`invalid-json`). */
        BadRequest: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["BadRequestProblem"];
            };
        };
        /** @description Missing, malformed, unknown or revoked API key (code `unauthorized`). */
        Unauthorized: {
            headers: {
                "WWW-Authenticate": string;
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["UnauthorizedProblem"];
            };
        };
        /** @description Missing or wrong admin credentials, an API key where the admin's are needed, or an admin session cookie that is unknown or expired (code `unauthorized`). */
        AdminUnauthorized: {
            headers: {
                /** @description Sent unless the request carried an admin session cookie (and no Authorization header). */
                "WWW-Authenticate"?: string;
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["UnauthorizedProblem"];
            };
        };
        /** @description Too many wrong admin passwords from this client address (HTTP Basic and the admin login form together), or too many checks of it at once, or this server is busy checking other passwords: not checked; retry after `Retry-After` seconds (code `too-many-requests`). */
        TooManyAdminFailures: {
            headers: {
                "Retry-After": components["headers"]["RetryAfter"];
                "WWW-Authenticate": string;
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["TooManyRequestsProblem"];
            };
        };
        /** @description Only with the admin session cookie: a write without the session's `X-Herald-CSRF` token, or from another Origin (code `forbidden`). */
        CsrfRefused: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["ForbiddenProblem"];
            };
        };
        /** @description No such resource (code `not-found`); ids that are not UUIDs where UUIDs are expected get this too. */
        NotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["NotFoundProblem"];
            };
        };
        /** @description The request body exceeds 256 KiB (2 MiB for a batch; refused before it is parsed), or, for a message, the JSON a device would receive exceeds 4096 bytes (then `size` and `limit` say by how much, and in a batch `field` names the item). Code `payload-too-large`. */
        PayloadTooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["PayloadTooLargeProblem"];
            };
        };
        /** @description The body is not `application/json`, or uses an unsupported charset or encoding (code `unsupported-media-type`). */
        UnsupportedMediaType: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["UnsupportedMediaTypeProblem"];
            };
        };
        /** @description An unexpected error; it was logged on the server (code `internal`). */
        Internal: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["InternalProblem"];
            };
        };
        /** @description The database is unreachable; nothing was stored (code `database-unavailable`). */
        Unavailable: {
            headers: {
                "Retry-After": components["headers"]["RetryAfter"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["DatabaseUnavailableProblem"];
            };
        };
        /** @description The database is unreachable (`database-unavailable`; nothing was stored), or this server is shutting down (`shutting-down`; retry, on another instance if there is one). */
        UnavailableOrShuttingDown: {
            headers: {
                "Retry-After": components["headers"]["RetryAfter"];
                [name: string]: unknown;
            };
            content: {
                "application/problem+json": components["schemas"]["UnavailableProblem"];
            };
        };
    };
    parameters: {
        /**
         * @description Makes a retry safe. A repeat with the same key (per API key) and the same body within
         *     24 hours returns the first answer and sends nothing; the same key with a different body
         *     is refused (422). After 24 hours the key is free again.
         */
        IdempotencyKey: string;
        /** @description The endpoint's id (a UUID). Anything else is answered 404. */
        WebhookId: string;
        /** @description The message id from the 202 answer (a UUID). Anything else is answered 404. */
        MessageId: string;
    };
    requestBodies: never;
    headers: {
        /** @description Seconds to wait before retrying. */
        RetryAfter: string;
    };
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    listDeliveries: {
        parameters: {
            query?: {
                /** @description Only deliveries to this user's devices. */
                user?: string;
                /** @description Only deliveries to this device. */
                device?: string;
                /** @description Only deliveries in this status. */
                status?: components["schemas"]["DeliveryStatus"];
                /** @description Only deliveries queued at or after this time (ISO 8601, e.g. `2026-01-31T12:00:00Z`). */
                since?: string;
                /** @description Only deliveries queued before this time (ISO 8601). */
                until?: string;
                /** @description Rows per page. */
                limit?: number;
                /** @description `nextCursor` of the previous page (opaque). */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of the delivery log. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeliveryLogPage"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            500: components["responses"]["Internal"];
            503: components["responses"]["UnavailableOrShuttingDown"];
        };
    };
    sendMessage: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description Makes a retry safe. A repeat with the same key (per API key) and the same body within
                 *     24 hours returns the first answer and sends nothing; the same key with a different body
                 *     is refused (422). After 24 hours the key is free again.
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SendRequest"];
            };
        };
        responses: {
            /**
             * @description Accepted: committed to Postgres with its per-device queue. Also the answer to a
             *     repeated `Idempotency-Key` within 24 hours (the first answer, nothing is sent again).
             */
            202: {
                headers: {
                    /** @description The message's URL, `/v1/messages/{id}`. */
                    Location: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SendResult"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            /** @description The `Idempotency-Key` was used within 24 hours for a request with a different body (code `idempotency-key-reused`). Use a new key for a new message. */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["IdempotencyKeyReusedProblem"];
                };
            };
            500: components["responses"]["Internal"];
            503: components["responses"]["UnavailableOrShuttingDown"];
        };
    };
    sendMessages: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description Makes a retry safe. A repeat with the same key (per API key) and the same body within
                 *     24 hours returns the first answer and sends nothing; the same key with a different body
                 *     is refused (422). After 24 hours the key is free again.
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SendBatchRequest"];
            };
        };
        responses: {
            /**
             * @description Accepted: every message is committed to Postgres with its per-device queue. One
             *     result per item, in order. Also the answer to a repeated `Idempotency-Key` within 24
             *     hours (the first answer, nothing is sent again).
             */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SendBatchResult"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            /** @description The `Idempotency-Key` was used within 24 hours for a request with a different body (code `idempotency-key-reused`). Use a new key for a new batch. */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["IdempotencyKeyReusedProblem"];
                };
            };
            500: components["responses"]["Internal"];
            503: components["responses"]["UnavailableOrShuttingDown"];
        };
    };
    getMessage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id from the 202 answer (a UUID). Anything else is answered 404. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The message as accepted, and one row per target device. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Message"];
                };
            };
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            500: components["responses"]["Internal"];
            503: components["responses"]["UnavailableOrShuttingDown"];
        };
    };
    revokeMessage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The message id from the 202 answer (a UUID). Anything else is answered 404. */
                id: components["parameters"]["MessageId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Revoked. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RevokeResult"];
                };
            };
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            500: components["responses"]["Internal"];
            503: components["responses"]["UnavailableOrShuttingDown"];
        };
    };
    createDeviceToken: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TokenRequest"];
            };
        };
        responses: {
            /** @description The token. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Token"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            500: components["responses"]["Internal"];
            /** @description This server verifies tokens with `JWT_PUBLIC_KEY` and has no `JWT_PRIVATE_KEY` (code `token-signing-unavailable`); sign tokens in your backend. */
            501: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["TokenSigningUnavailableProblem"];
                };
            };
            503: components["responses"]["Unavailable"];
        };
    };
    listUserDevices: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                user: components["schemas"]["UserId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The user's devices. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Device"][];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthorized"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    endDeviceSession: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The device's MQTT client id. */
                deviceId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Ended. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeviceEnded"];
                };
            };
            401: components["responses"]["Unauthorized"];
            404: components["responses"]["NotFound"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    listApiKeys: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The keys. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKey"][];
                };
            };
            401: components["responses"]["AdminUnauthorized"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    createApiKey: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["ApiKeyRequest"];
            };
        };
        responses: {
            /** @description Created. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["NewApiKey"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["AdminUnauthorized"];
            403: components["responses"]["CsrfRefused"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    revokeApiKey: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The key's id (a UUID). Anything else is answered 404. */
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The revoked key. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKey"];
                };
            };
            401: components["responses"]["AdminUnauthorized"];
            403: components["responses"]["CsrfRefused"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    listWebhooks: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The endpoints. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookEndpointList"];
                };
            };
            401: components["responses"]["AdminUnauthorized"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    createWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WebhookRequest"];
            };
        };
        responses: {
            /** @description Registered; events that happen from now on are sent to it. */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["NewWebhookEndpoint"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["AdminUnauthorized"];
            403: components["responses"]["CsrfRefused"];
            413: components["responses"]["PayloadTooLarge"];
            415: components["responses"]["UnsupportedMediaType"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    getWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The endpoint. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookEndpoint"];
                };
            };
            401: components["responses"]["AdminUnauthorized"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    deleteWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["AdminUnauthorized"];
            403: components["responses"]["CsrfRefused"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    enableWebhook: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The endpoint, enabled. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookEndpoint"];
                };
            };
            401: components["responses"]["AdminUnauthorized"];
            403: components["responses"]["CsrfRefused"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    listWebhookDeliveries: {
        parameters: {
            query?: {
                /** @description Only deliveries in this state. */
                status?: "pending" | "delivered" | "failed";
            };
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The deliveries. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookDeliveryList"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["AdminUnauthorized"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    replayWebhookDelivery: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The endpoint's id (a UUID). Anything else is answered 404. */
                id: components["parameters"]["WebhookId"];
                /** @description A delivery's id (its `webhook-id`). */
                deliveryId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Queued; it is sent within a second. */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookReplay"];
                };
            };
            401: components["responses"]["AdminUnauthorized"];
            403: components["responses"]["CsrfRefused"];
            404: components["responses"]["NotFound"];
            429: components["responses"]["TooManyAdminFailures"];
            500: components["responses"]["Internal"];
            503: components["responses"]["Unavailable"];
        };
    };
    health: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Alive. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    ready: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Ready to take work. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
            /** @description Not ready; `checks` says which check failed and why. (A status report, not a problem document.) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
        };
    };
    receiveDeliveryEvents: {
        parameters: {
            query?: never;
            header: {
                "webhook-id": string;
                "webhook-timestamp": string;
                "webhook-signature": string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WebhookPayload"];
            };
        };
        responses: {
            /** @description Any 2xx answer means received. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
}
