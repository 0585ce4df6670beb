//! The `caseflow` binary as an operator meets it: configuration errors, secrets, admin
//! commands and `serve --demo` (what `make run` runs).

use crate::helpers::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run caseflow");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn configuration_errors_exit_2_and_name_the_key() {
    let cases = [
        ("CASEFLOW__SERVER__BINDD", "x", "bindd"),
        ("CASEFLOW__DATABASE__URL", "mysql://db/caseflow", "database.url"),
        ("CASEFLOW__SERVER__ENVIRONMENT", "production", "auth.jwt_secret"),
        ("CASEFLOW__LIMITS__MAX_PAGE_SIZE", "many", "max_page_size"),
    ];
    for (key, value, named) in cases {
        let (code, _, err) = run(caseflow().env(key, value).arg("check-config"));
        assert_eq!(code, 2, "{key}={value}: {err}");
        assert!(err.contains(named), "{key}={value}: {err}");
    }
    let (code, _, err) = run(caseflow().args(["--config", "/nonexistent/caseflow.toml", "check-config"]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/caseflow.toml"), "{err}");
}

#[test]
fn check_config_never_prints_secrets() {
    let (code, out, _) = run(caseflow()
        .env("CASEFLOW__DATABASE__URL", "postgres://caseflow:hunter2-db@localhost/caseflow")
        .env("CASEFLOW__AUTH__JWT_SECRET", "a-very-secret-signing-key-0123456789")
        .arg("check-config"));
    assert_eq!(code, 0);
    assert!(out.contains("[redacted]"), "{out}");
    for secret in ["hunter2-db", "a-very-secret-signing-key", "caseflow-demo"] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_agent_makes_a_working_login() {
    let url = database_url(Db::Sqlite);
    let (code, out, err) = run(caseflow().env("CASEFLOW__DATABASE__URL", &url).arg("migrate"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("up to date"));

    let mut child = caseflow()
        .env("CASEFLOW__DATABASE__URL", &url)
        .args([
            "admin",
            "create-agent",
            "--email",
            "Ops@Caseflow.test",
            "--name",
            "Ops",
            "--role",
            "supervisor",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a-long-enough-password\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("created supervisor"));

    // A second agent with the same email is refused with a clear message.
    let (code, _, err) = run(caseflow().env("CASEFLOW__DATABASE__URL", &url).args([
        "admin",
        "create-agent",
        "--email",
        "ops@caseflow.test",
        "--name",
        "Again",
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");

    let (code, out, err) = run(caseflow().env("CASEFLOW__DATABASE__URL", &url).args([
        "admin",
        "create-token",
        "--name",
        "ci",
        "--scopes",
        "read",
    ]));
    assert_eq!(code, 0, "{err}");
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("cfk_"), "{out}");

    // The server started on that database accepts both.
    let mut s = settings(Db::Sqlite, &[]);
    s.database.url = caseflow_app::settings::Secret::new(url);
    let running = caseflow::start(s, std::net::TcpListener::bind("127.0.0.1:0").unwrap()).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ops@caseflow.test", "password": "a-long-enough-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{base}/api/v1/cases")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_seeds_an_empty_database_and_prints_a_working_login() {
    let url = database_url(Db::Sqlite);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = caseflow()
        .env("CASEFLOW__DATABASE__URL", &url)
        .env("CASEFLOW__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("CASEFLOW__SERVER__PUBLIC_URL", &base)
        .env("CASEFLOW__METRICS__BIND", "127.0.0.1:0")
        .args(["serve", "--demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..120 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The banner is printed after seeding; give it a moment once the port answers.
    let mut cases = serde_json::Value::Null;
    for _ in 0..40 {
        let login = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": "admin@caseflow.test", "password": "caseflow-demo"}))
            .send()
            .await;
        if let Ok(r) = login {
            if r.status() == 200 {
                let token = r.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
                cases = client
                    .get(format!("{base}/api/v1/cases?limit=100"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if cases["items"].as_array().is_some_and(|a| a.len() >= 8) {
                    break;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(up, "server never became ready");
    assert!(stdout.contains("Demo login: admin@caseflow.test / caseflow-demo"), "{stdout}");
    let items = cases["items"].as_array().expect("demo cases listed");
    let channels: std::collections::HashSet<&str> = items.iter().map(|c| c["channel"].as_str().unwrap()).collect();
    assert_eq!(items.len(), 8);
    assert!(["email", "web", "chat", "api"].iter().all(|c| channels.contains(c)), "{channels:?}");
}
