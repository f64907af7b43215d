//! The dashboard: the page (`GET /`, embedded in the binary), its data
//! (`GET /dashboard/state`) and its live feed (`GET /dashboard/events`, server-sent events
//! named `state`, each the whole state, at most every [`MIN_INTERVAL`]).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::StreamExt;
use tokio_stream::wrappers::WatchStream;

use super::{STREAMS, Shared};
use crate::problem::Problem;
use crate::view::View;

/// The page.
const PAGE: &str = include_str!("../../assets/dashboard.html");

/// Smallest time between two events of one stream.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

pub(super) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

pub(super) async fn state(State(s): State<Shared>) -> Json<View> {
    Json(s.lock().view().clone())
}

pub(super) async fn events(
    State(s): State<Shared>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("at most {STREAMS} dashboards at once"),
        ));
    };
    let rx = s.changed.subscribe();
    let stream = WatchStream::new(rx).then(move |_| {
        let s = s.clone();
        // The stream owns its slot.
        let _slot = &permit;
        async move {
            // Coalesces bursts: whatever changed meanwhile goes out in the next event.
            tokio::time::sleep(MIN_INTERVAL).await;
            Ok(Event::default().event("state").data(&*s.view_json()))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
