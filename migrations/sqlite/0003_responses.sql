-- Rosetta ledger, version 3 (SQLite): stored Responses (`POST /v1/responses` with `store`),
-- kept beside the ledger so that replicas sharing one database share them too
-- (`ledger::responses`). Each row is one response, readable by its owner until `expires_ms`
-- and purged after it.
CREATE TABLE responses (
    id          TEXT   PRIMARY KEY,
    -- Who may read or delete it: the inbound key's name, the user, or '' (opaque).
    owner       TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    -- The Response object, JSON.
    response    TEXT   NOT NULL,
    -- This request's input items, a JSON array (GET /v1/responses/{id}/input_items).
    input_items TEXT   NOT NULL,
    -- The whole conversation up to and including this response's output, a JSON array:
    -- what a request naming it as previous_response_id continues, in one read.
    history     TEXT   NOT NULL
);
-- The purge deletes what expired.
CREATE INDEX responses_expires ON responses (expires_ms);
