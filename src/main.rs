use clap::Parser;
use commerce::config::{Cli, Command};
use commerce::ids::UserId;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => commerce::app::serve(*args).await,
        Command::Migrate(args) => {
            let db = commerce::store::connect(&args.database_url, args.db_max_connections).await?;
            db.migrate().await?;
            db.close().await;
            eprintln!("schema is up to date ({})", db.backend().name());
            Ok(())
        }
        Command::Token(args) => {
            if let Some(problem) = commerce::http::auth::weak_secret(&args.jwt_secret) {
                anyhow::bail!("COMMERCE_JWT_SECRET {problem}");
            }
            let user = UserId::new(args.user).expect("clap checked the range");
            println!(
                "{}",
                commerce::app::token(&args.jwt_secret, user, args.admin, args.ttl)
            );
            Ok(())
        }
    }
}
