//! A fresh PostgreSQL database for one test, dropped when the test ends, even when it fails.
//! The server is the one `CHAT_TEST_POSTGRES_URL` names (a superuser's URL), by default the
//! machine's own; `scripts/test` starts a private one where there is none. A test that needs
//! PostgreSQL and cannot reach it fails, saying so: it never skips.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin =
            std::env::var("CHAT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
        let name = format!("chat_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({error}): run scripts/test, which starts \
                 one, or set CHAT_TEST_POSTGRES_URL"
            )
        });
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("a test database");
        Self {
            url: plain(&with_database(&admin, &name)),
            name,
            admin,
        }
    }
}

/// The URL without TLS, unless it asks for some: encrypting every connection of the suite costs
/// much in unoptimized test builds, and the TLS tests ask for it.
fn plain(url: &str) -> String {
    match url.contains("sslmode=") {
        true => url.to_owned(),
        false if url.contains('?') => format!("{url}&sslmode=disable"),
        false => format!("{url}?sslmode=disable"),
    }
}

/// The URL with its database (the last path segment) replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let server = match base.rsplit_once('/') {
        Some((server, _)) if server.contains("://") => server,
        _ => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs outside any runtime's reach (and during a panic): use a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(AssertSqlSafe(drop)).execute(&mut conn).await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

#[test]
fn a_url_gets_the_test_database_in_place_of_its_own() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "t"),
        "postgres://u@h:5432/t"
    );
    assert_eq!(
        with_database("postgres://u@h/db?sslmode=disable", "t"),
        "postgres://u@h/t?sslmode=disable"
    );
    assert_eq!(
        plain("postgres://u@h/t"),
        "postgres://u@h/t?sslmode=disable"
    );
    assert_eq!(
        plain("postgres://u@h/t?a=b"),
        "postgres://u@h/t?a=b&sslmode=disable"
    );
    assert_eq!(
        plain("postgres://u@h/t?sslmode=require"),
        "postgres://u@h/t?sslmode=require"
    );
}
