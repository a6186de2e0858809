//! Query routing: routers over the frozen backbone's hidden state of the query
//! and the routing metrics used to compare them.

pub mod metrics;
pub mod mix;
pub mod name;
pub mod router;

pub use metrics::{ClassStats, RoutingReport};
pub use mix::{routed_scores, RoutingMode};
pub use name::{RouterName, RoutingPolicy};
pub use router::{argmax, BackboneRef, Router, RouterKind, RouterTrainConfig, TrainedRouter};
