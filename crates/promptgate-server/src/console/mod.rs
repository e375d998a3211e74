//! The web console at `/console`: server-rendered assets embedded in the binary, signed in with
//! a client id and secret, driving the same API as every other client (work in progress).

use axum::Router;

use crate::state::AppState;

/// The console's routes, merged into the gateway's router.
pub fn router() -> Router<AppState> {
    Router::new()
}
