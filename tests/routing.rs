//! Router tests on synthetic features: training separates clusters, is
//! deterministic, saves and loads exactly, and rejects broken files clearly.

use r2r::routing::{argmax, Router, RouterKind, RouterTrainConfig, RoutingReport, TrainedRouter};
use rand::Rng;

/// Three Gaussian clusters in 16 dimensions with overlapping noise.
fn clusters(n_per_class: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut rng = r2r::util::seeded_rng(seed, 1);
    let centres: Vec<Vec<f32>> = (0..3).map(|_| (0..16).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n_per_class * 3 {
        let class = i % 3;
        x.push(centres[class].iter().map(|c| c * 2.0 + rng.random_range(-1.0..1.0) + 5.0).collect());
        y.push(class);
    }
    (x, y)
}

fn labels() -> Vec<String> {
    ["financial", "legal", "medical"].map(String::from).to_vec()
}

fn accuracy(router: &Router, x: &[Vec<f32>], y: &[usize]) -> f64 {
    let ids: Vec<String> = (0..x.len()).map(|i| format!("q{i}")).collect();
    let probs = router.probabilities(x, &ids, Some(y)).unwrap();
    let predicted: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    RoutingReport::new(&labels(), y, &predicted).accuracy
}

#[test]
fn trained_routers_separate_clusters_and_baselines_do_not() {
    let (x, y) = clusters(60, 3);
    let (x_test, y_test) = clusters(40, 3);
    let config = RouterTrainConfig { epochs: 150, ..Default::default() };
    for kind in [RouterKind::Linear, RouterKind::Mlp { hidden: 32 }] {
        let router = Router::Trained(TrainedRouter::train(kind, &labels(), &x, &y, &config, None).unwrap());
        let acc = accuracy(&router, &x_test, &y_test);
        assert!(acc > 0.9, "{kind:?}: held-out accuracy {acc}");
    }
    let random = accuracy(&Router::Random { labels: labels(), seed: 1 }, &x_test, &y_test);
    assert!(random < 0.6, "random router accuracy {random}");
    let static_acc = accuracy(&Router::Static { labels: labels(), expert: 0 }, &x_test, &y_test);
    assert!((static_acc - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(accuracy(&Router::Oracle { labels: labels() }, &x_test, &y_test), 1.0);
}

#[test]
fn router_training_is_deterministic_and_round_trips_through_files() {
    let (x, y) = clusters(30, 5);
    let config = RouterTrainConfig { epochs: 40, seed: 9, ..Default::default() };
    let a = TrainedRouter::train(RouterKind::Mlp { hidden: 8 }, &labels(), &x, &y, &config, None).unwrap();
    let b = TrainedRouter::train(RouterKind::Mlp { hidden: 8 }, &labels(), &x, &y, &config, None).unwrap();
    let pa = a.probabilities(&x).unwrap();
    assert_eq!(pa, b.probabilities(&x).unwrap(), "same seed, same router");
    let other = TrainedRouter::train(RouterKind::Mlp { hidden: 8 }, &labels(), &x, &y, &RouterTrainConfig { seed: 10, ..config.clone() }, None).unwrap();
    assert_ne!(pa, other.probabilities(&x).unwrap(), "the seed matters");

    let dir = tempfile::tempdir().unwrap();
    a.save(dir.path()).unwrap();
    let loaded = TrainedRouter::load(dir.path()).unwrap();
    assert_eq!(loaded.probabilities(&x).unwrap(), pa);
    assert_eq!(loaded.meta, a.meta);

    // Wrong feature width is an error, not a panic.
    let err = loaded.probabilities(&[vec![0.0; 3]]).unwrap_err().to_string();
    assert!(err.contains("expects 16 features"), "{err}");
}

#[test]
fn broken_router_files_give_errors_naming_the_file() {
    let (x, y) = clusters(10, 2);
    let router = TrainedRouter::train(RouterKind::Linear, &labels(), &x, &y, &RouterTrainConfig { epochs: 5, ..Default::default() }, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    router.save(dir.path()).unwrap();
    // Metadata that claims another width: shapes no longer fit.
    let meta_path = dir.path().join("router.json");
    let text = std::fs::read_to_string(&meta_path).unwrap().replace("\"input_dim\": 16", "\"input_dim\": 12");
    std::fs::write(&meta_path, text).unwrap();
    let err = format!("{:#}", TrainedRouter::load(dir.path()).unwrap_err());
    assert!(err.contains("router.safetensors") && err.contains("shape"), "{err}");
    // Truncated weights.
    router.save(dir.path()).unwrap();
    let weights = dir.path().join("router.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = format!("{:#}", TrainedRouter::load(dir.path()).unwrap_err());
    assert!(err.contains("router.safetensors"), "{err}");
    // Missing directory.
    let err = format!("{:#}", TrainedRouter::load(&dir.path().join("nope")).unwrap_err());
    assert!(err.contains("router.json"), "{err}");
}
