//! What `altsock serve` runs above the engine. For now this is the channel
//! pub/sub router and the metrics endpoint; the presence server lands here next.

mod pubsub;

pub use pubsub::PubSubRouter;
