-- The notification registry's tables in the journal's file, as forward-only migrations: the
-- statements under "-- migration N" bring the registry from version N-1 to N (kept in
-- notification_meta, key 'schema'; the journal's own version is PRAGMA user_version).

-- migration 1
CREATE TABLE IF NOT EXISTS notification_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notification_events (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    app_key            TEXT NOT NULL,
    app_id             TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    provisioning_state TEXT NOT NULL,
    event_time         TEXT NOT NULL,
    received_at        TEXT NOT NULL,
    body               TEXT NOT NULL,
    confirm_outcome    TEXT,
    confirm_detail     TEXT,
    confirmed_at       TEXT,
    UNIQUE (app_key, event_type, provisioning_state, event_time)
);
CREATE INDEX IF NOT EXISTS notification_events_by_app ON notification_events (app_key, event_time);
CREATE TABLE IF NOT EXISTS notification_instances (
    app_key          TEXT PRIMARY KEY,
    app_id           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    definition_id    TEXT,
    plan             TEXT,
    version_time     TEXT,
    tenant_id        TEXT,
    last_event_type  TEXT NOT NULL,
    last_state       TEXT NOT NULL,
    last_event_time  TEXT NOT NULL,
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    deleted          INTEGER NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    events           INTEGER NOT NULL
);
