//! Placeholder until the artifact routes land.
use crate::state::AppState;
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
}
