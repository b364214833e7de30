//! The hyper server and everything a request passes before the engine.

pub mod admission;
pub mod auth;
pub mod conn;
pub mod intake;
pub mod json_cost;
pub mod memory;
pub mod reload;
pub mod responses;
pub mod router;
pub mod server;
pub mod shield;
