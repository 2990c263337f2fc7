//! `COMMERCE_TEST_SKIP_NATS=1` at build time compiles the tests that need NATS as ignored, so a
//! run without NATS lists them as ignored instead of failing them or passing them unrun:
//! libtest cannot mark a test ignored once it is running.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_nats_tests)");
    println!("cargo::rerun-if-env-changed=COMMERCE_TEST_SKIP_NATS");
    if std::env::var("COMMERCE_TEST_SKIP_NATS").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_nats_tests");
    }
}
