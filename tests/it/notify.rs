//! Notifications (docs/http-api.md#notices, rule 10): each channel's request shape against
//! local servers (wiremock, and a real SMTP conversation with an in-process
//! sink), retries that deliver exactly once more, pending notices surviving a
//! restart, routing by tenant and kind, dedup across replays, rendering.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wa_sentinel::config::{self, Config, Language, RawConfig, raw::RawNotifier};
use wa_sentinel::domain::notice::{RecoveredBy, dedup_key};
use wa_sentinel::domain::{Notice, NoticeKind, Ts};
use wa_sentinel::notify::render::{payload, render};
use wa_sentinel::notify::route;
use wa_sentinel::notify::worker::{DeliveryPolicy, OutboxWorker};
use wa_sentinel::store::Store;
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::it::common::TestDb;

fn notice(kind: NoticeKind, tenant: &str) -> Notice {
    Notice {
        kind,
        provider: "evo-main".into(),
        instance: Some("tenant_1_inst_1".into()),
        tenant: Some(tenant.into()),
        outage_id: Some("0193abcd".into()),
        started_at: Ts(1_763_719_200_000),
        at: Ts(1_763_719_260_000),
        reason: "connection closed (statusReason 428)".into(),
        cause: Some("disconnected".into()),
        code: Some(428),
        restart_attempts: 1,
        max_attempts: 3,
        recovered_by: None,
        sequence: 0,
        dedup_key: dedup_key("0193abcd", kind, 0),
        remediation: None,
        pair_url: None,
    }
}

fn cfg_with(notifiers: Vec<RawNotifier>, lang: &str) -> Config {
    let mut raw = RawConfig { notifiers, ..Default::default() };
    raw.alerts.language = lang.into();
    config::validate(raw, &|_| "test".into()).expect("valid test config")
}

fn notifier(name: &str, kind: &str, url: Option<String>) -> RawNotifier {
    RawNotifier { name: name.into(), kind: kind.into(), url, ..Default::default() }
}

fn fast_policy(cfg: &Config) -> DeliveryPolicy {
    DeliveryPolicy {
        min_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        max_age: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        ..DeliveryPolicy::from_config(cfg)
    }
}

/// Queue `notices` for every matching notifier and deliver them once (clock = `at`).
async fn queue(store: &Store, cfg: &Config, notices: &[Notice], at: Ts) {
    store.enqueue(&route(&cfg.notifiers, notices), at).await.unwrap();
}

fn body_json(r: &Request) -> serde_json::Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

#[tokio::test]
async fn webhook_channel_sends_the_spec_payload_with_idempotency_key_and_signature() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header("Idempotency-Key", "outage:0193abcd:instance_down"))
        .and(header_exists("X-Wa-Sentinel-Signature"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let mut n = notifier("hook", "webhook", Some(format!("{}/hook", server.uri())));
    n.secret = Some("s3cret".into());
    let cfg = cfg_with(vec![n], "en");
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[notice(NoticeKind::InstanceDown, "tenant_1")], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    let rep = w.drain(|| Ts(0)).await.unwrap();
    assert_eq!(rep.delivered, 1);
    let reqs = server.received_requests().await.unwrap();
    let b = body_json(&reqs[0]);
    for (k, v) in [
        ("kind", "instance_down"),
        ("severity", "critical"),
        ("provider", "evo-main"),
        ("instance", "tenant_1_inst_1"),
        ("tenant", "tenant_1"),
        ("outage_id", "0193abcd"),
        ("started_at", "2025-11-21T10:00:00Z"),
        ("at", "2025-11-21T10:01:00Z"),
        ("dedup_key", "outage:0193abcd:instance_down"),
    ] {
        assert_eq!(b[k], v, "field {k}");
    }
    assert_eq!(b["restart_attempts"], 1);
    assert_eq!(
        b["summary"],
        "tenant_1_inst_1 (tenant_1 @ evo-main) is down: WhatsApp closed the connection (code 428); restart 1/3 ordered"
    );
    // Machines keep the raw reason.
    assert_eq!(b["reason"], "connection closed (statusReason 428)");
    let sig = reqs[0].headers.get("X-Wa-Sentinel-Signature").unwrap().to_str().unwrap();
    assert_eq!(sig, wa_sentinel::notify::channels::webhook_signature(b"s3cret", &reqs[0].body));
}

/// The webhook notice's JSON, whole: `cause` and `code` beside `reason`, so a
/// receiver tells "never paired" from "logged out (401)" without parsing
/// text; both `null` when the notice has none.
#[tokio::test]
async fn the_webhook_notice_json_carries_cause_and_code_null_when_absent() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let mut n = notifier("hook", "webhook", Some(format!("{}/hook", server.uri())));
    n.kinds = Some(vec!["instance_logged_out".into(), "webhook_repaired".into()]);
    let cfg = cfg_with(vec![n], "en");
    let mut logged_out = notice(NoticeKind::InstanceLoggedOut, "tenant_1");
    logged_out.reason = "logged out (statusReason 401)".into();
    (logged_out.cause, logged_out.code) = (Some("logged_out".into()), Some(401));
    let repaired = Notice {
        outage_id: None,
        cause: None,
        code: None,
        restart_attempts: 0,
        max_attempts: 0,
        reason: "missing".into(),
        dedup_key: "webhook:i1:1763719260000".into(),
        ..notice(NoticeKind::WebhookRepaired, "tenant_1")
    };
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[logged_out, repaired], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    assert_eq!(w.drain(|| Ts(0)).await.unwrap().delivered, 2);
    let reqs = server.received_requests().await.unwrap();
    let by_kind = |k: &str| reqs.iter().map(body_json).find(|b| b["kind"] == k).unwrap();
    assert_eq!(
        by_kind("instance_logged_out"),
        serde_json::json!({
            "kind": "instance_logged_out", "severity": "critical", "provider": "evo-main",
            "instance": "tenant_1_inst_1", "tenant": "tenant_1", "outage_id": "0193abcd",
            "started_at": "2025-11-21T10:00:00Z", "at": "2025-11-21T10:01:00Z",
            "reason": "logged out (statusReason 401)", "cause": "logged_out", "code": 401,
            "restart_attempts": 1, "recovered_by": null, "duration_seconds": 60,
            "summary": render(&notice_like_logged_out(), Language::En).summary,
            "dedup_key": "outage:0193abcd:instance_logged_out", "remediation": null, "pair_url": null,
        })
    );
    let r = by_kind("webhook_repaired");
    assert_eq!((&r["cause"], &r["code"]), (&serde_json::Value::Null, &serde_json::Value::Null), "{r}");
    assert!(r.as_object().unwrap().contains_key("cause") && r.as_object().unwrap().contains_key("code"), "{r}");
}

fn notice_like_logged_out() -> Notice {
    let mut n = notice(NoticeKind::InstanceLoggedOut, "tenant_1");
    n.reason = "logged out (statusReason 401)".into();
    (n.cause, n.code) = (Some("logged_out".into()), Some(401));
    n
}

#[tokio::test]
async fn slack_discord_and_telegram_request_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let mut tg = RawNotifier { name: "tg".into(), kind: "telegram".into(), ..Default::default() };
    tg.bot_token = Some("123:abc".into());
    tg.chat_id = Some("-100".into());
    tg.api_base = Some(server.uri());
    let cfg = cfg_with(
        vec![
            notifier("slack", "slack", Some(format!("{}/slack", server.uri()))),
            notifier("discord", "discord", Some(format!("{}/discord", server.uri()))),
            tg,
        ],
        "en",
    );
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[notice(NoticeKind::InstanceLoggedOut, "tenant_1")], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    assert_eq!(w.drain(|| Ts(0)).await.unwrap().delivered, 3);
    let reqs = server.received_requests().await.unwrap();
    let by_path =
        |p: &str| body_json(reqs.iter().find(|r| r.url.path() == p).unwrap_or_else(|| panic!("no request to {p}")));
    let s = by_path("/slack");
    assert!(s["text"].as_str().unwrap().contains("is logged out"));
    assert_eq!(s["blocks"][0]["type"], "header");
    assert!(s["blocks"][1]["text"]["text"].as_str().unwrap().contains("Scan the QR code"));
    let d = by_path("/discord");
    assert_eq!(d["embeds"][0]["title"], "Instance logged out");
    assert_eq!(d["embeds"][0]["fields"][2]["value"], "tenant_1");
    let field = |name: &str| d["embeds"][0]["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).cloned();
    assert_eq!(field("cause").map(|f| f["value"].clone()), Some(serde_json::json!("disconnected")), "{d}");
    assert_eq!(field("code").map(|f| f["value"].clone()), Some(serde_json::json!("428")), "{d}");
    let t = by_path("/bot123:abc/sendMessage");
    assert_eq!(t["chat_id"], "-100");
    assert!(t["text"].as_str().unwrap().starts_with("Instance logged out"));
}

/// Fails `n` times with 503, then answers 200.
struct FlakyThen {
    left: Mutex<u32>,
}

impl Respond for FlakyThen {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut left = self.left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            ResponseTemplate::new(503)
        } else {
            ResponseTemplate::new(200)
        }
    }
}

#[tokio::test]
async fn a_channel_failing_three_times_gets_the_notice_exactly_once_more() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(FlakyThen { left: Mutex::new(3) }).expect(4).mount(&server).await;
    let cfg = cfg_with(vec![notifier("hook", "webhook", Some(server.uri()))], "en");
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[notice(NoticeKind::InstanceDown, "tenant_1")], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    let mut delivered = 0;
    for hour in 0..10 {
        delivered += w.drain(move || Ts(hour * 60_000)).await.unwrap().delivered;
    }
    assert_eq!(delivered, 1);
    let keys = crate::it::common::idempotency_keys(&server).await;
    assert_eq!(keys, vec!["outage:0193abcd:instance_down"; 4], "a retry carries the same key");
    assert_eq!(db.store.outbox_count("delivered").await.unwrap(), 1);
}

#[tokio::test]
async fn retry_after_is_respected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    let cfg = cfg_with(vec![notifier("hook", "webhook", Some(server.uri()))], "en");
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[notice(NoticeKind::InstanceDown, "tenant_1")], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    assert_eq!(w.drain(|| Ts(0)).await.unwrap().failed, 1);
    assert!(
        db.store.claim_outbox(Ts(119_000), Duration::from_secs(1), 10, &["hook".to_string()]).await.unwrap().is_empty()
    );
    assert_eq!(
        db.store.claim_outbox(Ts(240_000), Duration::from_secs(1), 10, &["hook".to_string()]).await.unwrap().len(),
        1
    );
}

/// Two workers (two replicas) on PostgreSQL behind a notifier that takes 2 s
/// per request, with a backlog of 40 notices: every notice is delivered
/// exactly once, and each notifier gets its notices in order. Four notifiers
/// of ten notices each keep the run at ~20 s; with a 3 s delivery timeout the
/// lease is 9 s, far shorter than each notifier's 20 s of work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_behind_a_slow_notifier_deliver_every_notice_once_in_order() {
    let Some(db) = TestDb::postgres().await else { return };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let names = ["n0", "n1", "n2", "n3"];
    let cfg =
        cfg_with(names.iter().map(|n| notifier(n, "webhook", Some(format!("{}/{n}", server.uri())))).collect(), "en");
    let notices: Vec<Notice> = (0..10)
        .map(|i| {
            let mut n = notice(NoticeKind::InstanceDown, "tenant_1");
            n.dedup_key = format!("outage:o{i:02}:instance_down");
            n
        })
        .collect();
    queue(&db.store, &cfg, &notices, wa_sentinel::clock::now()).await;
    let policy = DeliveryPolicy { timeout: Duration::from_secs(3), ..fast_policy(&cfg) };
    let other = Store::connect(&db.url, 4).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    for store in [db.store.clone(), other] {
        let w = OutboxWorker::new(store, &cfg, policy.clone()).unwrap();
        tokio::spawn(w.run(stop.child_token()));
    }
    let start = std::time::Instant::now();
    while db.store.outbox_count("delivered").await.unwrap() < 40 && start.elapsed() < Duration::from_secs(90) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A duplicate would still be on its way: give it the time of one request.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.cancel();
    assert_eq!(db.store.outbox_count("delivered").await.unwrap(), 40);
    let reqs = server.received_requests().await.unwrap();
    let want: Vec<String> = notices.iter().map(|n| n.dedup_key.clone()).collect();
    for n in names {
        let got: Vec<String> = reqs
            .iter()
            .filter(|r| r.url.path() == format!("/{n}"))
            .map(|r| r.headers.get("Idempotency-Key").unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "notifier {n}: each notice once, in order");
    }
}

/// A 4xx other than 408/425/429 means the notifier will never take this
/// message: the row is dead at once (logged, counted), and the notices
/// behind it flow instead of waiting a day behind it.
#[tokio::test]
async fn a_message_the_notifier_refuses_is_dead_at_once_and_later_notices_flow() {
    let metrics = wa_sentinel::server::metrics_handle();
    let server = MockServer::start().await;
    let down = notice(NoticeKind::InstanceDown, "tenant_1");
    Mock::given(method("POST"))
        .and(header("Idempotency-Key", down.dedup_key.as_str()))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid_blocks"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let cfg = cfg_with(vec![notifier("picky", "webhook", Some(server.uri()))], "en");
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[down, notice(NoticeKind::InstanceRecovered, "tenant_1")], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    let rep = w.drain(|| Ts(0)).await.unwrap();
    assert_eq!((rep.dead, rep.failed, rep.delivered), (1, 0, 1), "{rep:?}");
    assert_eq!(db.store.outbox_count("dead").await.unwrap(), 1);
    if let Some(m) = metrics {
        let text = m.render();
        assert!(
            text.contains(r#"wa_sentinel_notifications_total{notifier="picky",kind="instance_down",result="dead"} 1"#),
            "{text}"
        );
    }
}

/// A very long instance name (or reason) never makes a notice undeliverable:
/// every text is cut to its channel's documented limit, and the e-mail
/// subject stays one line.
#[tokio::test]
async fn texts_are_cut_to_each_channels_limits() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let (port, inbox) = smtp_sink().await;
    let mut tg = RawNotifier { name: "tg".into(), kind: "telegram".into(), ..Default::default() };
    tg.bot_token = Some("123:abc".into());
    tg.chat_id = Some("-100".into());
    tg.api_base = Some(server.uri());
    let mail = RawNotifier {
        name: "mail".into(),
        kind: "email".into(),
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: Some("none".into()),
        from: Some("sentinel@example.com".into()),
        to: Some(vec!["ops@example.com".into()]),
        ..Default::default()
    };
    let cfg = cfg_with(
        vec![
            notifier("slack", "slack", Some(format!("{}/slack", server.uri()))),
            notifier("discord", "discord", Some(format!("{}/discord", server.uri()))),
            tg,
            mail,
        ],
        "en",
    );
    let mut n = notice(NoticeKind::InstanceDown, "tenant_1");
    n.instance = Some(format!("shop\r\nBcc: evil@example.com {}", "é".repeat(5000)));
    n.reason = "r".repeat(5000);
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[n], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    assert_eq!(w.drain(|| Ts(0)).await.unwrap().delivered, 4);
    let reqs = server.received_requests().await.unwrap();
    let by_path = |p: &str| body_json(reqs.iter().find(|r| r.url.path() == p).unwrap());
    let len = |v: &serde_json::Value| v.as_str().unwrap().encode_utf16().count();
    let s = by_path("/slack");
    assert!(len(&s["blocks"][0]["text"]["text"]) <= 150, "Slack header");
    assert!(len(&s["blocks"][1]["text"]["text"]) <= 3000, "Slack section");
    let d = by_path("/discord");
    assert!(len(&d["embeds"][0]["title"]) <= 256, "Discord title");
    assert!(len(&d["embeds"][0]["description"]) <= 4096, "Discord description");
    let embed_total: usize =
        [&d["embeds"][0]["title"], &d["embeds"][0]["description"], &d["embeds"][0]["footer"]["text"]]
            .into_iter()
            .chain(d["embeds"][0]["fields"].as_array().unwrap().iter().flat_map(|f| [&f["name"], &f["value"]]))
            .map(len)
            .sum();
    assert!(embed_total <= 6000, "Discord embed total {embed_total}");
    let t = by_path("/bot123:abc/sendMessage");
    assert!(len(&t["text"]) <= 4096, "Telegram text");
    let got = inbox.lock().unwrap().clone();
    let data = &got[0].data;
    assert!(data.contains("Subject: [wa-sentinel] Instance down: shop Bcc: evil@example.com"), "{data}");
    assert!(!data.lines().any(|l| l.starts_with("Bcc:")), "no header smuggled in: {data}");
}

#[tokio::test]
async fn notices_outlive_their_max_age_as_dead_rows_not_silent_loss() {
    let cfg = cfg_with(vec![notifier("hook", "webhook", Some("http://127.0.0.1:9/".into()))], "en");
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[notice(NoticeKind::InstanceDown, "tenant_1")], Ts(0)).await;
    let mut policy = fast_policy(&cfg);
    policy.max_age = Duration::from_secs(10);
    let w = OutboxWorker::new(db.store.clone(), &cfg, policy).unwrap();
    let mut dead = 0;
    for s in 0..30 {
        dead += w.drain(move || Ts(s * 5_000)).await.unwrap().dead;
    }
    assert_eq!(dead, 1);
    assert_eq!(db.store.outbox_count("dead").await.unwrap(), 1);
}

#[tokio::test]
async fn a_channel_down_across_a_restart_still_gets_every_pending_notice() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/o.db", dir.path().display());
    let server = MockServer::start().await;
    // First life: the channel is down (connection refused on a closed port).
    let down = cfg_with(vec![notifier("hook", "webhook", Some("http://127.0.0.1:9/".into()))], "en");
    {
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let notices = [notice(NoticeKind::InstanceDown, "tenant_1"), notice(NoticeKind::InstanceRecovered, "tenant_1")];
        queue(&store, &down, &notices, Ts(0)).await;
        let w = OutboxWorker::new(store.clone(), &down, fast_policy(&down)).unwrap();
        let rep = w.drain(|| Ts(0)).await.unwrap();
        assert_eq!((rep.delivered, rep.failed), (0, 1), "the second waits behind the first");
        store.close().await;
    }
    // Second life: same database, the channel is back.
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(2).mount(&server).await;
    let up = cfg_with(vec![notifier("hook", "webhook", Some(server.uri()))], "en");
    let store = Store::connect(&url, 2).await.unwrap();
    let w = OutboxWorker::new(store.clone(), &up, fast_policy(&up)).unwrap();
    let rep = w.drain(|| Ts(3_600_000)).await.unwrap();
    assert_eq!(rep.delivered, 2);
    let kinds: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| body_json(r)["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, vec!["instance_down", "instance_recovered"], "in order");
}

#[tokio::test]
async fn routing_by_tenant_and_kind_and_dedup_across_replays() {
    let mut t1 = notifier("t1-only", "log", None);
    t1.tenants = Some(vec!["tenant_1".into()]);
    let mut downs = notifier("downs", "log", None);
    downs.kinds = Some(vec!["instance_down".into()]);
    let all = notifier("all", "log", None);
    let cfg = cfg_with(vec![t1, downs, all], "en");
    let a = notice(NoticeKind::InstanceDown, "tenant_1");
    let b = notice(NoticeKind::InstanceRecovered, "tenant_2");
    let rows = route(&cfg.notifiers, [&a, &b]);
    let pairs: Vec<(&str, &str)> = rows.iter().map(|r| (r.kind.as_str(), r.notifier.as_str())).collect();
    assert_eq!(
        pairs,
        vec![
            ("instance_down", "t1-only"),
            ("instance_down", "downs"),
            ("instance_down", "all"),
            ("instance_recovered", "all")
        ]
    );
    let db = TestDb::sqlite().await;
    for _ in 0..3 {
        db.store.enqueue(&rows, Ts(0)).await.unwrap();
    }
    assert_eq!(db.store.outbox_all().await.unwrap().len(), 4, "replays add nothing");
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    assert_eq!(w.drain(|| Ts(0)).await.unwrap().delivered, 4);
    db.store.enqueue(&rows, Ts(1)).await.unwrap();
    assert_eq!(w.drain(|| Ts(2)).await.unwrap().delivered, 0, "a delivered notice is never queued again");
}

/// A notifier scoped to some tenants does not hear about provider-wide
/// outages (that would tell its tenant others are affected), unless it asks
/// with `provider_notices = true`; one for every tenant does.
#[test]
fn provider_wide_notices_reach_only_notifiers_that_take_them() {
    let mut scoped = notifier("t1-only", "log", None);
    scoped.tenants = Some(vec!["tenant_1".into()]);
    let mut scoped_asks = notifier("t1-ops", "log", None);
    scoped_asks.tenants = Some(vec!["tenant_1".into()]);
    scoped_asks.provider_notices = Some(true);
    let mut all_but = notifier("all-quiet", "log", None);
    all_but.provider_notices = Some(false);
    let cfg = cfg_with(vec![scoped, scoped_asks, all_but, notifier("all", "log", None)], "en");
    let mut p = notice(NoticeKind::ProviderUnreachable, "-");
    (p.instance, p.tenant) = (None, None);
    let to: Vec<String> = route(&cfg.notifiers, [&p]).into_iter().map(|r| r.notifier).collect();
    assert_eq!(to, vec!["t1-ops", "all"]);
}

#[test]
fn rendering_snapshots_in_english_and_brazilian_portuguese() {
    let n = notice(NoticeKind::InstanceDown, "tenant_1");
    let en = render(&n, Language::En);
    assert_eq!(en.title, "Instance down");
    assert_eq!(
        en.body,
        "tenant_1_inst_1 (tenant_1 @ evo-main) is down: WhatsApp closed the connection (code 428); restart 1/3 ordered.\n\
         Since: 2025-11-21T10:00:00Z (1m ago).\n\
         What to do: wa-sentinel keeps trying within its cooldown. If it stays down, check the provider server and the phone."
    );
    let pt = render(&n, Language::PtBr);
    assert_eq!(pt.title, "Instância fora do ar");
    assert_eq!(
        pt.body,
        "tenant_1_inst_1 (tenant_1 @ evo-main) está fora do ar: o WhatsApp fechou a conexão (código 428); reinício 1/3 solicitado.\n\
         Desde: 2025-11-21T10:00:00Z (há 1m).\n\
         O que fazer: O wa-sentinel continua tentando dentro do intervalo mínimo. Se continuar fora, verifique o servidor do provedor e o celular."
    );
    let mut r = notice(NoticeKind::InstanceRecovered, "tenant_1");
    r.recovered_by = Some(RecoveredBy::Webhook);
    r.at = Ts(r.started_at.0 + 25 * 60_000);
    assert_eq!(
        render(&r, Language::En).summary,
        "tenant_1_inst_1 (tenant_1 @ evo-main) is back after 25m: a webhook proved it alive"
    );
    assert_eq!(
        render(&r, Language::PtBr).summary,
        "tenant_1_inst_1 (tenant_1 @ evo-main) voltou após 25m: um webhook provou que está ativa"
    );
    let mut banned = notice(NoticeKind::InstanceLoggedOut, "tenant_1");
    banned.reason = "logged out: forbidden (the number may be banned) (statusReason 403)".into();
    (banned.cause, banned.code) = (Some("logged_out".into()), Some(403));
    assert!(render(&banned, Language::En).body.contains("may be banned"));
    assert!(render(&banned, Language::PtBr).body.contains("pode ter sido banido"));
    // Every kind renders, in both languages, with its own title.
    for lang in [Language::En, Language::PtBr] {
        let titles: std::collections::HashSet<String> =
            NoticeKind::ALL.iter().map(|k| render(&notice(*k, "t"), lang).title).collect();
        assert_eq!(titles.len(), NoticeKind::ALL.len());
    }
    assert_eq!(payload(&r, Language::En)["recovered_by"], "webhook");
    assert_eq!(payload(&r, Language::En)["duration_seconds"], 25 * 60);
}

// ------------------------------------------------------------------ SMTP sink

#[derive(Default, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server: enough of RFC 5321 for one client to deliver mail.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let box2 = inbox.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let inbox = box2.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut mail = Mail::default();
                while let Ok(Some(line)) = lines.next_line().await {
                    let up = line.to_ascii_uppercase();
                    let reply: &[u8] = if up.starts_with("EHLO") || up.starts_with("HELO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if up.starts_with("MAIL FROM:") {
                        mail.from = line[10..].trim().to_string();
                        b"250 OK\r\n"
                    } else if up.starts_with("RCPT TO:") {
                        mail.to.push(line[8..].trim().to_string());
                        b"250 OK\r\n"
                    } else if up == "DATA" {
                        w.write_all(b"354 go ahead\r\n").await.unwrap();
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        mail.data = data;
                        inbox.lock().unwrap().push(std::mem::take(&mut mail));
                        b"250 queued\r\n"
                    } else if up == "QUIT" {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, inbox)
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_conversation() {
    let (port, inbox) = smtp_sink().await;
    let mail = RawNotifier {
        name: "mail".into(),
        kind: "email".into(),
        smtp_host: Some("127.0.0.1".into()),
        smtp_port: Some(port),
        smtp_tls: Some("none".into()),
        from: Some("sentinel@example.com".into()),
        to: Some(vec!["ops@example.com".into(), "oncall@example.com".into()]),
        ..Default::default()
    };
    let cfg = cfg_with(vec![mail], "pt-BR");
    let db = TestDb::sqlite().await;
    queue(&db.store, &cfg, &[notice(NoticeKind::InstanceDown, "tenant_1")], Ts(0)).await;
    let w = OutboxWorker::new(db.store.clone(), &cfg, fast_policy(&cfg)).unwrap();
    assert_eq!(w.drain(|| Ts(0)).await.unwrap().delivered, 1);
    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].from.contains("sentinel@example.com"));
    assert_eq!(got[0].to.len(), 2);
    assert!(got[0].data.contains("Subject: [wa-sentinel]"), "{}", got[0].data);
    assert!(got[0].data.contains("outage:0193abcd:instance_down"), "{}", got[0].data);
}
