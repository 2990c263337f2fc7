//! The data tests and loads start from, created over HTTP through the admin and user API of a
//! running server: products, fixed-discount coupons, charged balances.

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// POSTs `body` to `url` with `token`; the answer's status and JSON body (`null` if none).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// POSTs `body` to `url` and expects `expected`; the answer's body.
async fn expect(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
    expected: u16,
) -> anyhow::Result<Value> {
    let (status, answer) = post(client, &url, token, &body).await?;
    if status != expected {
        bail!("POST {url} answered {status}: {answer}");
    }
    Ok(answer)
}

fn id(answer: &Value) -> anyhow::Result<i64> {
    answer["id"].as_i64().context("an id in the answer")
}

/// A product; its id.
pub async fn create_product(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
    price: i64,
    stock: i64,
) -> anyhow::Result<i64> {
    create_product_with(client, base, admin, name, price, stock, json!({})).await
}

/// A product with more of the create request's fields (`controls`, an object: a sale window,
/// a purchase limit); its id.
pub async fn create_product_with(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
    price: i64,
    stock: i64,
    controls: Value,
) -> anyhow::Result<i64> {
    let mut body = json!({"name": name, "price": price, "stock": stock});
    if let (Some(body), Value::Object(controls)) = (body.as_object_mut(), controls) {
        body.extend(controls);
    }
    id(&expect(
        client,
        format!("{base}/api/v1/admin/products"),
        admin,
        body,
        201,
    )
    .await?)
}

/// A campaign of `total` coupons taking `discount` won off, valid for a week; its id.
pub async fn create_coupon(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
    discount: i64,
    total: i64,
) -> anyhow::Result<i64> {
    let body = json!({"name": name, "discount_type": "FIXED", "discount_value": discount,
                      "total_quantity": total, "valid_days": 7});
    id(&expect(
        client,
        format!("{base}/api/v1/admin/coupons"),
        admin,
        body,
        201,
    )
    .await?)
}

/// Charges the balance of the user whose token this is; the receipt.
pub async fn charge(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    amount: i64,
) -> anyhow::Result<Value> {
    let body = json!({"amount": amount});
    expect(
        client,
        format!("{base}/api/v1/me/balance/charges"),
        user,
        body,
        200,
    )
    .await
}
