-- The journal's tables, as forward-only migrations: the statements under "-- migration N" bring a
-- journal from schema version N-1 to N (PRAGMA user_version). A released migration never changes;
-- a new one goes at the end. Journals on disk at any earlier version are brought forward on open.

-- migration 1
CREATE TABLE runs (
    run_id        TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('apply', 'rollback')),
    plan_digest   TEXT NOT NULL,
    plan_path     TEXT,
    target_name   TEXT NOT NULL,
    parent_run_id TEXT REFERENCES runs (run_id),
    state         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX runs_by_digest ON runs (plan_digest, created_at);
CREATE TABLE apps (
    run_id                  TEXT NOT NULL REFERENCES runs (run_id),
    app_id                  TEXT NOT NULL,
    app_name                TEXT NOT NULL,
    tenant_id               TEXT NOT NULL,
    tenant_name             TEXT NOT NULL,
    subscription_id         TEXT NOT NULL,
    wave                    INTEGER,
    position                INTEGER NOT NULL,
    state                   TEXT NOT NULL,
    attempts                INTEGER NOT NULL DEFAULT 0,
    operation_url           TEXT,
    resume_token            TEXT,
    before_definition_id    TEXT,
    before_plan             TEXT,
    before_not_actions      TEXT,
    before_not_data_actions TEXT,
    before_had_deny         INTEGER,
    after_fingerprint       TEXT,
    error_code              TEXT,
    error_message           TEXT,
    request_id              TEXT,
    started_at              TEXT,
    finished_at             TEXT,
    updated_at              TEXT NOT NULL,
    PRIMARY KEY (run_id, app_id)
);
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    tenant_id       TEXT,
    subscription_id TEXT,
    app_id          TEXT,
    state           TEXT NOT NULL,
    attempt         INTEGER,
    request_id      TEXT,
    operation_url   TEXT,
    error_code      TEXT,
    error_message   TEXT,
    message         TEXT
);
CREATE INDEX events_by_run ON events (run_id, seq);

-- migration 2
-- The plan's wave names ("canary", ...), so that status and its page name waves without reading
-- (and digest-checking) the whole plan file again. Runs journaled before this have none here.
CREATE TABLE waves (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    wave   INTEGER NOT NULL,
    name   TEXT NOT NULL,
    PRIMARY KEY (run_id, wave)
);
