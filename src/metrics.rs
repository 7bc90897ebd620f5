//! Prometheus metrics: per-route request counts and latency (actix-web-prom, labelled by
//! route template, never by raw path), plus pool and WebSocket gauges of our own.

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    pub websockets_open: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let pool_connections = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state")
                .namespace("stockroom"),
            &["state"],
        )?;
        let pool_max = IntGauge::with_opts(
            Opts::new("db_pool_max_connections", "Database pool size limit").namespace("stockroom"),
        )?;
        let websockets_open = IntGauge::with_opts(
            Opts::new("websockets_open", "WebSocket connections open now").namespace("stockroom"),
        )?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(websockets_open.clone()))?;
        Ok(Self {
            registry,
            pool_connections,
            pool_max,
            websockets_open,
        })
    }

    /// The request middleware, sharing this registry.
    pub fn http_middleware(&self) -> Result<actix_web_prom::PrometheusMetrics, String> {
        actix_web_prom::PrometheusMetricsBuilder::new("stockroom")
            .registry(self.registry.clone())
            .mask_unmatched_patterns("UNMATCHED")
            .exclude("/metrics")
            .buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .build()
            .map_err(|e| e.to_string())
    }

    /// Renders the text exposition, refreshing the pool gauges first.
    pub fn render(&self, pool: &crate::db::Pool) -> Result<String, String> {
        let state = pool.state();
        self.pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(state.idle_connections));
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(state.connections - state.idle_connections));
        self.pool_max.set(i64::from(pool.max_size()));
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .map_err(|e| e.to_string())
    }
}
