//! The HTTP API against a real server on port 0 with a fresh database, on both backends;
//! plus the binary itself (run command, unknown database scheme, `user add`).

mod common;

#[path = "api/openapi.rs"]
mod openapi;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use chrono::Utc;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use mdt_coordinator::domain::{EmailAddress, Password, PersonName, Role, Specialty};
use mdt_coordinator::routes::users::{create_account, ValidUser};

use common::clinic::{expect, referral, Account, Clinic};
use common::{Backend, TestApp, JWT_SECRET};

const PASSWORD: &str = "correct horse battery staple";

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend available")
}

async fn add_user(app: &TestApp, email: &str, role: Role) {
    let valid = ValidUser {
        email: EmailAddress::parse(email).unwrap(),
        name: PersonName::parse("Test Person").unwrap(),
        role,
        specialties: vec![Specialty::parse("spinal").unwrap()],
        organisation: None,
        password: Password::parse(PASSWORD).unwrap(),
    };
    create_account(&app.state, valid, None, None).await.unwrap();
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Signs in and returns (access token, refresh cookie value).
async fn sign_in(app: &TestApp, email: &str) -> (String, String) {
    let res = login(app, email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = refresh_cookie(&res).expect("refresh cookie");
    let body: Value = res.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_string(), cookie)
}

fn refresh_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let value = v.strip_prefix("mdt_refresh=")?.split(';').next()?;
        (!value.is_empty()).then(|| value.to_string())
    })
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.http.get(app.url("/api/me")).bearer_auth(token).send().await.unwrap()
}

async fn refresh(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/auth/refresh"))
        .header("cookie", format!("mdt_refresh={cookie}"))
        .send()
        .await
        .unwrap()
}

async fn error_code(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or("<no code>").to_string())
}

async fn login_succeeds_and_me_shows_the_user(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "esp@example.org", Role::Practitioner).await;
    let res = login(&app, "ESP@example.org", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let set_cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/api/auth"), "{set_cookie}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() <= 900);
    assert_eq!(body["user"]["role"], "practitioner");
    assert!(body["user"].get("password_hash").is_none());
    let res = me(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["email"], "esp@example.org");
    assert_eq!(me["specialties"], json!(["spinal"]));
    let audit = app.state.store.audit_events().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "login_succeeded"));
}

async fn wrong_password_and_unknown_user_look_the_same(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "esp@example.org", Role::Practitioner).await;
    let wrong = login(&app, "esp@example.org", "not the password at all").await;
    let unknown = login(&app, "nobody@example.org", PASSWORD).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(refresh_cookie(&wrong).is_none());
    let (a, b) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(a, b);
    assert!(a.contains("invalid_credentials"));
    let failures = app
        .state
        .store
        .audit_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "login_failed")
        .count();
    assert_eq!(failures, 2);
}

fn forge(claims: Value, alg: Algorithm, kid: Option<&str>, key: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, &claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
}

async fn bad_tokens_are_refused(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "esp@example.org", Role::Practitioner).await;
    let (token, _) = sign_in(&app, "esp@example.org").await;
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);
    let sub = app.state.store.list_users().await.unwrap()[0].id.to_string();
    let now = Utc::now().timestamp();
    let claims = |iss: &str, aud: Option<&str>, exp: i64| {
        let mut c =
            json!({ "iss": iss, "sub": sub, "exp": exp, "iat": now, "jti": "x", "typ": "access" });
        if let Some(aud) = aud {
            c["aud"] = json!(aud);
        }
        c
    };
    let signed = |c: Value| forge(c, Algorithm::HS256, Some("k1"), JWT_SECRET);
    // A correctly forged token is accepted, so each refusal below is for its one defect.
    let good = signed(claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600));
    assert_eq!(me(&app, &good).await.status(), StatusCode::OK);

    let expired = signed(claims("mdt-coordinator", Some("mdt-coordinator-api"), now - 120));
    let wrong_aud = signed(claims("mdt-coordinator", Some("another-service"), now + 600));
    let missing_aud = signed(claims("mdt-coordinator", None, now + 600));
    let wrong_iss = signed(claims("someone-else", Some("mdt-coordinator-api"), now + 600));
    let wrong_key = forge(
        claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600),
        Algorithm::HS256,
        Some("k1"),
        "a-different-key-that-is-also-long-enough!!",
    );
    let wrong_kid = forge(
        claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600),
        Algorithm::HS256,
        Some("k0"),
        JWT_SECRET,
    );
    let mut purpose = claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600);
    purpose["typ"] = json!("live_ticket");
    let wrong_purpose = signed(purpose);
    // alg "none": header and payload, empty signature.
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT", "kid": "k1" })),
        b64(&claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600))
    );
    // Tampered: payload swapped for one naming another role/subject, signature kept.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut payload = claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 6000);
    payload["sub"] = json!(uuid::Uuid::new_v4().to_string());
    parts[1] = b64(&payload);
    let tampered = parts.join(".");

    let no_kid = forge(
        claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600),
        Algorithm::HS256,
        None,
        JWT_SECRET,
    );
    let hs512 = forge(
        claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600),
        Algorithm::HS512,
        Some("k1"),
        JWT_SECRET,
    );
    let mut no_exp_claims = claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600);
    no_exp_claims.as_object_mut().unwrap().remove("exp");
    let no_exp = signed(no_exp_claims);
    let mut no_sub_claims = claims("mdt-coordinator", Some("mdt-coordinator-api"), now + 600);
    no_sub_claims.as_object_mut().unwrap().remove("sub");
    let no_sub = signed(no_sub_claims);
    for (name, token, code) in [
        ("expired", expired.as_str(), "token_expired"),
        ("wrong audience", &wrong_aud, "invalid_token"),
        ("missing aud", &missing_aud, "invalid_token"),
        ("wrong issuer", &wrong_iss, "invalid_token"),
        ("wrong key", &wrong_key, "invalid_token"),
        ("wrong kid", &wrong_kid, "invalid_token"),
        ("wrong purpose", &wrong_purpose, "invalid_token"),
        ("alg none", &none, "invalid_token"),
        ("tampered", &tampered, "invalid_token"),
        ("garbage", "not.a.token", "invalid_token"),
        ("no kid", &no_kid, "invalid_token"),
        ("HS512 with the same key", &hs512, "invalid_token"),
        ("no exp", &no_exp, "invalid_token"),
        ("no sub", &no_sub, "invalid_token"),
    ] {
        let res = me(&app, token).await;
        assert_eq!(
            res.headers().get("www-authenticate").map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{name}"
        );
        assert_eq!(error_code(res).await, (StatusCode::UNAUTHORIZED, code.to_string()), "{name}");
    }
    let res = app.http.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(error_code(res).await, (StatusCode::UNAUTHORIZED, "missing_token".to_string()));
}

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "esp@example.org", Role::Practitioner).await;
    let (_, first) = sign_in(&app, "esp@example.org").await;
    let res = refresh(&app, &first).await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = refresh_cookie(&res).expect("rotated cookie");
    assert_ne!(first, second);
    let body: Value = res.json().await.unwrap();
    assert_eq!(me(&app, body["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);

    // The old token again: reuse. The family (including `second`) is revoked.
    let reuse = refresh(&app, &first).await;
    assert_eq!(
        error_code(reuse).await,
        (StatusCode::UNAUTHORIZED, "refresh_token_reused".to_string())
    );
    let after = refresh(&app, &second).await;
    assert_eq!(
        error_code(after).await,
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token".to_string())
    );
    assert!(app
        .state
        .store
        .audit_events()
        .await
        .unwrap()
        .iter()
        .any(|e| e.action == "refresh_token_reused"));

    // Logout ends a fresh family too.
    let (_, third) = sign_in(&app, "esp@example.org").await;
    let out = app
        .http
        .post(app.url("/api/auth/logout"))
        .header("cookie", format!("mdt_refresh={third}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(refresh(&app, &third).await.status(), StatusCode::UNAUTHORIZED);
}

/// A fresh visit (no refresh cookie at all) asks to refresh: that is "not signed in",
/// answered `204` with nothing in it, not a `401` the browser logs as an error. A cookie
/// that is there but empty or unknown is still refused.
async fn refresh_without_a_cookie_is_not_an_error(backend: Backend) {
    let app = app(backend).await;
    let none = app.http.post(app.url("/api/auth/refresh")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::NO_CONTENT);
    assert!(refresh_cookie(&none).is_none(), "no cookie is set or cleared");
    assert_eq!(none.bytes().await.unwrap().len(), 0, "an empty body");
    for presented in ["", "not-a-token"] {
        assert_eq!(
            error_code(refresh(&app, presented).await).await,
            (StatusCode::UNAUTHORIZED, "invalid_refresh_token".to_string()),
            "cookie {presented:?}"
        );
    }
    assert!(app.state.store.audit_events().await.unwrap().is_empty(), "nothing audited");
}

async fn rapid_wrong_passwords_are_rate_limited(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "esp@example.org", Role::Practitioner).await;
    for i in 1..=10 {
        let res = login(&app, "esp@example.org", "wrong password attempt").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let res = login(&app, "esp@example.org", "wrong password attempt").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(error_code(res).await.1, "rate_limited");
    // Even the right password waits now: the limit is per account.
    assert_eq!(
        login(&app, "esp@example.org", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn rate_limit_per_address_covers_many_accounts(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.auth.login_attempts_per_address_per_minute = 5)
        .await
        .unwrap();
    for i in 0..5 {
        let res = login(&app, &format!("user{i}@example.org"), "whatever password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login(&app, "user9@example.org", "whatever password").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn only_coordinators_manage_users(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "esp@example.org", Role::Practitioner).await;
    add_user(&app, "coord@example.org", Role::Coordinator).await;
    let (esp, _) = sign_in(&app, "esp@example.org").await;
    let (coord, _) = sign_in(&app, "coord@example.org").await;
    let new = json!({ "email": "new@example.org", "name": "New Person", "role": "consultant",
                      "specialties": ["rheumatology"], "password": "a long enough password" });
    let res =
        app.http.post(app.url("/api/users")).bearer_auth(&esp).json(&new).send().await.unwrap();
    assert_eq!(error_code(res).await, (StatusCode::FORBIDDEN, "forbidden".to_string()));
    let res = app.http.get(app.url("/api/users")).bearer_auth(&esp).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.state.store.count_users().await.unwrap(), 2);

    let res =
        app.http.post(app.url("/api/users")).bearer_auth(&coord).json(&new).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["role"], "consultant");
    let res =
        app.http.post(app.url("/api/users")).bearer_auth(&coord).json(&new).send().await.unwrap();
    assert_eq!(error_code(res).await, (StatusCode::CONFLICT, "email_taken".to_string()));

    for (field, value, code) in [
        ("role", json!("admin"), "invalid_role"),
        ("email", json!("not-an-email"), "invalid_email"),
        ("password", json!("short"), "weak_password"),
        ("specialties", json!(["podiatry"]), "unknown_specialty"),
        ("specialties", json!([]), "specialty_required"),
    ] {
        let mut body = new.clone();
        body["email"] = json!("other@example.org");
        body[field] = value;
        let res = app
            .http
            .post(app.url("/api/users"))
            .bearer_auth(&coord)
            .json(&body)
            .send()
            .await
            .unwrap();
        let res_body: Value = res.json().await.unwrap();
        assert_eq!(res_body["code"], code, "{field}");
        assert_eq!(
            res_body["field"].as_str().map(|f| f.contains(field.trim_end_matches('s'))),
            Some(true),
            "{res_body}"
        );
    }
    let res = app.http.get(app.url("/api/users")).bearer_auth(&coord).send().await.unwrap();
    let users: Vec<Value> = res.json().await.unwrap();
    assert_eq!(users.len(), 3);
    assert!(app
        .state
        .store
        .audit_events()
        .await
        .unwrap()
        .iter()
        .any(|e| e.action == "user_created"));
}

async fn malformed_input_gets_4xx_with_a_code(backend: Backend) {
    let app = app(backend).await;
    let post = |body: &'static str, ct: &'static str| {
        app.http.post(app.url("/api/auth/login")).header("content-type", ct).body(body).send()
    };
    assert_eq!(
        error_code(post("{\"email\":", "application/json").await.unwrap()).await,
        (StatusCode::BAD_REQUEST, "malformed_json".into())
    );
    assert_eq!(
        error_code(post("[1,2", "application/json").await.unwrap()).await,
        (StatusCode::BAD_REQUEST, "malformed_json".into())
    );
    assert_eq!(
        error_code(post("{\"email\":1,\"password\":2}", "application/json").await.unwrap()).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field".into())
    );
    assert_eq!(
        error_code(post("{}", "text/plain").await.unwrap()).await,
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".into())
    );
    let big = "x".repeat(100_000);
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));
    let res = app.http.get(app.url("/api/no-such-thing")).send().await.unwrap();
    assert_eq!(error_code(res).await, (StatusCode::NOT_FOUND, "not_found".into()));
    for res in [
        app.http.delete(app.url("/api/users")).send().await.unwrap(),
        app.http.get(app.url("/api/auth/login")).send().await.unwrap(),
    ] {
        assert_eq!(
            error_code(res).await,
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
        );
    }
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("\u{0}\u{ffff}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (StatusCode::BAD_REQUEST, "malformed_json".into()));
    assert_eq!(app.state.store.audit_events().await.unwrap().len(), 0, "nothing written");
}

async fn operations_endpoints_and_security_headers(backend: Backend) {
    let app = app(backend).await;
    let res = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for (name, expected) in [
        ("strict-transport-security", "max-age"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "frame-ancestors 'none'"),
    ] {
        let v =
            res.headers().get(name).unwrap_or_else(|| panic!("{name} missing")).to_str().unwrap();
        assert!(v.contains(expected), "{name}: {v}");
    }
    assert!(res.headers().contains_key("x-request-id"));
    // The meeting page's microphone and screen share (Chromium's display capture may be
    // a camera underneath) are allowed for this origin; everything else is denied.
    let policy = res.headers()["permissions-policy"].to_str().unwrap();
    let features: std::collections::BTreeMap<&str, &str> =
        policy.split(',').filter_map(|f| f.trim().split_once('=')).collect();
    for allowed in ["camera", "microphone", "display-capture"] {
        assert_eq!(features.get(allowed), Some(&"(self)"), "{allowed}: {policy}");
    }
    for denied in ["geolocation", "payment", "usb"] {
        assert_eq!(features.get(denied), Some(&"()"), "{denied}: {policy}");
    }
    assert!(
        features
            .iter()
            .all(|(name, v)| *v == "()"
                || ["camera", "microphone", "display-capture"].contains(name)),
        "only the meeting's features are allowed: {policy}"
    );
    let ready: Value = app.http.get(app.url("/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert!(page.headers().contains_key("content-security-policy"));
    assert!(page.text().await.unwrap().contains("<script type=\"module\" src=\"/js/app.js\">"));
    let _ = app.http.get(app.url("/api/no-such-thing?nhs_number=9434765919")).send().await.unwrap();
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/ready\"")
    );
    assert!(!metrics.contains("9434765919"), "raw paths or queries leaked into metrics");
}

async fn client_address_and_audit_never_hold_what_the_client_made_up(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.http.trust_proxy_headers = true;
        s.auth.login_attempts_per_address_per_minute = 3;
    })
    .await
    .unwrap();
    // Behind our proxy, only the right-most entry (the proxy's own) counts: varying the
    // left part does not buy fresh attempts or a false audit address.
    for i in 0..3 {
        let res = app
            .http
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}, 203.0.113.7"))
            .json(&json!({ "email": format!("user{i}@example.org"), "password": "whatever password" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app
        .http
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", "198.51.100.99, 203.0.113.7")
        .json(&json!({ "email": "user9@example.org", "password": "whatever password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let audit = app.state.store.audit_events().await.unwrap();
    assert!(audit.iter().all(|e| e.client_addr.as_deref() == Some("203.0.113.7")));

    // A password typed into the email box is never written to the audit log.
    let app = TestApp::spawn(backend).await.unwrap();
    let res = login(&app, "my-secret-passphrase-42", "my-secret-passphrase-42").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let audit = app.state.store.audit_events().await.unwrap();
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].details.contains("passphrase"), "{}", audit[0].details);
    assert_eq!(audit[0].client_addr.as_deref(), Some("127.0.0.1"));
}

/// `Cache-Control: no-store` on every answer under `/api` (one rule in `startup`): every
/// GET route with real ids (a case booked, attached, signed, lettered, flagged), the
/// token-bearing POSTs (login, refresh, live ticket), refusals, and an unknown path.
async fn every_api_answer_is_no_store(backend: Backend) {
    let c = Clinic::open(backend).await;
    let session = c.session(7, 4, true).await;
    let case = c.book_case(&c.physio, &session, referral("9434765919")).await;
    let part = reqwest::multipart::Part::bytes(b"Clinic letter".to_vec())
        .file_name("letter.txt")
        .mime_str("text/plain")
        .unwrap();
    let res = c
        .app
        .http
        .post(c.app.url(&format!("/api/cases/{case}/attachments")))
        .bearer_auth(&c.physio.token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let attachment: Value = res.json().await.unwrap();
    let outcome = json!({
        "investigations": [{ "kind": "mri", "site": "lower back", "urgency": "urgent" }],
        "referrals": [],
        "management_plan": { "text": "Graded exercise", "items": [] },
        "follow_up": null,
    });
    expect(StatusCode::OK, c.put_outcome(&c.chair, &case, outcome).await);
    expect(StatusCode::OK, c.sign(&c.chair, &case).await);
    let flag = c.post(&c.physio, &format!("/api/cases/{case}/mentorship-flag"), json!({})).await;
    assert_eq!(flag.status(), StatusCode::CREATED);
    let (_, letters) = c.app.get(&c.coordinator.token, &format!("/api/cases/{case}/letters")).await;
    let letter = letters[0]["id"].as_str().expect("a letter").to_string();
    let spec = c.specialty;
    let coordinator = &c.coordinator;
    let gets: Vec<(&Account, String)> = [
        "/api/me".to_string(),
        "/api/users".into(),
        "/api/people".into(),
        "/api/specialties".into(),
        "/api/sessions".into(),
        format!("/api/sessions/{session}"),
        format!("/api/sessions/{session}/attendance"),
        format!("/api/sessions/{session}/invitations"),
        format!("/api/cases/{case}"),
        format!("/api/cases/{case}/attachments"),
        format!("/api/attachments/{}", attachment["id"].as_str().unwrap()),
        format!("/api/cases/{case}/outcome"),
        format!("/api/cases/{case}/outcome/letter"),
        format!("/api/cases/{case}/fhir"),
        format!("/api/cases/{case}/letters"),
        format!("/api/cases/{case}/mentorship-flag"),
        format!("/api/letters/{letter}/pdf"),
        "/api/letters/print".into(),
        "/api/letters/due".into(),
        "/api/bank-holidays".into(),
        "/api/practices".into(),
        "/api/practices/list-sizes".into(),
        "/api/actions".into(),
        "/api/triage".into(),
        "/api/patients/conflicts".into(),
        format!("/api/audit?user_id={}", c.physio.id),
        "/api/admin/audit/verify".into(),
        "/api/me/invitations".into(),
        "/api/me/attendance".into(),
        "/api/me/attendance/certificate".into(),
        "/api/mentorship/contracts".into(),
        "/api/mentorship/logs".into(),
        "/api/mentorship/summary?from=2026-01-01&to=2026-03-31".into(),
        "/api/mentorship/backlog".into(),
        "/api/reports/activity?from=2026-01-01&to=2026-03-31".into(),
        "/api/reports/activity?from=2026-01-01&to=2026-03-31&format=csv".into(),
        "/api/reports/practices?from=2026-01-01&to=2026-03-31".into(),
        format!("/api/specialties/{spec}/targets"),
        format!("/api/specialties/{spec}/triage"),
        format!("/api/specialties/{spec}/action-due-days"),
    ]
    .into_iter()
    .map(|path| (coordinator, path))
    .chain([(&c.physio, "/api/cases?mine=true".to_string())])
    .chain([(&c.physio, "/api/actions?mine=true".to_string())])
    .collect();
    let no_store = |res: &reqwest::Response, what: &str| {
        let value = res.headers().get("cache-control").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(value.as_deref(), Some("no-store"), "{what} ({})", res.status());
    };
    for (who, path) in &gets {
        let res = c.get(who, path).await;
        no_store(&res, path);
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }
    // Tokens: login, refresh (and its answer without a cookie), a live ticket.
    let res = c.post(&c.chair, &format!("/api/sessions/{session}/live-ticket"), json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    no_store(&res, "live-ticket");
    add_user(&c.app, "walker@example.org", Role::Consultant).await;
    let res = login(&c.app, "walker@example.org", PASSWORD).await;
    no_store(&res, "login");
    let cookie = refresh_cookie(&res).expect("refresh cookie");
    let res = refresh(&c.app, &cookie).await;
    assert_eq!(res.status(), StatusCode::OK);
    no_store(&res, "refresh");
    let res = c.app.http.post(c.app.url("/api/auth/refresh")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    no_store(&res, "refresh without a cookie");
    let res = c.post(coordinator, "/api/audit/search", json!({ "nhs_number": "9434765919" })).await;
    assert_eq!(res.status(), StatusCode::OK);
    no_store(&res, "audit search");
    // Refusals and unknown paths too; the static front end is left to ordinary caching.
    let res = c.app.http.get(c.app.url(&format!("/api/cases/{case}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    no_store(&res, "unauthenticated case");
    let res = c.get(&c.trainee, &format!("/api/cases/{case}/fhir")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    no_store(&res, "trainee's FHIR");
    let res = c.get(coordinator, "/api/no-such-route").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    no_store(&res, "unknown API path");
    let page = c.app.http.get(c.app.url("/js/app.js")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers().get("cache-control").is_none_or(|v| v != "no-store"));
}

/// The browser-test harness is not served: it lives in `tests/e2e`, outside `web/`.
async fn the_browser_test_harness_is_not_served(backend: Backend) {
    let app = app(backend).await;
    for path in ["/e2e/package.json", "/e2e/lib.mjs", "/e2e/login.test.mjs", "/e2e/"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut stack = vec![web];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                !name.ends_with(".test.mjs") && name != "package.json" && name != "node_modules",
                "test or build files in the served folder: {}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
}

/// `POST path` with `token` and `body`: (status, code or "", whole answer).
async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let res = app.http.post(app.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The id of the account with `email`.
async fn user_id(app: &TestApp, email: &str) -> String {
    let creds = app.state.store.credentials(&EmailAddress::parse(email).unwrap()).await.unwrap();
    creds.unwrap().user_id.to_string()
}

/// Deactivation and reactivation over the API: sign-in refused, the access token refused
/// on its next request, every refresh family ended for good (reactivation does not revive
/// it), each refusal with its code and nothing changed by a refusal; all audited.
async fn coordinators_deactivate_and_reactivate_accounts(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "leaver@example.org", Role::Practitioner).await;
    add_user(&app, "coord@example.org", Role::Coordinator).await;
    add_user(&app, "other-coord@example.org", Role::Coordinator).await;
    let (token, cookie) = sign_in(&app, "leaver@example.org").await;
    let (_, second_cookie) = sign_in(&app, "leaver@example.org").await;
    let (coord, _) = sign_in(&app, "coord@example.org").await;
    let leaver = user_id(&app, "leaver@example.org").await;
    let coord_id = user_id(&app, "coord@example.org").await;
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK);

    // Who may, and what is refused: nothing changes.
    let path = format!("/api/users/{leaver}/deactivate");
    let (status, body) = post_as(&app, &token, &path, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (status, body) =
        post_as(&app, &coord, &format!("/api/users/{coord_id}/deactivate"), json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("cannot_change_own_account"))
    );
    let unknown = uuid::Uuid::new_v4();
    for path in [format!("/api/users/{unknown}/deactivate"), "/api/users/nope/deactivate".into()] {
        let (status, body) = post_as(&app, &coord, &path, json!({})).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }
    let (status, body) =
        post_as(&app, &coord, &format!("/api/users/{leaver}/reactivate"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_active")));
    assert_eq!(me(&app, &token).await.status(), StatusCode::OK, "still active");
    assert!(!app
        .state
        .store
        .audit_events()
        .await
        .unwrap()
        .iter()
        .any(|e| e.action.starts_with("user_") && e.action != "user_created"));

    // Deactivated: at once, everywhere.
    let (status, body) = post_as(&app, &coord, &path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false);
    assert_eq!(body["id"], leaver.as_str());
    assert_eq!(
        error_code(me(&app, &token).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_token".into())
    );
    let res = app.http.get(app.url("/api/sessions")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for c in [&cookie, &second_cookie] {
        let res = refresh(&app, c).await;
        assert_eq!(error_code(res).await.0, StatusCode::UNAUTHORIZED);
    }
    let res = login(&app, "leaver@example.org", PASSWORD).await;
    assert_eq!(error_code(res).await, (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));
    let (status, body) = post_as(&app, &coord, &path, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_inactive")));
    let reset = format!("/api/users/{leaver}/reset-password");
    let (status, body) = post_as(&app, &coord, &reset, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("account_inactive")));
    let (_, users) = app.get(&coord, "/api/users").await;
    let listed = users.as_array().unwrap().iter().find(|u| u["id"] == leaver.as_str()).unwrap();
    assert_eq!(listed["active"], false);

    // Reactivated: the old password signs in again; the old sign-ins stay ended.
    let (status, body) =
        post_as(&app, &coord, &format!("/api/users/{leaver}/reactivate"), json!({})).await;
    assert_eq!((status, &body["active"]), (StatusCode::OK, &json!(true)));
    for c in [&cookie, &second_cookie] {
        assert_eq!(refresh(&app, c).await.status(), StatusCode::UNAUTHORIZED);
    }
    let (fresh, _) = sign_in(&app, "leaver@example.org").await;
    assert_eq!(me(&app, &fresh).await.status(), StatusCode::OK);

    let audit = app.state.store.audit_events().await.unwrap();
    let coord_uid = mdt_coordinator::domain::UserId(coord_id.parse().unwrap());
    let of = |action: &str| {
        audit
            .iter()
            .filter(|e| e.action == action && e.record_id.as_deref() == Some(leaver.as_str()))
            .collect::<Vec<_>>()
    };
    let deactivated = of("user_deactivated");
    assert_eq!(deactivated.len(), 1);
    assert_eq!(deactivated[0].actor_id, Some(coord_uid));
    assert!(deactivated[0].details.contains("\"sign_ins_ended\":2"), "{}", deactivated[0].details);
    assert_eq!(of("user_reactivated").len(), 1);
    assert_eq!(of("user_reactivated")[0].actor_id, Some(coord_uid));
}

/// A reset password: a one-time password (shown once, never audited), the old password
/// and sign-ins ended, and until the person changes it their token reaches only
/// `GET /api/me` and `POST /api/me/password`.
async fn a_reset_password_must_be_changed_at_next_sign_in(backend: Backend) {
    let app = app(backend).await;
    add_user(&app, "esp@example.org", Role::Practitioner).await;
    add_user(&app, "coord@example.org", Role::Coordinator).await;
    let (old_token, old_cookie) = sign_in(&app, "esp@example.org").await;
    let (coord, _) = sign_in(&app, "coord@example.org").await;
    let esp = user_id(&app, "esp@example.org").await;
    let coord_id = user_id(&app, "coord@example.org").await;
    let (status, body) =
        post_as(&app, &coord, &format!("/api/users/{coord_id}/reset-password"), json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("cannot_change_own_account"))
    );
    let (status, body) =
        post_as(&app, &old_token, &format!("/api/users/{esp}/reset-password"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) =
        post_as(&app, &coord, &format!("/api/users/{esp}/reset-password"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let once = body["one_time_password"].as_str().unwrap().to_string();
    assert!(once.len() >= 12);
    assert_eq!(body["user"]["must_change_password"], true);
    assert_eq!(body["user"]["active"], true);

    // The old password and sign-ins are gone; the old token reaches only /api/me.
    assert_eq!(login(&app, "esp@example.org", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&app, &old_cookie).await.status(), StatusCode::UNAUTHORIZED);
    let res = app.http.get(app.url("/api/sessions")).bearer_auth(&old_token).send().await.unwrap();
    assert_eq!(error_code(res).await, (StatusCode::FORBIDDEN, "password_change_required".into()));

    let res = login(&app, "esp@example.org", &once).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = refresh_cookie(&res).unwrap();
    let signed: Value = res.json().await.unwrap();
    assert_eq!(signed["user"]["must_change_password"], true);
    let token = signed["access_token"].as_str().unwrap().to_string();
    let me_body: Value = me(&app, &token).await.json().await.unwrap();
    assert_eq!(me_body["must_change_password"], true);
    for path in ["/api/sessions", "/api/cases?mine=true", "/api/me/attendance", "/api/people"] {
        let res = app.http.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(
            error_code(res).await,
            (StatusCode::FORBIDDEN, "password_change_required".into()),
            "{path}"
        );
    }
    let ticket = post_as(
        &app,
        &token,
        &format!("/api/sessions/{}/live-ticket", uuid::Uuid::new_v4()),
        json!({}),
    )
    .await;
    assert_eq!(ticket.1["code"], "password_change_required");

    // The change: refusals change nothing.
    let change =
        |current: &str, new: &str| json!({ "current_password": current, "new_password": new });
    for (body, code, field) in [
        (
            change("not the password at all", "a brand new password"),
            "wrong_password",
            "current_password",
        ),
        (change(&once, &once), "password_unchanged", "new_password"),
        (change(&once, "short"), "weak_password", "new_password"),
    ] {
        let (status, answer) = post_as(&app, &token, "/api/me/password", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!((answer["code"].as_str(), answer["field"].as_str()), (Some(code), Some(field)));
    }
    let (status, answer) =
        post_as(&app, &token, "/api/me/password", json!({ "current_password": 1 })).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_field"))
    );
    assert_eq!(
        login(&app, "esp@example.org", &once).await.status(),
        StatusCode::OK,
        "still the one-time password"
    );

    let res = app
        .http
        .post(app.url("/api/me/password"))
        .bearer_auth(&token)
        .json(&change(&once, "my own new password"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let new_cookie = refresh_cookie(&res).expect("a new sign-in");
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["user"]["must_change_password"], false);
    let new_token = changed["access_token"].as_str().unwrap();
    let res = app.http.get(app.url("/api/sessions")).bearer_auth(new_token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The token from the one-time sign-in works again too (the account no longer must
    // change); the one-time sign-in's refresh family ended with the change.
    let res = app.http.get(app.url("/api/sessions")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(refresh(&app, &cookie).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&app, &new_cookie).await.status(), StatusCode::OK);
    assert_eq!(login(&app, "esp@example.org", &once).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&app, "esp@example.org", "my own new password").await.status(),
        StatusCode::OK
    );

    let audit = app.state.store.audit_events().await.unwrap();
    let esp_uid = mdt_coordinator::domain::UserId(esp.parse().unwrap());
    let reset = audit.iter().find(|e| e.action == "password_reset").unwrap();
    assert_eq!(reset.record_id.as_deref(), Some(esp.as_str()));
    assert_eq!(reset.actor_id.map(|a| a.to_string()), Some(coord_id.clone()));
    let changed = audit.iter().find(|e| e.action == "password_changed").unwrap();
    assert_eq!(changed.actor_id, Some(esp_uid));
    assert_eq!(audit.iter().filter(|e| e.action == "password_changed").count(), 1);
    let failed: Vec<_> = audit.iter().filter(|e| e.action == "password_change_failed").collect();
    assert_eq!(failed.len(), 1, "the wrong current password");
    assert_eq!(
        (failed[0].actor_id, failed[0].record_id.as_deref()),
        (Some(esp_uid), Some(esp.as_str()))
    );
    assert!(
        audit.iter().all(|e| !e.details.contains(&once)),
        "the one-time password is never kept"
    );
}

on_both_backends!(
    login_succeeds_and_me_shows_the_user,
    wrong_password_and_unknown_user_look_the_same,
    bad_tokens_are_refused,
    refresh_rotates_and_reuse_revokes_the_family,
    refresh_without_a_cookie_is_not_an_error,
    rapid_wrong_passwords_are_rate_limited,
    rate_limit_per_address_covers_many_accounts,
    only_coordinators_manage_users,
    malformed_input_gets_4xx_with_a_code,
    operations_endpoints_and_security_headers,
    client_address_and_audit_never_hold_what_the_client_made_up,
    every_api_answer_is_no_store,
    the_browser_test_harness_is_not_served,
    coordinators_deactivate_and_reactivate_accounts,
    a_reset_password_must_be_changed_at_next_sign_in,
);

// ---- the binary -------------------------------------------------------------------

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdt-coordinator"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MDT__") {
            cmd.env_remove(k);
        }
    }
    cmd.env("MDT__LOG__FILTER", "warn");
    cmd
}

#[test]
fn unknown_database_scheme_exits_with_one_line() {
    let out = binary()
        .args(["serve"])
        .env("MDT__DATABASE__URL", "mysql://mdt:hunter2@localhost/mdt")
        .env("MDT__HTTP__PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("unsupported database URL scheme \"mysql\": use sqlite:// or postgres://"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"));
}

/// Settings layer as documented: built-in defaults < `--config` file < environment file <
/// `MDT__…` variables. Each layer names a different (unsupported) scheme so the start-up
/// refusal shows which layer won.
#[test]
fn settings_layer_file_then_env_file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.toml");
    std::fs::write(&config, "[database]\nurl = \"oracle://from-settings-file\"\n").unwrap();
    let env_file = dir.path().join("mdt.env");
    std::fs::write(&env_file, "MDT__DATABASE__URL=mysql://from-env-file\n").unwrap();
    let scheme = |cmd: &mut Command| {
        let out = cmd.arg("migrate").output().unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let file_only = scheme(binary().arg("--config").arg(&config));
    assert!(file_only.contains("\"oracle\""), "{file_only}");
    let with_env_file =
        scheme(binary().arg("--config").arg(&config).env("MDT_ENV_FILE", &env_file));
    assert!(with_env_file.contains("\"mysql\""), "{with_env_file}");
    let with_env = scheme(
        binary()
            .arg("--config")
            .arg(&config)
            .env("MDT_ENV_FILE", &env_file)
            .env("MDT__DATABASE__URL", "db2://from-environment"),
    );
    assert!(with_env.contains("\"db2\""), "{with_env}");
    // A typo in a key is refused rather than silently ignored.
    let typo = binary().arg("migrate").env("MDT__HTTP__PROT", "9000").output().unwrap();
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("prot"));
}

/// `serve --demo` on a fresh SQLite file in a temporary directory, as the README runs it;
/// what it logs goes to `server.log` there.
struct DemoServer {
    child: std::process::Child,
    url: String,
    printed: String,
    dir: tempfile::TempDir,
}

impl DemoServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = binary()
            .args(["serve", "--demo"])
            .env("MDT__HTTP__PORT", "0")
            .env("MDT__DATABASE__URL", format!("sqlite://{}/mdt.db", dir.path().display()))
            .env("MDT__DATA__DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let url = loop {
            let line = lines.next().expect("server exited early").unwrap();
            printed.push(line.clone());
            if let Some(url) = line.strip_prefix("MDT Coordinator listening on ") {
                break url.to_string();
            }
        };
        Self { child, url, printed: printed.join("\n"), dir }
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}/mdt.db", self.dir.path().display())
    }

    /// The last `n` lines the server logged.
    fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Sends SIGTERM, as an orchestrator stops the service.
    fn signal_term(&self) {
        let term =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(term.success());
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's run command, `serve --demo`, on a fresh SQLite file: prints the URL and
/// demo logins, serves the login page and /health, signs in, and stops cleanly on SIGTERM.
#[test]
fn serve_demo_runs_from_a_fresh_clone() {
    let mut server = DemoServer::start();
    for role in ["coordinator", "consultant", "practitioner", "trainee"] {
        assert!(server.printed.contains(role), "{}", server.printed);
    }
    let url = server.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let health: Value = http.get(format!("{url}/health")).send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        let page = http.get(format!("{url}/")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("MDT Coordinator"));
        // The front end's modules are served as JavaScript (browsers refuse modules
        // served as anything else).
        for module in ["/js/app.js", "/js/pages/meeting.js"] {
            let js = http.get(format!("{url}{module}")).send().await.unwrap();
            assert_eq!(js.status(), StatusCode::OK);
            let kind = js.headers()["content-type"].to_str().unwrap().to_string();
            assert!(kind.contains("javascript"), "{module}: {kind}");
        }
        let res = http
            .post(format!("{url}/api/auth/login"))
            .json(&json!({ "email": "consultant@demo.mdt.test", "password": mdt_coordinator::demo::DEMO_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let token = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();

        // SIGTERM with a live connection open: the server closes it with 1001 (going away)
        // before it stops, so the client reconnects at once rather than finding a dropped
        // socket; then it exits cleanly.
        let sessions: Value =
            http.get(format!("{url}/api/sessions")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        let session = sessions[0]["id"].as_str().unwrap();
        let ticket: Value = http
            .post(format!("{url}/api/sessions/{session}/live-ticket"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let live = format!(
            "{}/api/sessions/{session}/live?ticket={}",
            url.replace("http://", "ws://"),
            ticket["ticket"].as_str().unwrap()
        );
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(live).unwrap();
        request.headers_mut().insert("Origin", url.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let first = futures_util::StreamExt::next(&mut ws).await.unwrap().unwrap();
        assert!(first.to_text().unwrap().contains("\"snapshot\""), "{first}");
        server.signal_term();
        let close = common::close_frame(&mut ws).await;
        assert_eq!(u16::from(close.code), 1001, "{close:?}");
        assert!(close.reason.contains("reconnect"), "{close:?}");
    });
    assert!(server.child.wait().unwrap().success(), "graceful shutdown should exit 0");
    // A second run finds accounts and does not seed again.
    let out =
        binary().args(["demo"]).env("MDT__DATABASE__URL", server.database_url()).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already has accounts"));

    // The operator's audit check: intact after the demo run, broken once a row is edited
    // behind the triggers' back.
    let verify = || {
        binary()
            .args(["audit", "verify"])
            .env("MDT__DATABASE__URL", server.database_url())
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit chain intact"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let mut c = sqlx::SqliteConnection::connect(&server.database_url()).await.unwrap();
        c.execute("DROP TRIGGER audit_events_no_update; UPDATE audit_events SET action = 'nothing' WHERE seq = 2")
            .await
            .unwrap();
    });
    let broken = verify();
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("audit chain broken at event 2"));
}

/// The web front end in Debian's Chromium, driven by playwright-core: every
/// `tests/e2e/*.test.mjs` file in turn, each against its own fresh demo server (one browser
/// at a time: the meeting test alone runs three contexts with WebRTC). Skips with a
/// message when Chromium or the e2e packages are missing, except under CI, where
/// `.ci/run` installs both and a skip would hide a broken page. Screenshots are left in
/// `tests/e2e/screenshots/`.
#[test]
fn web_front_end_works_in_chromium() {
    let e2e = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = e2e.join("node_modules/playwright-core").exists()
        && std::path::Path::new(&chromium).exists();
    if !ready {
        common::skip(&format!("no browser: needs {chromium} and `npm ci` in tests/e2e"));
        return;
    }
    let mut files: Vec<String> = std::fs::read_dir(&e2e)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "browser test files: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let server = DemoServer::start();
        let out = Command::new("node")
            .args(["--test", "--test-reporter=spec", file])
            .current_dir(&e2e)
            .env("MDT_E2E_URL", &server.url)
            .env("MDT_E2E_PASSWORD", mdt_coordinator::demo::DEMO_PASSWORD)
            .env("CHROMIUM_PATH", &chromium)
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{file}:\n{}\n{}\nthe server's last log lines:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                server.log_tail(60)
            ));
        }
    }
    assert!(failures.is_empty(), "browser tests failed:\n{}", failures.join("\n"));
}

/// The store at `db` and the credentials of the account with `email` there.
async fn account_in(
    db: &str, email: &str,
) -> (mdt_coordinator::store::DynStore, mdt_coordinator::store::Credentials) {
    let store =
        mdt_coordinator::store::connect(&mdt_coordinator::store::settings_for(db)).await.unwrap();
    let creds = store.credentials(&EmailAddress::parse(email).unwrap()).await.unwrap().unwrap();
    (store, creds)
}

/// `user deactivate`, `user reactivate` and `user reset-password` from the command line:
/// the API's rules and audit (no actor: the operator), refusals exit non-zero.
#[test]
fn user_lifecycle_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/mdt.db", dir.path().display());
    let run = |args: &[&str]| {
        binary().args(args).env("MDT__DATABASE__URL", &db).stdin(Stdio::null()).output().unwrap()
    };
    let mut add = binary()
        .args(["user", "add", "--email", "esp@example.org", "--name", "Ellis Physio"])
        .args(["--role", "practitioner", "--specialty", "spinal", "--password-stdin"])
        .env("MDT__DATABASE__URL", &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"a long enough password\n").unwrap();
    assert!(add.wait().unwrap().success());
    let email = ["--email", "esp@example.org"];
    let ok = |out: std::process::Output, says: &str| {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(says), "{text}");
        text
    };
    let refused = |out: std::process::Output, says: &str| {
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(text.contains(says), "{text}");
    };
    ok(run(&[&["user", "deactivate"][..], &email].concat()), "deactivated esp@example.org");
    refused(run(&[&["user", "deactivate"][..], &email].concat()), "already deactivated");
    refused(run(&[&["user", "reset-password"][..], &email].concat()), "reactivate it");
    refused(run(&["user", "deactivate", "--email", "nobody@example.org"]), "no account");
    ok(run(&[&["user", "reactivate"][..], &email].concat()), "reactivated esp@example.org");
    let text = ok(run(&[&["user", "reset-password"][..], &email].concat()), "one-time password");
    let once = text.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(once.len(), 19, "{text}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (store, creds) = account_in(&db, "esp@example.org").await;
        let user = store.user(creds.user_id).await.unwrap().unwrap();
        assert!(user.active && user.must_change_password);
        let passwords = mdt_coordinator::auth::Passwords::new().unwrap();
        assert!(passwords.verify(&once, Some(creds.password_hash.clone())).await.unwrap());
        let audit = store.audit_events().await.unwrap();
        let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["user_created", "user_deactivated", "user_reactivated", "password_reset"]
        );
        assert!(audit.iter().all(|e| e.actor_id.is_none()));
        assert!(audit.iter().skip(1).all(|e| e.record_id == Some(user.id.to_string())));
    });
}

#[test]
fn user_add_reads_the_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/mdt.db", dir.path().display());
    let mut child = binary()
        .args([
            "user",
            "add",
            "--email",
            "chair@example.org",
            "--name",
            "Dr Chair",
            "--role",
            "consultant",
            "--specialty",
            "spinal",
            "--specialty",
            "pain",
            "--password-stdin",
        ])
        .env("MDT__DATABASE__URL", &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a long enough password\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created consultant chair@example.org"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (store, creds) = account_in(&db, "chair@example.org").await;
        assert!(creds.password_hash.starts_with("$argon2id$"));
        let user = store.user(creds.user_id).await.unwrap().unwrap();
        assert_eq!(user.specialties.len(), 2);
        let audit = store.audit_events().await.unwrap();
        assert_eq!(audit[0].action, "user_created");
    });
    let bad = binary()
        .args([
            "user",
            "add",
            "--email",
            "x@example.org",
            "--name",
            "X",
            "--role",
            "wizard",
            "--password-stdin",
        ])
        .env("MDT__DATABASE__URL", &db)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("role"));
}
