//! Prometheus metrics: requests by route and status, latency by route, library gauges.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    images: Gauge,
    indexing: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("clipsight");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Latency = Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        let images = Gauge::default();
        let indexing = Gauge::default();
        registry.register("http_requests", "HTTP requests answered, by route pattern and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer, by route pattern", latency.clone());
        registry.register("images", "Images in the library", images.clone());
        registry.register("indexing", "1 while an indexing job is queued or running", indexing.clone());
        Self { registry, requests, latency, images, indexing }
    }
}

impl Metrics {
    /// Counts one answered request. `route` is the matched pattern (bounded cardinality).
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { method: method.to_string(), route: route.to_string(), status }).inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_string() }).observe(seconds);
    }

    /// The text exposition format, with the gauges set to `images` and `indexing`.
    pub fn render(&self, images: usize, indexing: bool) -> String {
        self.images.set(images as i64);
        self.indexing.set(i64::from(indexing));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
