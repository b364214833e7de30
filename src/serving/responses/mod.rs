//! The Responses API's serving side: one turn, and the stored-response routes.

pub mod routes;
pub mod turn;
