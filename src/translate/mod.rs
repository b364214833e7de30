//! The engine of one call: prepare the upstream request, run it, translate the answer.

pub mod body;
pub mod count_tokens;
pub mod eventstream;
pub mod fidelity;
pub mod framing;
pub mod golden;
pub mod messages;
pub mod proxy;
pub mod request;
pub mod responses;
pub mod rewrite;
pub mod send;
pub mod stop_trim;
