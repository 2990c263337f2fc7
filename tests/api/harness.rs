//! The test harness: the real router in process, on a fresh database per test on either backend
//! (the kit's, `commerce-test-support`, like its tokens and invariants), a manual clock, and JSON
//! requests through the router.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use commerce::app::AppState;
use commerce::clock::ManualClock;
use commerce::config::Settings;
pub use commerce::store::Backend;
use commerce::store::Batching;
pub use commerce_test_support::database::{postgres_admin_url, Database as TestDb, Raw};
use commerce_test_support::token;
use http_body_util::BodyExt;
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
use serde_json::Value;
use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use tower::ServiceExt;

pub const SECRET: &str = "test-secret-of-thirty-two-bytes!";

/// Runs each named `async fn(Backend)` as two tests, `sqlite::name` and `postgres::name`, each
/// on a runtime of its own (see [`run`]). PostgreSQL tests fail when the server is unreachable,
/// unless `COMMERCE_TEST_SKIP_POSTGRES=1` says to skip them.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    $crate::harness::run(super::$name($crate::harness::Backend::Sqlite))
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    $crate::harness::run(async {
                        if $crate::harness::postgres_available().await {
                            super::$name($crate::harness::Backend::Postgres).await
                        }
                    })
                }
            )*
        }
    };
}

thread_local! {
    /// The metrics of the test whose runtime owns this thread.
    static TEST_METRICS: RefCell<Option<PrometheusHandle>> = const { RefCell::new(None) };
}

/// Runs a test as `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` would, with a
/// Prometheus recorder of its own on every thread of its runtime, which its servers serve on
/// /metrics. The `metrics` facade has one global recorder per process, shared by every test
/// running at the same time; this way a metric assertion sees only what its own test caused.
pub fn run(test: impl Future<Output = ()>) {
    // Leaked, so that no thread's pointer to it can outlive it.
    let recorder: &'static PrometheusRecorder =
        Box::leak(Box::new(commerce::http::metrics_builder().build_recorder()));
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_start(move || {
            // The thread ends with the runtime; the recorder outlives it.
            std::mem::forget(metrics::set_default_local_recorder(recorder));
            TEST_METRICS.set(Some(handle.clone()));
        })
        .build()
        .expect("runtime");
    // This thread polls the test's own future.
    let _local = metrics::set_default_local_recorder(recorder);
    TEST_METRICS.set(Some(recorder.handle()));
    runtime.block_on(test);
    TEST_METRICS.set(None);
}

/// The state as the test's servers run it: serving the test's own recorder, if it has one.
fn with_test_metrics(state: Arc<AppState>) -> Arc<AppState> {
    let Some(handle) = TEST_METRICS.with_borrow(Clone::clone) else {
        return state;
    };
    let mut state = Arc::into_inner(state).expect("a new state is not shared yet");
    state.metrics = handle;
    Arc::new(state)
}

pub async fn postgres_available() -> bool {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(&postgres_admin_url()).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(error) if std::env::var("COMMERCE_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("skipping a PostgreSQL test (COMMERCE_TEST_SKIP_POSTGRES=1): {error}");
            false
        }
        Err(error) => panic!(
            "PostgreSQL is unreachable at {} ({error}); start it, point \
             COMMERCE_TEST_POSTGRES_URL at one, or set COMMERCE_TEST_SKIP_POSTGRES=1 to skip",
            postgres_admin_url()
        ),
    }
}

/// A fresh, empty database of the kit's; dropped (PostgreSQL) or deleted (SQLite) afterwards.
pub async fn fresh_database(backend: Backend) -> TestDb {
    match backend {
        Backend::Sqlite => TestDb::sqlite("commerce_test"),
        Backend::Postgres => TestDb::postgres(&postgres_admin_url(), "commerce_test").await,
    }
    .expect("a fresh database")
}

async fn instance(url: &str, settings: Settings, clock: Arc<ManualClock>) -> Arc<AppState> {
    instance_batching(url, settings, clock, Batching::default()).await
}

async fn instance_batching(
    url: &str,
    settings: Settings,
    clock: Arc<ManualClock>,
    batching: Batching,
) -> Arc<AppState> {
    let pool = commerce::store::connect_batched(url, None, 16, batching)
        .await
        .expect("connect");
    pool.migrate().await.expect("migrate");
    with_test_metrics(AppState::new(pool, settings, SECRET, clock))
}

/// The documented defaults, but for the per-user write limit: most tests fire far more writes
/// per user than it allows (the tests of the limit set it themselves).
pub fn settings() -> Settings {
    Settings {
        user_write_quota: None,
        ..Settings::default()
    }
}

/// 2026-11-24 12:00 in Seoul.
pub fn default_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 0).unwrap()
}

pub struct TestApp {
    pub state: Arc<AppState>,
    pub router: Router,
    pub clock: Arc<ManualClock>,
    /// The same database, for checking stored state behind the API's back.
    raw: Raw,
    /// Kept for its lifetime: dropping it removes the database.
    _db: TestDb,
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        Self::with_settings(backend, settings()).await
    }

    pub async fn with_settings(backend: Backend, settings: Settings) -> TestApp {
        Self::on(fresh_database(backend).await, settings).await
    }

    /// The app on a database at `url` that the test prepared (and removes) itself.
    pub async fn at_url(_backend: Backend, url: &str) -> TestApp {
        Self::on(TestDb::borrowed(url), settings()).await
    }

    async fn on(db: TestDb, settings: Settings) -> TestApp {
        let clock = Arc::new(ManualClock::new(default_now()));
        let state = instance(&db.url, settings, clock.clone()).await;
        let router = state.router();
        TestApp {
            state,
            router,
            clock,
            raw: Raw::connect(&db.url).await,
            _db: db,
        }
    }

    /// The app as after a crash and restart: a new process state on the same database.
    pub async fn restart(self) -> TestApp {
        let settings = self.state.settings.clone();
        self.state.db.close().await;
        let state = instance(&self._db.url, settings, self.clock.clone()).await;
        let router = state.router();
        TestApp {
            state,
            router,
            clock: self.clock,
            raw: self.raw,
            _db: self._db,
        }
    }

    /// Another instance of the service on the same database, with the same clock.
    pub async fn second_instance(&self) -> Arc<AppState> {
        instance(
            &self._db.url,
            self.state.settings.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// Another instance on the same database that groups its writes as `batching` says.
    pub async fn batching_instance(&self, batching: Batching) -> Arc<AppState> {
        instance_batching(
            &self._db.url,
            self.state.settings.clone(),
            self.clock.clone(),
            batching,
        )
        .await
    }

    /// A GET to another instance's router.
    pub fn get_from(&self, instance: &Arc<AppState>, path: &str) -> Call {
        Call {
            method: Method::GET,
            ..self.post_to(instance, path)
        }
    }

    /// A PATCH to another instance's router.
    pub fn patch_to(&self, instance: &Arc<AppState>, path: &str) -> Call {
        Call {
            method: Method::PATCH,
            ..self.post_to(instance, path)
        }
    }

    /// A POST to another instance's router, as from this app's clients.
    pub fn post_to(&self, instance: &Arc<AppState>, path: &str) -> Call {
        Call {
            router: instance.router(),
            method: Method::POST,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Runs the outbox relay once, delivering pending events to the platform in-process.
    pub async fn deliver_events(&self) -> usize {
        commerce::outbox::deliver_pending(
            &self.state.relay(),
            &commerce::outbox::Transport::InProcess,
        )
        .await
        .expect("deliver events")
    }

    pub fn token(&self, user: i64) -> String {
        token::user(SECRET, user)
    }

    pub fn admin(&self) -> String {
        token::admin(SECRET)
    }

    pub fn call(&self, method: Method, path: &str) -> Call {
        Call {
            router: self.router.clone(),
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Call {
        self.call(Method::PATCH, path)
    }

    /// `POST /admin/products` with `body`, as the admin; the answer as it is.
    pub async fn create_product(&self, body: serde_json::Value) -> Response {
        self.post("/api/v1/admin/products")
            .token(&self.admin())
            .json(body)
            .send()
            .await
    }

    /// `PATCH /admin/products/{id}` with `body`, as the admin; the answer as it is.
    pub async fn patch_product(&self, id: i64, body: serde_json::Value) -> Response {
        self.patch(&format!("/api/v1/admin/products/{id}"))
            .token(&self.admin())
            .json(body)
            .send()
            .await
    }

    /// Creates a product through the admin API; returns its id.
    pub async fn product(&self, name: &str, price: i64, stock: i64) -> i64 {
        let response = self
            .create_product(serde_json::json!({"name": name, "price": price, "stock": stock}))
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        response.body["id"].as_i64().unwrap()
    }

    /// Charges a user's balance through the API.
    pub async fn charge(&self, user: i64, amount: i64) {
        let response = self
            .post("/api/v1/me/balance/charges")
            .token(&self.token(user))
            .json(serde_json::json!({"amount": amount}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    }

    pub async fn balance(&self, user: i64) -> i64 {
        let response = self
            .get("/api/v1/me/balance")
            .token(&self.token(user))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK);
        response.body["balance"].as_i64().unwrap()
    }

    /// A sample of this test's metrics as /metrics serves it, by name and labels as written
    /// there (`orders_failed_total{reason="OUT_OF_STOCK"}`); 0 when there is none.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").send().await.text;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The test's own pool on the app's database.
    pub fn raw(&self) -> &Raw {
        &self.raw
    }

    /// One number from the database, for checking stored state after a test.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.raw.scalar(sql).await
    }

    /// Changes the database behind the API's back (another instance, an operator, a fault).
    pub async fn execute(&self, sql: &str) {
        self.raw.execute(sql).await
    }
}

/// A request being built.
pub struct Call {
    router: Router,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Body>,
}

impl Call {
    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(self, body: Value) -> Self {
        self.raw(&body.to_string())
    }

    /// A body sent as JSON exactly as given (for malformed-input tests).
    pub fn raw(mut self, body: &str) -> Self {
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self.body = Some(Body::from(body.to_owned()));
        self
    }

    pub async fn send(self) -> Response {
        let mut request = Request::builder().method(self.method).uri(&self.path);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(self.body.unwrap_or_else(Body::empty))
            .expect("request");
        let response = self.router.oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
            text,
        }
    }
}

/// Sends every call at once, each on its own task, and returns the responses in call order.
pub async fn concurrently(calls: impl IntoIterator<Item = Call>) -> Vec<Response> {
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|call| tokio::spawn(call.send()))
        .collect();
    let mut responses = Vec::with_capacity(tasks.len());
    for task in tasks {
        responses.push(task.await.expect("request task"));
    }
    responses
}

/// How many responses have this status, or this problem code.
pub fn count_status(responses: &[Response], status: StatusCode) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

pub fn count_code(responses: &[Response], code: &str) -> usize {
    responses.iter().filter(|r| r.body["code"] == code).count()
}

#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        assert_eq!(self.body["code"], code, "body: {}", self.text);
        assert_eq!(self.body["status"], status.as_u16());
        assert!(
            self.body["title"].is_string()
                && self.body["detail"].is_string()
                && self.body["type"].is_string()
        );
    }
}
