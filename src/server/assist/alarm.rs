//! The live-assist service's use of the server's timer thread
//! ([`crate::server::alarm`]): it announces queue changes at most once
//! per [`QUEUE_WINDOW`] per site (a burst of a thousand visitors asking
//! at once sends each console a few queue lists, not a thousand), and the
//! last change of a burst still goes out at the window's end.

use std::time::Duration;

pub(crate) use crate::server::alarm::Alarm;

/// The least time between two queue announcements of one site.
pub const QUEUE_WINDOW: Duration = Duration::from_millis(50);

/// The name of the assist service's alarm thread.
pub const THREAD_NAME: &str = "assist-alarm";
