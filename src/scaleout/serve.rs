//! `r2r serve --run RUN`: a small local HTTP rerank service over a trained run. `POST /rerank` takes
//! `{"query": str, "documents": [str], "top_n"?: int}` and answers, in the shape common rerank APIs use,
//! `{"expert": str, "routing": {label: p}, "results": [{"index": i, "relevance_score": s}]}` (best first):
//! the run's LSR picks the expert from the query's hidden state, the expert scores every document.
//! `GET /health` answers `{"status": "ok"}`. Requests are bounded (body bytes, documents); bad JSON, missing
//! fields and oversized requests get 4xx with a message. Worker threads serve requests concurrently.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::{LoadOptions, LoraAdapter, Reranker, ScoreOptions, ScoreRequest};
use crate::routing::TrainedRouter;
use crate::train::checkpoint::{load_published_adapter, RunDir};
use crate::train::TrainConfig;

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_documents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body_bytes: 1 << 20, max_documents: 256 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerankRequest {
    pub query: String,
    pub documents: Vec<String>,
    #[serde(default)]
    pub top_n: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedDocument {
    pub index: usize,
    pub relevance_score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankResponse {
    pub expert: String,
    pub routing: BTreeMap<String, f32>,
    pub results: Vec<RankedDocument>,
}

/// The routed reranker of a run: backbone, LSR, one expert per router label.
pub struct RoutedReranker {
    /// The backbone the run names (resolved).
    pub(crate) base: std::path::PathBuf,
    pub(crate) reranker: Reranker,
    pub(crate) router: TrainedRouter,
    /// One per router label, in the router's order.
    pub(crate) experts: Vec<LoraAdapter>,
}

impl RoutedReranker {
    pub fn load(run_root: &Path) -> Result<Self> {
        let run = RunDir::new(run_root);
        let config = TrainConfig::load(&run.config_path()).with_context(|| format!("{} is not a training run (no readable config.toml)", run_root.display()))?;
        let base = crate::model::default_backbone::resolve(&config.model.path);
        let reranker = Reranker::load(&base, &LoadOptions::default()).with_context(|| format!("loading the run's backbone {}", base.display()))?;
        let router = TrainedRouter::load(&run.router_dir()).with_context(|| format!("{}: no trained router (run `r2r train --only router`)", run_root.display()))?;
        if router.meta.input_dim != reranker.config().hidden_size {
            bail!("the router reads {}-dimensional states, the backbone {} has {}", router.meta.input_dim, base.display(), reranker.config().hidden_size);
        }
        let experts = router
            .meta
            .labels
            .iter()
            .map(|label| load_published_adapter(&run.expert_dir(label), reranker.config(), reranker.device()).with_context(|| format!("the router's label `{label}` has no expert")))
            .collect::<Result<Vec<_>>>()?;
        Ok(RoutedReranker { base, reranker, router, experts })
    }

    /// Routes the query, then scores every document with the chosen expert; results best first.
    pub fn rerank(&self, query: &str, documents: &[String], top_n: Option<usize>) -> Result<RerankResponse> {
        let ids = self.reranker.prompt.encode_query(None, query)?;
        let hidden = self.reranker.final_hidden(&self.reranker.encode_batch(&[ids.as_slice()])?, None)?.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        let probabilities = self.router.probabilities(&hidden)?.remove(0);
        let chosen = crate::routing::argmax(&probabilities);
        let requests: Vec<ScoreRequest> = documents.iter().map(|d| ScoreRequest { instruction: None, query: query.to_string(), document: d.clone() }).collect();
        let scores = if requests.is_empty() { vec![] } else { self.reranker.score(&requests, Some(&self.experts[chosen]), &ScoreOptions::default())? };
        let mut results: Vec<RankedDocument> = scores.iter().enumerate().map(|(index, s)| RankedDocument { index, relevance_score: s.score }).collect();
        results.sort_by(|a, b| b.relevance_score.total_cmp(&a.relevance_score).then(a.index.cmp(&b.index)));
        results.truncate(top_n.unwrap_or(usize::MAX));
        let labels = &self.router.meta.labels;
        Ok(RerankResponse { expert: labels[chosen].clone(), routing: labels.iter().cloned().zip(probabilities).collect(), results })
    }
}

/// An HTTP answer: status and JSON body.
pub type Answer = (u16, serde_json::Value);

fn error(status: u16, message: impl Into<String>) -> Answer {
    (status, serde_json::json!({"error": message.into()}))
}

/// Answers one request (method, path, body) — the service's logic without the socket, for tests.
pub fn answer(model: &RoutedReranker, limits: Limits, method: &str, path: &str, body: &[u8]) -> Answer {
    match (method, path) {
        ("GET", "/health") => (200, serde_json::json!({"status": "ok"})),
        ("POST", "/rerank") => {
            if body.len() > limits.max_body_bytes {
                return error(413, format!("request body over {} bytes", limits.max_body_bytes));
            }
            let request: RerankRequest = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return error(400, format!("invalid request JSON: {e} (expected {{\"query\": str, \"documents\": [str], \"top_n\"?: int}})")),
            };
            if request.query.trim().is_empty() {
                return error(400, "query is empty");
            }
            if request.documents.is_empty() {
                return error(400, "documents is empty: send at least one document to rerank");
            }
            if request.documents.len() > limits.max_documents {
                return error(413, format!("{} documents; at most {} per request", request.documents.len(), limits.max_documents));
            }
            match model.rerank(&request.query, &request.documents, request.top_n) {
                Ok(response) => (200, serde_json::to_value(response).expect("serialisable")),
                Err(e) => error(500, format!("{e:#}")),
            }
        }
        (_, "/rerank") | (_, "/health") => error(405, format!("{method} is not allowed on {path}")),
        _ => error(404, format!("no endpoint {path} (POST /rerank, GET /health)")),
    }
}

/// Serves on `address` with `threads` workers until the process ends. `ready` is called with the bound
/// address once the socket listens.
pub fn serve(model: RoutedReranker, address: &str, threads: usize, limits: Limits, ready: impl FnOnce(std::net::SocketAddr)) -> Result<()> {
    let server = tiny_http::Server::http(address).map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))?;
    let bound = server.server_addr().to_ip().context("the server has no IP address")?;
    ready(bound);
    let server = Arc::new(server);
    let model = Arc::new(model);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (server, model) = (server.clone(), model.clone());
            std::thread::spawn(move || {
                for mut request in server.incoming_requests() {
                    let mut body = Vec::new();
                    // Read at most one byte past the limit: enough to refuse without reading it all.
                    let read = request.as_reader().take(limits.max_body_bytes as u64 + 1).read_to_end(&mut body);
                    let (status, value) = match read {
                        Ok(_) => answer(&model, limits, request.method().as_str(), request.url().split('?').next().unwrap_or(""), &body),
                        Err(e) => error(400, format!("cannot read the request body: {e}")),
                    };
                    let header = tiny_http::Header::from_bytes("Content-Type", "application/json").expect("a valid header");
                    let response = tiny_http::Response::from_string(value.to_string()).with_status_code(status).with_header(header);
                    let _ = request.respond(response);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

/// What a load test measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests_per_second: f64,
}

/// One POST with a minimal HTTP/1.1 client; returns the status code.
fn post(address: std::net::SocketAddr, path: &str, body: &str, timeout: std::time::Duration) -> Result<u16> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status line in the answer")?;
    Ok(status)
}

/// Sends `requests` rerank requests (`body`) from `concurrency` clients, stopping early at `max_seconds`;
/// a non-200 answer or a failed connection counts as an error.
pub fn load_test(address: std::net::SocketAddr, body: &str, requests: usize, concurrency: usize, max_seconds: f64) -> Result<LoadReport> {
    if requests == 0 || concurrency == 0 || !(max_seconds > 0.0) {
        bail!("requests, concurrency and seconds must be positive");
    }
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs_f64(max_seconds);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let timeout = std::time::Duration::from_secs_f64(max_seconds.max(1.0));
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, body) = (next.clone(), body.to_string());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests && std::time::Instant::now() < deadline {
                    let t = std::time::Instant::now();
                    let ok = matches!(post(address, "/rerank", &body, timeout), Ok(200));
                    seen.push((t.elapsed().as_secs_f64() * 1000.0, ok));
                }
                seen
            })
        })
        .collect();
    let mut all: Vec<(f64, bool)> = clients.into_iter().flat_map(|c| c.join().unwrap_or_default()).collect();
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let quantile = |q: f64| if all.is_empty() { f64::NAN } else { all[((all.len() - 1) as f64 * q).round() as usize].0 };
    Ok(LoadReport {
        requests: all.len(),
        errors: all.iter().filter(|(_, ok)| !ok).count(),
        seconds,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        requests_per_second: all.len() as f64 / seconds,
    })
}
