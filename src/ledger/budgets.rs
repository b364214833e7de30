//! Budgets: limits per user and per API key (being written).
