//! The admin client (`kura-admin-client`) and the server's SigV4 verifier agree: what the
//! client signs, the server accepts; a wrong secret or no credentials are refused.

use http::{Method, Request, header};
use kura_admin_client::{Client, Credentials};
use kura_gateway::auth::{KeyOwner, SecretStore, authenticate};
use kura_gateway::error::ErrorCode;
use serde_json::json;
use std::time::SystemTime;
use time::OffsetDateTime;

const ACCESS_KEY: &str = "KURAADMINTEST";
const SECRET: &str = "secret/with+odd=chars";

struct Keys;

impl SecretStore for Keys {
    fn lookup(&self, access_key: &str) -> Option<KeyOwner> {
        (access_key == ACCESS_KEY).then(|| KeyOwner {
            secret: SECRET.to_owned(),
            user: "root".to_owned(),
        })
    }
}

fn client(secret: Option<&str>) -> Client {
    let credentials = secret.map(|secret| Credentials {
        access_key: ACCESS_KEY.into(),
        secret_key: secret.into(),
    });
    Client::new("http://127.0.0.1:9000/", "us-east-1", credentials, None).unwrap()
}

/// Check `request` with the server's own SigV4 verifier.
fn verify(request: &Request<Vec<u8>>, now: SystemTime) -> Result<(), ErrorCode> {
    authenticate(
        request.method(),
        request.uri(),
        request.headers(),
        &Keys,
        "us-east-1",
        OffsetDateTime::from(now),
    )
    .map(|_| ())
    .map_err(|e| e.code)
}

#[test]
fn the_server_verifies_what_the_client_signs() {
    let now = SystemTime::now();
    let body = json!({ "name": "alice@example" });
    let request = client(Some(SECRET))
        .request(
            Method::POST,
            &["users", "alice@example"],
            Some("purge=true"),
            Some(&body),
            now,
        )
        .unwrap();
    let sha = request.headers()["x-amz-content-sha256"].to_str().unwrap();
    assert_eq!(
        sha,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.to_string()))
    );
    assert_eq!(request.headers()[header::HOST], "127.0.0.1:9000");
    assert_eq!(request.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(verify(&request, now), Ok(()));

    let get = client(Some(SECRET))
        .request(Method::GET, &["usage"], None, None, now)
        .unwrap();
    assert!(get.headers().get(header::CONTENT_TYPE).is_none());
    assert_eq!(verify(&get, now), Ok(()));
}

#[test]
fn a_wrong_secret_or_no_credentials_is_refused() {
    let now = SystemTime::now();
    let wrong = client(Some("not-the-secret"))
        .request(Method::GET, &["users"], None, None, now)
        .unwrap();
    assert_eq!(verify(&wrong, now), Err(ErrorCode::SignatureDoesNotMatch));
    let anonymous = client(None)
        .request(Method::GET, &["users"], None, None, now)
        .unwrap();
    assert!(anonymous.headers().get(header::AUTHORIZATION).is_none());
    // Unsigned is anonymous, and the admin API is the administrator's alone.
    let who = authenticate(
        anonymous.method(),
        anonymous.uri(),
        anonymous.headers(),
        &Keys,
        "us-east-1",
        OffsetDateTime::from(now),
    )
    .unwrap();
    assert_eq!(who.user(), None);
    assert!(!kura_gateway::authorize::admin(&who.user));
}
