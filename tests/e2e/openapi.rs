//! The published contract: the OpenAPI document and its offline reference page.

use crate::helpers::*;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_is_served_and_every_route_in_it_answers() {
    let app = spawn(Db::Sqlite).await;
    let spec = app.call(Method::GET, "/api/v1/openapi.json", None, None).await.expect(200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let url = path.replace("{id}", "probe-id");
            if path.ends_with("/stream") {
                // An event stream never ends: look at the status and headers only.
                let r = app.client.get(format!("{}{url}", app.base)).bearer_auth(&app.admin).send().await.unwrap();
                assert_eq!(r.status(), 200, "{path}");
                assert_eq!(r.headers()["content-type"], "text/event-stream", "{path}");
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, "post" | "put" | "patch").then(|| serde_json::json!({}));
            let r = app.call(m, &url, Some(&app.admin.clone()), body).await;
            let routed =
                !(r.status.as_u16() == 404 && r.body["message"] == "no such route") && r.status.as_u16() != 405;
            assert!(routed, "{method} {path} is in the spec but not served: {} {}", r.status, r.body);
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_page_works_offline() {
    let app = spawn(Db::Sqlite).await;
    let page = app.client.get(format!("{}/api/docs/", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let target = piece.split('"').next().unwrap();
            assert!(!target.contains("//"), "the page loads {target} from elsewhere");
            let asset = app
                .client
                .get(format!("{}/api/docs/{}", app.base, target.trim_start_matches("./")))
                .send()
                .await
                .unwrap();
            assert_eq!(asset.status(), 200, "{target}");
        }
    }
    let init = app
        .client
        .get(format!("{}/api/docs/swagger-initializer.js", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    app.stop().await;
}
