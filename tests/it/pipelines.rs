//! Rule 15 (docs/rules.md), with the real binary: one slow provider
//! never delays the others. Provider `a` accepts connections and never
//! answers (300 instances, `request_timeout = 2s`); provider `b` is a healthy
//! simulator with 5 instances. A drop on `b` is still seen within
//! `down_after` × period + 2 s, `a` gets one `provider_unreachable` within two
//! of its cycles, systemd's watchdog keeps being fed, and `/readyz` stays 200
//! and names the provider that does not answer.

use std::time::{Duration, Instant};

use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};

use crate::it::common::free_port;
use crate::it::common::ok_sink;
use crate::it::process::Daemon;

/// A server that accepts every connection and never answers a byte.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s); // keep it open, say nothing
        }
    });
    (format!("http://{addr}"), task)
}

/// The kinds of the notices a sink received, in order (from the JSON bodies).
async fn kinds(sink: &wiremock::MockServer) -> Vec<(String, String)> {
    sink.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .map(|v| {
            let who = v["instance"].as_str().map(str::to_string).unwrap_or_else(|| v["provider"].to_string());
            (v["kind"].as_str().unwrap_or("").to_string(), who)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_provider_never_delays_another() {
    let dir = tempfile::tempdir().unwrap();
    let (hole, _hole) = black_hole().await;
    let names: Vec<String> = (1..=5).map(|i| format!("b{i}")).collect();
    let sim = Simulator::start(SimOptions {
        instances: names.iter().map(|n| (n.clone(), Behaviour::Open)).collect(),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink = ok_sink().await;
    let port = free_port();
    let mut text = format!(
        r#"
[database]
url = "sqlite://{db}/p.db"
[server]
listen = "127.0.0.1:{port}"
admin_token = "admin"
[supervisor]
poll_schedule = "*/2 * * * * *"
request_timeout = "2s"
down_after = 2
settle_delay = "0s"
[restart]
cooldown = "30m"
[alerts]
retry_min_delay = "1s"
[[providers]]
name = "a"
kind = "evolution"
base_url = "{hole}"
api_version = "v2"
api_key = "k"
webhook_token = "tok-a"
discover = false
[[providers]]
name = "b"
kind = "evolution"
base_url = "{b}"
api_version = "v2"
api_key = "{bkey}"
webhook_token = "tok-b"
discover = true
[[notifiers]]
name = "sink"
kind = "webhook"
url = "{sink}"
"#,
        db = dir.path().display(),
        b = sim.base_url(),
        bkey = sim.api_key(),
        sink = sink.uri(),
    );
    for i in 0..300 {
        text.push_str(&format!("[[instances]]\nprovider = \"a\"\nname = \"a{i}\"\n"));
    }
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = tokio::net::UnixDatagram::bind(&sock_path).unwrap();
    let sock_str = sock_path.to_string_lossy().to_string();
    let _d = Daemon::spawn(&cfg, &[("NOTIFY_SOCKET", &sock_str), ("WATCHDOG_USEC", "4000000")]);
    let log = || std::fs::read_to_string(cfg.with_extension("log")).unwrap_or_default();

    // The watchdog datagrams, counted in the background for the whole test.
    let pings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let p = pings.clone();
    let listen = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok(n) = sock.recv(&mut buf).await {
            if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                p.lock().unwrap().push(Instant::now());
            }
        }
    });

    // b's instances are up: first cycle done.
    let store = wa_sentinel::store::Store::connect(&format!("sqlite://{}/p.db", dir.path().display()), 2).await;
    let store = store.unwrap();
    let b1 = wa_sentinel::domain::InstanceKey::new("b", "b1");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = store.instance(&b1).await.ok().flatten().map(|r| r.state.health);
        if h == Some(wa_sentinel::domain::Health::Connected) {
            break;
        }
        assert!(Instant::now() < deadline, "b1 never seen connected:\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A drop on b is detected within down_after × period + 2 s, whatever a does.
    let dropped = Instant::now();
    sim.set_behaviour("b1", Behaviour::ReconnectLoop);
    let limit = Duration::from_secs(2 * 2 + 2);
    loop {
        if kinds(&sink).await.iter().any(|(k, who)| k == "instance_down" && who == "b1") {
            break;
        }
        assert!(
            dropped.elapsed() < limit + Duration::from_secs(10),
            "no instance_down for b1 after {:?}:\n{}",
            dropped.elapsed(),
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = dropped.elapsed();
    assert!(took <= limit, "b1's drop took {took:?} (limit {limit:?}) with a hanging provider next to it");

    // a: one provider_unreachable within two of its cycles (each bounded by the
    // breaker: one round of timeouts, then the probes of the next cycle).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let k = kinds(&sink).await;
        if k.iter().any(|(k, who)| k == "provider_unreachable" && who.contains('a')) {
            break;
        }
        assert!(Instant::now() < deadline, "no provider_unreachable for a: {k:?}\n{}", log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let k = kinds(&sink).await;
    assert_eq!(k.iter().filter(|(k, _)| k == "provider_unreachable").count(), 1, "{k:?}");
    assert!(!k.iter().any(|(k, who)| k != "provider_unreachable" && who.starts_with('a')), "{k:?}");

    // /readyz stays 200 and says which provider does not answer.
    let r = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("provider a: unreachable"), "{body}");
    assert!(body.contains("provider b: ok"), "{body}");

    // The watchdog was fed all along: no gap as long as its period (4 s).
    let pings = pings.lock().unwrap().clone();
    listen.abort();
    assert!(pings.len() >= 5, "{} watchdog pings", pings.len());
    let worst = pings.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(worst < Duration::from_secs(4), "a watchdog gap of {worst:?}:\n{}", log());
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("wa_sentinel_provider_breaker_open{provider=\"a\"} 1"), "{metrics}");
    assert!(metrics.contains("wa_sentinel_provider_cycle_seconds"), "metrics lack the per-provider cycle time");
}
