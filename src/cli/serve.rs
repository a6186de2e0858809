//! `r2r serve --run RUN [--port 8080]`: the routed reranker of a run as a local HTTP service
//! (`POST /rerank`, `GET /health`; src/scaleout/serve.rs), and `r2r serve --load-test` against it.

use std::path::PathBuf;

use anyhow::Result;

use crate::scaleout::serve::{load_test, serve, Limits, RoutedReranker};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A training run directory with experts and a router.
    #[arg(long)]
    pub run: PathBuf,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Worker threads (concurrent requests).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long, default_value_t = 256)]
    pub max_documents: usize,
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Instead of serving until stopped: start, send this many requests from --concurrency clients (bounded by
    /// --seconds), print p50/p99 latency and errors, and exit.
    #[arg(long)]
    pub load_test: Option<usize>,
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Documents per load-test request.
    #[arg(long, default_value_t = 8)]
    pub documents: usize,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let model = RoutedReranker::load(&args.run)?;
    let limits = Limits { max_body_bytes: args.max_body_bytes, max_documents: args.max_documents };
    let address = format!("{}:{}", args.host, args.port);
    let Some(requests) = args.load_test else {
        return serve(model, &address, args.threads, limits, |bound| eprintln!("serving {} on http://{bound} (POST /rerank, GET /health)", args.run.display()));
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    let threads = args.threads;
    std::thread::spawn(move || serve(model, &address, threads, limits, |bound| { let _ = tx.send(bound); }));
    let bound = rx.recv_timeout(std::time::Duration::from_secs(30))?;
    let documents: Vec<String> = (0..args.documents).map(|i| format!("Passage {i}: the tenant must give thirty days notice before the lease ends; interest accrues monthly on the unpaid balance.")).collect();
    let body = serde_json::json!({"query": "how much notice must a tenant give before the lease ends", "documents": documents}).to_string();
    let report = load_test(bound, &body, requests, args.concurrency, args.seconds)?;
    println!(
        "{} requests ({} documents each) from {} clients in {:.1} s: {:.2} requests/s, p50 {:.0} ms, p99 {:.0} ms, errors {}",
        report.requests, args.documents, args.concurrency, report.seconds, report.requests_per_second, report.p50_ms, report.p99_ms, report.errors
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
