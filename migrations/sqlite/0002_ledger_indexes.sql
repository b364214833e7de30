-- Rosetta ledger, version 2 (SQLite): drops the ledger's indexes on (user_id, at_ms) and
-- (key_name, at_ms). No query of Rosetta uses them (reports select a time range, with
-- ledger_at_ms; budgets have tables of their own), and every insert paid for both (on SQLite,
-- about a third of the time of writing a record). IF EXISTS: an operator may have dropped them.
DROP INDEX IF EXISTS ledger_user_at_ms;
DROP INDEX IF EXISTS ledger_key_at_ms;
