//! The OpenAPI document as clients are generated from it: list items and variants are named
//! schemas, everything a response always carries is required, and each operation names the
//! error codes it answers, from the one list the server builds its problems from.

use crate::harness::{settings, Backend, Response, TestApp};
use crate::on_both_backends;
use axum::http::StatusCode;
use commerce::http::ErrorCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

fn document() -> Value {
    serde_json::to_value(commerce::app::openapi(&settings())).unwrap()
}

/// Follows a `$ref` to its component.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(path) => {
            let name = path.strip_prefix("#/components/schemas/").unwrap();
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{path} does not exist");
            target
        }
        None => schema,
    }
}

/// Every schema nested in `schema`, itself included, without following references.
fn nested<'a>(schema: &'a Value, found: &mut Vec<&'a Value>) {
    found.push(schema);
    for key in ["items", "additionalProperties"] {
        if schema[key].is_object() {
            nested(&schema[key], found);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for item in schema[key].as_array().into_iter().flatten() {
            nested(item, found);
        }
    }
    for property in schema["properties"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        nested(property, found);
    }
}

fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            found.push((format!("{} {path}", method.to_uppercase()), operation));
        }
    }
    found
}

/// The codes an operation documents, by status: the names of its problem examples.
fn documented(operation: &Value) -> BTreeMap<u16, BTreeSet<String>> {
    let mut codes = BTreeMap::new();
    for (status, response) in operation["responses"].as_object().unwrap() {
        let examples = &response["content"]["application/problem+json"]["examples"];
        if let Some(examples) = examples.as_object() {
            codes.insert(status.parse().unwrap(), examples.keys().cloned().collect());
        }
    }
    codes
}

fn all_codes() -> BTreeSet<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

#[test]
fn every_list_refers_to_its_item_schema() {
    let doc = document();
    let mut schemas: Vec<&Value> = Vec::new();
    for schema in doc["components"]["schemas"].as_object().unwrap().values() {
        nested(schema, &mut schemas);
    }
    for (_, operation) in operations(&doc) {
        let bodies = operation["requestBody"]["content"].as_object().into_iter();
        let answers = operation["responses"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|r| r["content"].as_object());
        for content in bodies.chain(answers) {
            for media in content.values() {
                nested(&media["schema"], &mut schemas);
            }
        }
    }
    let lists: Vec<_> = schemas.iter().filter(|s| s["items"].is_object()).collect();
    assert!(
        lists.len() >= 8,
        "pages, order lines, popular and daily items"
    );
    for list in lists {
        assert!(
            list["items"]["$ref"].is_string(),
            "inline list items: {list}"
        );
    }
    let page = &doc["components"]["schemas"]["Page_Product"];
    assert_eq!(
        page["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/Product"
    );
}

#[test]
fn every_property_a_response_always_carries_is_required() {
    let doc = document();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&Value> = Vec::new();
    for (_, operation) in operations(&doc) {
        for response in operation["responses"].as_object().unwrap().values() {
            for media in response["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
            {
                todo.push(&media["schema"]);
            }
        }
    }
    // Responses are serialized from Rust structs without `skip_serializing_if`: every field is
    // always there, `null` where it has no value.
    while let Some(schema) = todo.pop() {
        if let Some(name) = schema["$ref"].as_str() {
            if !seen.insert(name) {
                continue;
            }
        }
        let mut parts = Vec::new();
        nested(resolve(&doc, schema), &mut parts);
        for part in parts {
            if part["$ref"].is_string() {
                todo.push(part);
            }
            let Some(properties) = part["properties"].as_object() else {
                continue;
            };
            let required: BTreeSet<&str> = part["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for name in properties.keys() {
                assert!(
                    required.contains(name.as_str()),
                    "{name} not required in {part}"
                );
            }
        }
    }
    for (schema, field) in [
        ("Order", "user_coupon_id"),
        ("Order", "cancelled_at"),
        ("HistoryEntry", "order_id"),
        ("UserCoupon", "used_at"),
        ("Coupon", "issue_starts_at"),
        ("Coupon", "issue_ends_at"),
        ("Page_Order", "next_cursor"),
    ] {
        let property = &doc["components"]["schemas"][schema]["properties"][field];
        assert!(
            property["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("null"))),
            "{schema}.{field} is nullable: {property}"
        );
        assert!(seen.contains(format!("#/components/schemas/{schema}").as_str()));
    }
}

#[test]
fn problem_codes_are_the_servers_one_list() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ProblemBody"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    let listed: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, codes);
    // Every code is answered somewhere: by an operation, or by the router itself.
    let mut answered: BTreeSet<String> = ["NOT_FOUND", "METHOD_NOT_ALLOWED", "INTERNAL"]
        .map(String::from)
        .into();
    for (_, operation) in operations(&doc) {
        answered.extend(documented(operation).into_values().flatten());
    }
    assert_eq!(answered, all_codes());
}

#[test]
fn each_operation_names_the_codes_it_answers() {
    let doc = document();
    for (what, operation) in operations(&doc) {
        for (status, codes) in documented(operation) {
            let response = &operation["responses"][status.to_string()];
            let examples = &response["content"]["application/problem+json"]["examples"];
            for code in &codes {
                assert!(all_codes().contains(code), "{what}: unknown {code}");
                let example = &examples[code]["value"];
                assert_eq!(example["code"], json!(code), "{what} {status}");
                assert_eq!(example["status"], json!(status), "{what} {code}");
            }
            let retries = codes.iter().any(|code| {
                ErrorCode::ALL
                    .iter()
                    .any(|c| c.as_str() == code && c.retries())
            });
            assert_eq!(
                response["headers"]["Retry-After"].is_object(),
                retries,
                "{what} {status}: Retry-After"
            );
        }
    }
    let idempotent = ["IDEMPOTENCY_KEY_IN_USE", "IDEMPOTENCY_KEY_REUSED"];
    for (operation, status, codes) in [
        (
            "POST /api/v1/orders",
            409,
            &[
                "PRODUCT_NOT_ON_SALE",
                "PURCHASE_LIMIT_EXCEEDED",
                "OUT_OF_STOCK",
                "COUPON_NOT_USABLE",
                "INSUFFICIENT_BALANCE",
                "IDEMPOTENCY_KEY_IN_USE",
            ][..],
        ),
        (
            "POST /api/v1/orders",
            400,
            &["INVALID_ORDER", "VALIDATION_FAILED"],
        ),
        ("POST /api/v1/orders", 404, &["PRODUCT_NOT_FOUND"]),
        ("POST /api/v1/orders", 422, &idempotent[1..]),
        ("POST /api/v1/orders", 429, &["RATE_LIMITED"]),
        (
            "POST /api/v1/me/balance/charges",
            409,
            &["BALANCE_LIMIT_EXCEEDED", "IDEMPOTENCY_KEY_IN_USE"],
        ),
        (
            "POST /api/v1/me/balance/charges",
            400,
            &["INVALID_AMOUNT", "VALIDATION_FAILED"],
        ),
        (
            "POST /api/v1/orders/{id}/cancel",
            409,
            &["ORDER_NOT_CANCELLABLE", "IDEMPOTENCY_KEY_IN_USE"],
        ),
        ("POST /api/v1/orders/{id}/cancel", 404, &["ORDER_NOT_FOUND"]),
        (
            "POST /api/v1/coupons/{id}/issue",
            409,
            &[
                "COUPON_SOLD_OUT",
                "COUPON_ALREADY_ISSUED",
                "COUPON_NOT_ISSUABLE",
            ],
        ),
        ("GET /api/v1/coupons/{id}", 404, &["COUPON_NOT_FOUND"]),
        ("GET /api/v1/products/{id}", 404, &["PRODUCT_NOT_FOUND"]),
        ("PATCH /api/v1/admin/products/{id}", 403, &["FORBIDDEN"]),
        ("GET /api/v1/me/balance", 401, &["UNAUTHORIZED"]),
        ("GET /api/v1/products", 503, &["UNAVAILABLE"]),
    ] {
        let (_, found) = operations(&doc)
            .into_iter()
            .find(|(what, _)| what == operation)
            .unwrap();
        let listed = documented(found).remove(&status).unwrap_or_default();
        let expected: BTreeSet<String> = codes.iter().map(|c| c.to_string()).collect();
        assert_eq!(listed, expected, "{operation} {status}");
    }
    // Where the key is honoured, both its answers are named.
    for operation in [
        "POST /api/v1/me/balance/charges",
        "POST /api/v1/orders",
        "POST /api/v1/orders/{id}/cancel",
        "POST /api/v1/admin/orders/{id}/cancel",
    ] {
        let (_, found) = operations(&doc)
            .into_iter()
            .find(|(w, _)| w == operation)
            .unwrap();
        let named: BTreeSet<String> = documented(found).into_values().flatten().collect();
        assert!(idempotent.iter().all(|c| named.contains(*c)), "{operation}");
    }
}

#[test]
fn coupon_variants_are_named_and_told_apart_by_discount_type() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["NewCoupon"]["discriminator"],
        json!({"propertyName": "discount_type", "mapping": {
            "FIXED": "#/components/schemas/NewFixedCoupon",
            "RATE": "#/components/schemas/NewRateCoupon",
        }})
    );
    for (variant, kind, max) in [
        ("NewFixedCoupon", "FIXED", 1_000_000_000_000_i64),
        ("NewRateCoupon", "RATE", 100),
    ] {
        let properties = &schemas[variant]["properties"];
        assert_eq!(
            properties["discount_type"],
            json!({"allOf": [{"$ref": "#/components/schemas/DiscountType"}], "const": kind})
        );
        assert_eq!(properties["discount_value"]["maximum"], json!(max));
    }
}

#[test]
fn product_patch_fields_are_not_nullable() {
    let doc = document();
    let patch = &doc["components"]["schemas"]["ProductPatch"];
    for field in ["name", "price", "stock"] {
        let property = &patch["properties"][field];
        assert!(property["type"].is_string(), "{field}: {property}");
    }
}

/// Whether a property's schema takes `null` and a date-time string.
fn nullable_date_time(property: &Value) -> bool {
    let types = |schema: &Value| -> Vec<Value> {
        match &schema["type"] {
            Value::Array(types) => types.clone(),
            Value::Null => Vec::new(),
            one => vec![one.clone()],
        }
    };
    let branches: Vec<&Value> = match property["oneOf"].as_array() {
        Some(branches) => branches.iter().collect(),
        None => vec![property],
    };
    let all: Vec<Value> = branches.iter().flat_map(|b| types(b)).collect();
    all.contains(&json!("null"))
        && all.contains(&json!("string"))
        && branches.iter().any(|b| b["format"] == "date-time")
}

#[test]
fn the_sale_window_is_nullable_in_a_patch_and_always_in_a_product() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for field in ["sale_starts_at", "sale_ends_at"] {
        for schema in ["ProductPatch", "Product"] {
            let property = &schemas[schema]["properties"][field];
            assert!(nullable_date_time(property), "{schema}.{field}: {property}");
        }
        assert!(
            schemas["Product"]["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field} is always in a product"
        );
        let property = &schemas["NewProduct"]["properties"][field];
        assert!(
            nullable_date_time(property),
            "NewProduct.{field}: {property}"
        );
    }
}

#[test]
fn the_purchase_limit_is_a_nullable_integer_of_1_to_1000() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    for schema in ["NewProduct", "ProductPatch", "Product"] {
        let property = &schemas[schema]["properties"]["max_per_user"];
        assert_eq!(property["type"], json!(["integer", "null"]), "{schema}");
        assert_eq!(property["minimum"], 1, "{schema}: {property}");
        assert_eq!(property["maximum"], 1000, "{schema}: {property}");
    }
    assert!(schemas["Product"]["required"]
        .as_array()
        .unwrap()
        .contains(&json!("max_per_user")));
}

/// An answer is documented for the operation that gave it.
fn assert_documented(doc: &Value, operation: &str, answer: &Response, code: &str) {
    answer.assert_problem(answer.status, code);
    let (_, found) = operations(doc)
        .into_iter()
        .find(|(w, _)| w == operation)
        .unwrap();
    let listed = documented(found)
        .remove(&answer.status.as_u16())
        .unwrap_or_default();
    assert!(
        listed.contains(code),
        "{operation}: {} {code} not documented",
        answer.status
    );
    if ErrorCode::ALL
        .iter()
        .any(|c| c.as_str() == code && c.retries())
    {
        assert!(
            answer.headers.contains_key("retry-after"),
            "{operation}: {code}"
        );
    }
}

async fn answers_are_the_codes_their_operation_documents(backend: Backend) {
    let app = TestApp::new(backend).await;
    let doc = app.get("/openapi.json").send().await.body;
    let user = app.token(7);
    let product = app.product("Earbuds", 1000, 1).await;

    let charge = "POST /api/v1/me/balance/charges";
    let answer = app
        .post("/api/v1/me/balance/charges")
        .token(&user)
        .json(json!({"amount": 0}))
        .send()
        .await;
    assert_documented(&doc, charge, &answer, "INVALID_AMOUNT");

    let order = "POST /api/v1/orders";
    let place = |quantity: i64| {
        app.post("/api/v1/orders")
            .token(&user)
            .json(json!({"items": [{"product_id": product, "quantity": quantity}]}))
    };
    assert_documented(&doc, order, &place(1).send().await, "INSUFFICIENT_BALANCE");
    assert_documented(&doc, order, &place(2).send().await, "OUT_OF_STOCK");
    assert_documented(&doc, order, &place(0).send().await, "INVALID_ORDER");
    let keyed = place(1).header("Idempotency-Key", "k-1").send().await;
    assert_documented(&doc, order, &keyed, "INSUFFICIENT_BALANCE");
    let reused = place(2).header("Idempotency-Key", "k-1").send().await;
    assert_documented(&doc, order, &reused, "IDEMPOTENCY_KEY_REUSED");

    app.charge(7, 5000).await;
    let placed = place(1).send().await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text);
    let cancel = format!("/api/v1/orders/{}/cancel", placed.body["id"]);
    assert_eq!(
        app.post(&cancel).token(&user).send().await.status,
        StatusCode::OK
    );
    let limited = app
        .post("/api/v1/admin/products")
        .token(&app.admin())
        .json(json!({"name": "Limited", "price": 1, "stock": 5, "max_per_user": 1}))
        .send()
        .await
        .body["id"]
        .clone();
    let over = app
        .post("/api/v1/orders")
        .token(&user)
        .json(json!({"items": [{"product_id": limited, "quantity": 2}]}))
        .send()
        .await;
    assert_documented(&doc, order, &over, "PURCHASE_LIMIT_EXCEEDED");
    let again = app.post(&cancel).token(&user).send().await;
    assert_documented(
        &doc,
        "POST /api/v1/orders/{id}/cancel",
        &again,
        "ORDER_NOT_CANCELLABLE",
    );

    let issue = app
        .post("/api/v1/coupons/99/issue")
        .token(&user)
        .send()
        .await;
    assert_documented(
        &doc,
        "POST /api/v1/coupons/{id}/issue",
        &issue,
        "COUPON_NOT_FOUND",
    );
}

/// A field that cannot be cleared is refused as `null`, naming it, and nothing changes.
async fn a_null_product_field_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let doc = app.get("/openapi.json").send().await.body;
    let product = app.product("Earbuds", 1000, 5).await;
    let path = format!("/api/v1/admin/products/{product}");
    for field in ["name", "price", "stock"] {
        let answer = app
            .patch(&path)
            .token(&app.admin())
            .json(Value::Object(
                [(field.to_owned(), Value::Null)].into_iter().collect(),
            ))
            .send()
            .await;
        assert_documented(
            &doc,
            "PATCH /api/v1/admin/products/{id}",
            &answer,
            "VALIDATION_FAILED",
        );
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{detail}");
    }
    let read = app.get(&format!("/api/v1/products/{product}")).send().await;
    assert_eq!(
        read.body,
        json!({"id": product, "name": "Earbuds", "price": 1000, "stock": 5,
               "sale_starts_at": null, "sale_ends_at": null,
               "max_per_user": null})
    );
    let changed = app
        .patch(&path)
        .token(&app.admin())
        .json(json!({"stock": 7}))
        .send()
        .await;
    assert_eq!(changed.body["stock"], 7, "{}", changed.text);
    assert_eq!(changed.body["name"], "Earbuds");
}

on_both_backends!(
    answers_are_the_codes_their_operation_documents,
    a_null_product_field_is_refused,
);
