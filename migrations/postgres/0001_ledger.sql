-- Rosetta ledger, version 1 (PostgreSQL). Applied once by sqlx's migrator, recorded in
-- _sqlx_migrations with a checksum: never edit an applied migration, add a new version.

-- One row per finished API call (ledger::Record).
CREATE TABLE ledger (
    id                TEXT    PRIMARY KEY,
    at_ms             BIGINT  NOT NULL,
    day               TEXT    NOT NULL,
    request_id        TEXT    NOT NULL,
    user_id           TEXT,
    key_name          TEXT,
    mapping           TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    stream            BOOLEAN NOT NULL,
    status            TEXT    NOT NULL,
    http_status       INTEGER NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    cached_tokens     BIGINT  NOT NULL,
    cost_nano         BIGINT  NOT NULL,
    duration_ms       BIGINT  NOT NULL,
    error             TEXT,
    hold_id           TEXT
);
-- Reports select a time range; per-user and per-key look-ups select one subject's range.
CREATE INDEX ledger_at_ms ON ledger (at_ms);
CREATE INDEX ledger_user_at_ms ON ledger (user_id, at_ms);
CREATE INDEX ledger_key_at_ms ON ledger (key_name, at_ms);

-- Settled spending per budget subject (user:NAME, key:NAME) and period (day:..., month:...).
CREATE TABLE budget_usage (
    subject    TEXT   NOT NULL,
    period     TEXT   NOT NULL,
    spent_nano BIGINT NOT NULL DEFAULT 0,
    requests   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, period)
);

-- Budget holds of calls in flight, removed when their record is written.
CREATE TABLE budget_holds (
    hold_id    TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    period     TEXT   NOT NULL,
    cost_nano  BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (hold_id, subject, period)
);
CREATE INDEX budget_holds_live ON budget_holds (subject, period, expires_ms);
CREATE INDEX budget_holds_expires ON budget_holds (expires_ms);
