//! The holdings store's contract, run by each backend's real-database test: set (inserted,
//! then replaced), read back per pair (a pair without a row is left out), given back by a
//! cancelled order's lines, counted from the paid orders when a limit is set and deleted when
//! it is cleared.

use commerce_domain::ids::UserId;
use commerce_store::order::{NewOrderRow, OrderLineRow};
use commerce_store::product::{Holding, NewProductRow};
use commerce_store::{Db, StoreError};

pub async fn purchase_holdings_are_set_released_counted_and_dropped(db: &Db) {
    let (u7, u8, u9) = (
        UserId::new(7).unwrap(),
        UserId::new(8).unwrap(),
        UserId::new(9).unwrap(),
    );
    let (lamp, held) = db
        .write(move |conn| {
            Box::pin(async move {
                let new = NewProductRow {
                    name: "Lamp",
                    price: 1000,
                    stock: 5,
                    sale_starts_at: None,
                    sale_ends_at: None,
                    max_per_user: Some(2),
                };
                let lamp = conn.insert_product(new, chrono::Utc::now()).await?.id;
                let holding = |user, quantity| Holding {
                    product: lamp,
                    user,
                    quantity,
                };
                conn.set_holdings(&[holding(u7, 1), holding(u8, 2)]).await?;
                conn.set_holdings(&[holding(u7, 2)]).await?;
                conn.release_holdings(u8, &[(lamp, 2)]).await?;
                let held = conn
                    .lock_holdings(&[(lamp, u7), (lamp, u8), (lamp, u9)])
                    .await?;
                Ok::<_, StoreError>((lamp, held))
            })
        })
        .await
        .expect("stored");
    let holding = |user, quantity| Holding {
        product: lamp,
        user,
        quantity,
    };
    assert_eq!(held, [holding(u7, 2), holding(u8, 0)]);
    assert_eq!(
        db.read()
            .await
            .unwrap()
            .product(lamp)
            .await
            .unwrap()
            .unwrap()
            .max_per_user,
        Some(2)
    );

    // u9 holds 3 in a paid order: counting replaces the rows by the orders' units.
    let counted = db
        .write(move |conn| {
            Box::pin(async move {
                let items = [OrderLineRow {
                    product_id: lamp.get(),
                    name: "Lamp".into(),
                    unit_price: 1000,
                    quantity: 3,
                    amount: 3000,
                }];
                let order = NewOrderRow {
                    user: u9,
                    total_amount: 3000,
                    discount_amount: 0,
                    paid_amount: 3000,
                    user_coupon_id: None,
                    created_at: chrono::Utc::now(),
                    items: &items,
                };
                conn.insert_orders(&[order]).await?;
                conn.reset_holdings(lamp, true).await?;
                let counted = conn.lock_holdings(&[(lamp, u7), (lamp, u9)]).await?;
                conn.reset_holdings(lamp, false).await?;
                let dropped = conn.lock_holdings(&[(lamp, u9)]).await?;
                Ok::<_, StoreError>((counted, dropped))
            })
        })
        .await
        .expect("stored");
    assert_eq!(counted, (vec![holding(u9, 3)], vec![]));
}
