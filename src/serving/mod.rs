//! The hyper server and everything a request passes before the engine.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod conn;
pub mod dispatch;
pub mod health;
pub mod intake;
pub mod json_cost;
pub mod memory;
pub mod models;
pub mod reload;
pub mod reply;
pub mod responses;
pub mod router;
pub mod server;
pub mod shield;
pub mod state;
