//! Unknown routes, wrong methods and request ids.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::harness::{BASE, TestApp, request, send};

#[tokio::test]
async fn unknown_routes_are_404_with_or_without_a_token() {
    let app = TestApp::new().await;
    let bearer = app.bearer();
    let paths = [
        "/nope".to_owned(),
        format!("{BASE}/nope"),
        format!("{BASE}/prompts/{}/versions/1.0.0/extra", Uuid::now_v7()),
        "/api/v2/oauth/clients/x/enable".to_owned(),
    ];
    let authorizations = [
        None,
        Some(bearer.as_str()),
        Some("Bearer not-a-real-token"),
        Some("Basic dXNlcjpwYXNz"),
    ];
    for path in &paths {
        for authorization in authorizations {
            for method in ["GET", "POST", "DELETE"] {
                let answer = send(&app.router, request(method, path, authorization)).await;
                let body = answer.expect_error(404, "not.found");
                assert!(
                    body.message.contains(path.as_str()),
                    "{method} {path} ({authorization:?}): {}",
                    body.message
                );
                assert_eq!(answer.header("www-authenticate"), None);
            }
        }
    }
}

#[tokio::test]
async fn unknown_prompt_id_is_a_404() {
    let app = TestApp::new().await;
    for id in [Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let uri = format!("{BASE}/prompts/{id}");
        let answer = send(&app.router, request("GET", &uri, Some(&app.bearer()))).await;
        answer.expect_error(404, "not.found");
    }
}

#[tokio::test]
async fn request_id_is_echoed_when_sent() {
    let app = TestApp::new().await;
    for (uri, status) in [("/healthz", 200), ("/nope", 404)] {
        let mut req = request("GET", uri, None);
        req.headers_mut()
            .insert("x-request-id", "caller-chosen-id-42".parse().unwrap());
        let answer = send(&app.router, req).await;
        assert_eq!(answer.status.as_u16(), status);
        assert_eq!(
            answer.header("x-request-id").as_deref(),
            Some("caller-chosen-id-42"),
            "{uri}"
        );
        if status != 200 {
            assert_eq!(answer.error().context_id, "caller-chosen-id-42");
        }
    }
}

#[tokio::test]
async fn request_id_is_a_fresh_uuid_when_not_sent() {
    let app = TestApp::new().await;
    let mut seen = BTreeSet::new();
    for uri in ["/healthz", "/nope", "/healthz"] {
        let answer = send(&app.router, request("GET", uri, None)).await;
        let id = answer.header("x-request-id").expect("X-Request-Id");
        Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id:?} is not a UUID: {e}"));
        assert!(seen.insert(id.clone()), "request id {id} reused");
        if answer.status.as_u16() == 404 {
            assert_eq!(answer.error().context_id, id);
        }
    }
}

/// The methods an `Allow` header lists.
fn allowed(answer: &crate::harness::Answer) -> BTreeSet<String> {
    answer
        .header("allow")
        .unwrap_or_else(|| panic!("405 without an Allow header: {:?}", answer.headers))
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

fn set(methods: &[&str]) -> BTreeSet<String> {
    methods.iter().map(|m| (*m).to_owned()).collect()
}

#[tokio::test]
async fn wrong_method_is_a_405_with_allow() {
    let app = TestApp::new().await;
    let prompt = format!("{BASE}/prompts/{}", Uuid::now_v7());
    let cases = [
        (
            "PATCH",
            format!("{BASE}/prompts"),
            set(&["GET", "HEAD", "POST"]),
        ),
        (
            "DELETE",
            format!("{BASE}/prompts"),
            set(&["GET", "HEAD", "POST"]),
        ),
        (
            "POST",
            prompt.clone(),
            set(&["GET", "HEAD", "PUT", "DELETE"]),
        ),
        ("PUT", format!("{prompt}/versions"), set(&["GET", "HEAD"])),
        (
            "DELETE",
            format!("{prompt}/versions/1.0.0"),
            set(&["GET", "HEAD"]),
        ),
        ("GET", "/oauth/token".to_owned(), set(&["POST"])),
        (
            "GET",
            "/api/v2/oauth/clients/x/disable".to_owned(),
            set(&["POST"]),
        ),
        ("POST", "/healthz".to_owned(), set(&["GET", "HEAD"])),
    ];
    for (method, uri, expected) in cases {
        // A token changes nothing: the method is wrong either way.
        for authorization in [None, Some(app.bearer())] {
            let answer = send(&app.router, request(method, &uri, authorization.as_deref())).await;
            answer.expect_error(405, "method.not.allowed");
            assert_eq!(allowed(&answer), expected, "{method} {uri}");
        }
    }
}
