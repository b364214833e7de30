//! Operating the proxy: metrics and logs, per-request traces, the clock, redaction, and JSON
//! written as bytes.

pub mod clock;
pub mod handles;
pub mod json;
pub mod params;
pub mod redact;
pub mod telemetry;
pub mod trace;
