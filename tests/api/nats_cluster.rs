//! A three-node NATS JetStream cluster that the test starts on loopback ports: the stream is
//! kept on all three nodes, and a node killed in the middle of an order load loses nothing:
//! every paid order reaches the platform and is counted once.

use futures::future::join_all;
use std::time::Duration;

use crate::harness::Backend;
use crate::platform::{buy, popular, ranking};
use crate::platform_nats::{
    free_port, nats_settings, on_nats, redeliver_the_stream, undelivered, wait_for_ranking,
    with_nats, NATS_SERVER,
};
use commerce::config::Settings;
use commerce::events::jetstream::JetStream;

const NODES: usize = 3;

/// The cluster's nodes, each with its own store; killed when dropped.
struct Cluster {
    nodes: Vec<Option<tokio::process::Child>>,
    client_ports: Vec<u16>,
    _stores: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let stores = tempfile::tempdir().expect("store dir");
        let client_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for node in 0..NODES {
            let routes: Vec<String> = (0..NODES)
                .filter(|&other| other != node)
                .map(|other| format!("nats://127.0.0.1:{}", route_ports[other]))
                .collect();
            let child = tokio::process::Command::new(NATS_SERVER)
                .args(["-a", "127.0.0.1", "-p", &client_ports[node].to_string()])
                .args(["-js", "-sd"])
                .arg(stores.path().join(format!("n{node}")))
                .args(["-n", &format!("n{node}"), "--cluster_name", "commerce-test"])
                .args([
                    "--cluster",
                    &format!("nats://127.0.0.1:{}", route_ports[node]),
                ])
                .args(["--routes", &routes.join(",")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("nats-server starts");
            nodes.push(Some(child));
        }
        for port in &client_ports {
            let mut up = false;
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_ok()
                {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(up, "node on port {port} did not listen");
        }
        let cluster = Cluster {
            nodes,
            client_ports,
            _stores: stores,
        };
        cluster.wait_for_jetstream().await;
        cluster
    }

    /// Until the nodes have elected JetStream's metadata leader, a stream cannot be created:
    /// wait for a replicated probe stream to be, then remove it.
    async fn wait_for_jetstream(&self) {
        let client = async_nats::connect(format!("nats://127.0.0.1:{}", self.client_ports[0]))
            .await
            .expect("connect to the cluster");
        let jetstream = async_nats::jetstream::new(client);
        let probe = async_nats::jetstream::stream::Config {
            name: "PROBE".into(),
            num_replicas: NODES,
            ..Default::default()
        };
        for _ in 0..60 {
            if jetstream.get_or_create_stream(probe.clone()).await.is_ok() {
                jetstream
                    .delete_stream("PROBE")
                    .await
                    .expect("delete the probe");
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("the cluster never elected a JetStream leader");
    }

    /// Every node, as a client lists a cluster.
    fn url(&self) -> String {
        self.client_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].take() {
            child.kill().await.expect("kill a node");
        }
    }
}

async fn a_node_lost_under_load_loses_no_event(backend: Backend) {
    let mut cluster = Cluster::start().await;
    let settings = Settings {
        nats_replicas: 3,
        ..nats_settings(&cluster.url())
    };
    let (app, transport, shutdown) = on_nats(backend, settings).await;
    let product = app.product("Replicated", 100, 10_000).await;

    // Orders in waves of 10 users at once; between the second and the third, the node that
    // leads the stream is killed (with one copy, the stream would be gone with it).
    let nats = transport.jetstream().unwrap();
    let mut sold = 0;
    for wave in 0..6 {
        if wave == 2 {
            wait_for_ranking(&app, vec![(product, sold)], Duration::from_secs(30)).await;
            let info = stream_info(&nats).await;
            let leader = info
                .cluster
                .and_then(|c| c.leader)
                .expect("a stream leader");
            let node = leader.trim_start_matches('n').parse().expect("a node name");
            cluster.kill(node).await;
        }
        let users = (wave * 10 + 1)..=(wave * 10 + 10);
        join_all(users.map(|user| buy(&app, user, product, 1 + user % 3))).await;
        sold += (wave * 10 + 1..=wave * 10 + 10)
            .map(|user| 1 + user % 3)
            .sum::<i64>();
    }
    wait_for_ranking(&app, vec![(product, sold)], Duration::from_secs(30)).await;
    assert_eq!(undelivered(&app).await, 0);

    let info = stream_info(&nats).await;
    assert_eq!(
        info.config.num_replicas, 3,
        "the stream is kept on three nodes"
    );
    // Delivering everything again from the surviving nodes changes nothing.
    redeliver_the_stream(&nats).await;
    assert_eq!(ranking(&popular(&app).await), vec![(product, sold)]);
    shutdown.cancel();
}

async fn stream_info(nats: &JetStream) -> async_nats::jetstream::stream::Info {
    let mut stream = nats.context().get_stream(nats.stream()).await.unwrap();
    stream.info().await.unwrap().clone()
}

/// NATS clustering is the same whatever the database: SQLite keeps the test short.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(skip_nats_tests, ignore = "built with COMMERCE_TEST_SKIP_NATS=1")]
async fn a_cluster_node_lost_under_load_loses_no_event() {
    with_nats(a_node_lost_under_load_loses_no_event, Backend::Sqlite).await
}
