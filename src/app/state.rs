//! The application state and the sub-states each capability and extractor takes from it
//! (axum `FromRef`): a handler asks only for what it uses.

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

use crate::audit::AuditState;
use crate::balance::{BalanceState, Limits};
use crate::clock::Clock;
use crate::config::Settings;
use crate::coupon::{CouponState, SoldOut};
use crate::http::{self, JwtKeys, WriteLimiter};
use crate::order::OrderState;
use crate::outbox;
use crate::platform::{Platform, PlatformState};
use crate::product::{ProductCache, ProductState};
use crate::store::Db;
use crate::webhook::{self, WebhookState};

/// Everything the service holds while it runs; handlers take parts of it.
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub jwt: JwtKeys,
    pub metrics: PrometheusHandle,
    pub outbox: outbox::Signal,
    /// Wakes this instance's webhook delivery worker.
    pub webhooks: webhook::Wake,
    pub popular: Arc<Platform>,
    pub sold_out_coupons: Arc<SoldOut>,
    pub products: Arc<ProductCache>,
    pub write_limiter: WriteLimiter,
}

impl AppState {
    pub fn new(
        db: Db,
        settings: Settings,
        jwt_secret: &str,
        clock: Arc<dyn Clock>,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            db,
            clock,
            jwt: JwtKeys::new(jwt_secret),
            metrics: http::metrics_recorder(),
            outbox: outbox::Signal::default(),
            webhooks: webhook::Wake::default(),
            popular: Arc::new(Platform::new(settings.popular_cache_ttl)),
            sold_out_coupons: Arc::default(),
            products: Arc::new(ProductCache::new(settings.product_cache_ttl)),
            write_limiter: WriteLimiter::new(settings.user_write_quota),
            settings,
        })
    }

    pub fn balance(&self) -> BalanceState {
        BalanceState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            limits: Limits {
                max_charge: self.settings.max_charge,
                max_balance: self.settings.max_balance,
            },
        }
    }

    pub fn product(&self) -> ProductState {
        ProductState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            cache: self.products.clone(),
        }
    }

    pub fn coupon(&self) -> CouponState {
        CouponState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            sold_out: self.sold_out_coupons.clone(),
        }
    }

    pub fn order(&self) -> OrderState {
        OrderState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            products: self.products.clone(),
            outbox: self.outbox.clone(),
            cancel_window: self.settings.order_cancel_window,
        }
    }

    pub fn platform(&self) -> PlatformState {
        PlatformState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            time_zone: self.settings.time_zone,
            daily_job_at: self.settings.daily_job_at,
            popular: self.popular.clone(),
        }
    }

    pub fn audit(&self) -> AuditState {
        AuditState {
            db: self.db.clone(),
        }
    }

    pub fn webhook(&self) -> WebhookState {
        WebhookState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            allow_private: self.settings.webhook_allow_private,
            wake: self.webhooks.clone(),
        }
    }

    /// The webhook worker: fan-out from the outbox and deliveries.
    pub fn webhook_worker(&self) -> Result<webhook::Worker, reqwest::Error> {
        webhook::Worker::new(
            self.db.clone(),
            self.clock.clone(),
            self.outbox.clone(),
            self.webhooks.clone(),
            self.settings.webhook_allow_private,
        )
    }

    /// What the outbox relay works with; events in this process go to the data platform.
    pub fn relay(&self) -> outbox::Relay {
        outbox::Relay {
            db: self.db.clone(),
            clock: self.clock.clone(),
            signal: self.outbox.clone(),
            consumer: Arc::new(self.platform()),
        }
    }
}

/// `FromRef<Arc<AppState>>` for each part, by the method that builds it.
macro_rules! parts {
    ($($part:ty => $build:expr),* $(,)?) => {$(
        impl FromRef<Arc<AppState>> for $part {
            fn from_ref(app: &Arc<AppState>) -> Self {
                $build(app.as_ref())
            }
        }
    )*};
}

parts! {
    BalanceState => AppState::balance,
    ProductState => AppState::product,
    CouponState => AppState::coupon,
    OrderState => AppState::order,
    PlatformState => AppState::platform,
    AuditState => AppState::audit,
    WebhookState => AppState::webhook,
}

impl FromRef<Arc<AppState>> for JwtKeys {
    fn from_ref(app: &Arc<AppState>) -> Self {
        app.jwt.clone()
    }
}

impl FromRef<Arc<AppState>> for WriteLimiter {
    fn from_ref(app: &Arc<AppState>) -> Self {
        app.write_limiter.clone()
    }
}
