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

/// A TCP port free right now on 127.0.0.1 (for a daemon's listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
