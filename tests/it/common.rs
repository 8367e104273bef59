//! Shared test helpers: a fresh database on each backend.
//!
//! PostgreSQL tests read `WA_SENTINEL_TEST_POSTGRES` (e.g.
//! `postgres://postgres@127.0.0.1/test`); each test gets its own schema. Without
//! the variable they are skipped, except under `CI=true`, where a missing or
//! unreachable PostgreSQL is a failure.

use wa_sentinel::store::Store;

pub struct TestDb {
    pub store: Store,
    /// The URL a spawned daemon uses to reach the same database.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::connect(&url, 4).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        TestDb { store, _dir: Some(dir), url }
    }

    /// A fresh schema on the test PostgreSQL, or `None` when not configured (outside CI).
    pub async fn postgres() -> Option<TestDb> {
        let url = postgres_schema().await?;
        let store = Store::connect(&url, 4).await.expect("open postgres");
        store.migrate().await.expect("migrate postgres");
        Some(TestDb { store, _dir: None, url })
    }
}

/// The URL of a fresh, empty schema on the test PostgreSQL, or `None` when
/// not configured (outside CI).
pub async fn postgres_schema() -> Option<String> {
    let base = match std::env::var("WA_SENTINEL_TEST_POSTGRES") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but WA_SENTINEL_TEST_POSTGRES is not set: PostgreSQL tests must run in CI"
            );
            eprintln!("skipping PostgreSQL test: WA_SENTINEL_TEST_POSTGRES is not set");
            return None;
        }
    };
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&base).await.unwrap_or_else(|e| panic!("PostgreSQL at {base} unreachable: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.expect("create schema");
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

/// Sign in on the login form at `base` with `token`, without following the
/// redirect: the status, `Set-Cookie` and `Retry-After`.
pub async fn sign_in(base: &str, token: &str) -> (u16, Option<String>, Option<String>) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    let h = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), h("set-cookie"), h("retry-after"))
}

/// The JSON answer of `request` sent with the admin `token`.
pub async fn admin_json(request: reqwest::RequestBuilder, token: &str) -> serde_json::Value {
    request.bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// A PostgreSQL database of a test's own (not a schema of the shared one),
/// for a test that makes it refuse connections for a while. `None` without
/// `WA_SENTINEL_TEST_POSTGRES` (a failure under `CI=true`).
pub struct OwnDatabase {
    pub url: String,
    name: String,
    admin: sqlx::PgPool,
}

impl OwnDatabase {
    pub async fn create(prefix: &str) -> Option<OwnDatabase> {
        let Ok(base) = std::env::var("WA_SENTINEL_TEST_POSTGRES") else {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but WA_SENTINEL_TEST_POSTGRES is not set");
            eprintln!("skipping: WA_SENTINEL_TEST_POSTGRES is not set");
            return None;
        };
        let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        let mut url = reqwest::Url::parse(&base).unwrap();
        url.set_path(&format!("/{name}"));
        let db = OwnDatabase { url: url.to_string(), name, admin };
        db.exec(format!("CREATE DATABASE {}", db.name)).await;
        Some(db)
    }

    async fn exec(&self, sql: String) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&self.admin).await.unwrap();
    }

    /// Refuse every new connection and cut the open ones.
    pub async fn refuse_connections(&self) {
        self.exec(format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", self.name)).await;
        self.exec(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'", self.name))
            .await;
    }

    pub async fn allow_connections(&self) {
        self.exec(format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.name)).await;
    }

    pub async fn drop(self) {
        self.exec(format!("DROP DATABASE {} WITH (FORCE)", self.name)).await;
    }
}

/// Generate `mod NAME { sqlite, postgres }` running the same `async fn NAME(Store)`
/// on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::it::common::TestDb::sqlite().await;
                super::$name(db.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::it::common::TestDb::postgres().await else { return };
                super::$name(db.store.clone()).await;
            }
        }
    )*};
}

/// A notice sink that answers 200 to every POST.
pub async fn ok_sink() -> wiremock::MockServer {
    let sink = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&sink)
        .await;
    sink
}

/// The `Idempotency-Key` of every request a sink received, in order.
pub async fn idempotency_keys(sink: &wiremock::MockServer) -> Vec<String> {
    sink.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.headers.get("Idempotency-Key").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string())
        .collect()
}

/// A TCP port free right now on 127.0.0.1, for a daemon spawned later to
/// listen on. A port the kernel hands out (`bind(0)`) comes from its
/// ephemeral range, where any other test's outgoing connection (a
/// PostgreSQL pool, an HTTP client) or simulator may take it in the seconds
/// before the daemon binds it, and the daemon then exits with "address in
/// use". So the port is picked below that range, where the kernel never
/// hands one out: from a per-process counter (no two tests of this binary
/// get the same one) starting at a per-process offset (two binaries running
/// at once rarely meet), skipping any port something already listens on.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    // Ports from 10000 up to the ephemeral range; a kernel configured to hand
    // out ports below that leaves nothing to pick: take one from the kernel.
    let (base, span) = (10_000, low.saturating_sub(10_000));
    if span < 1000 {
        return std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    }
    let offset = std::process::id() * 7919 % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (base + (offset + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {base} and {low}");
}
