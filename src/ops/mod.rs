//! Operating the proxy: metrics and logs, per-request traces, the clock, and redaction.

pub mod clock;
pub mod handles;
pub mod params;
pub mod redact;
pub mod telemetry;
pub mod trace;
