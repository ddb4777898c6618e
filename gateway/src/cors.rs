//! Cross-origin resource sharing as S3 does it: a bucket's rules are checked against a
//! request's `Origin`, method and headers; the first rule that matches decides the
//! `Access-Control-*` headers of the answer (preflight `OPTIONS` and actual requests,
//! errors included).

use crate::error::{ErrorCode, S3Error, S3Result};
use http::{HeaderMap, HeaderValue};
use kura_index::CorsRule;

/// AWS's limit of rules per configuration.
pub const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// Checks rules as PutBucketCors must: methods S3 knows, at most one `*` per origin and
/// per allowed header, at most [`MAX_RULES`] rules.
pub fn validate(rules: &[CorsRule]) -> S3Result<()> {
    let invalid = |message: String| S3Error::new(ErrorCode::InvalidRequest, message);
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(S3Error::new(
            ErrorCode::MalformedXML,
            format!("A CORS configuration has 1 to {MAX_RULES} rules."),
        ));
    }
    for rule in rules {
        if rule.allowed_methods.is_empty() || rule.allowed_origins.is_empty() {
            return Err(ErrorCode::MalformedXML.into());
        }
        if let Some(method) = rule
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(invalid(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            )));
        }
        for origin in &rule.allowed_origins {
            if origin.matches('*').count() > 1 {
                return Err(invalid(format!(
                    "AllowedOrigin \"{origin}\" can not have more than one wildcard."
                )));
            }
        }
        for header in &rule.allowed_headers {
            if header.matches('*').count() > 1 {
                return Err(invalid(format!(
                    "AllowedHeader \"{header}\" can not have more than one wildcard."
                )));
            }
        }
    }
    Ok(())
}

/// `pattern` with at most one `*` standing for any run of characters; headers compare
/// without case.
fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (pattern, text) = if ignore_case {
        (pattern.to_ascii_lowercase(), text.to_ascii_lowercase())
    } else {
        (pattern.to_owned(), text.to_owned())
    };
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len() && text.starts_with(head) && text.ends_with(tail)
        }
    }
}

/// What a request asks of CORS: its origin, the method it uses (or, for a preflight, will
/// use) and the headers it will send.
pub struct CorsRequest<'a> {
    pub origin: &'a str,
    pub method: &'a str,
    pub headers: Vec<String>,
}

/// The first rule that allows the request.
pub fn find<'r>(rules: &'r [CorsRule], request: &CorsRequest) -> Option<&'r CorsRule> {
    rules.iter().find(|rule| {
        rule.allowed_origins
            .iter()
            .any(|o| matches(o, request.origin, false))
            && rule.allowed_methods.iter().any(|m| m == request.method)
            && request.headers.iter().all(|h| {
                rule.allowed_headers
                    .iter()
                    .any(|allowed| matches(allowed, h, true))
            })
    })
}

/// The `Access-Control-*` headers a matching rule gives an answer; `preflight` adds the
/// allowed methods and the echoed request headers.
pub fn apply(headers: &mut HeaderMap, rule: &CorsRule, request: &CorsRequest, preflight: bool) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*");
    if any_origin {
        set("access-control-allow-origin", "*".into());
    } else {
        set("access-control-allow-origin", request.origin.into());
        set("access-control-allow-credentials", "true".into());
    }
    set(
        "access-control-allow-methods",
        rule.allowed_methods.join(", "),
    );
    if preflight && !request.headers.is_empty() {
        set("access-control-allow-headers", request.headers.join(", "));
    }
    if !rule.expose_headers.is_empty() {
        set(
            "access-control-expose-headers",
            rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set("access-control-max-age", age.to_string());
    }
    headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        headers.append(
            http::header::VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
        headers.append(
            http::header::VARY,
            HeaderValue::from_static("Access-Control-Request-Method"),
        );
    }
}

/// `Access-Control-Request-Headers`: comma-separated, lower-cased.
pub fn requested_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CorsRule {
            allowed_origins: owned(origins),
            allowed_methods: owned(methods),
            allowed_headers: owned(headers),
            ..Default::default()
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = vec![
            rule(&["https://*.example.com"], &["GET"], &[]),
            rule(&["*"], &["PUT"], &["x-amz-*", "content-type"]),
        ];
        let request = |origin, method, headers: &[&str]| CorsRequest {
            origin,
            method,
            headers: headers.iter().map(|h| h.to_string()).collect(),
        };
        let found = |r: &CorsRequest| find(&rules, r).map(|r| r.allowed_methods[0].clone());
        assert_eq!(
            found(&request("https://app.example.com", "GET", &[])).as_deref(),
            Some("GET")
        );
        assert_eq!(found(&request("https://example.org", "GET", &[])), None);
        assert_eq!(
            found(&request(
                "http://any",
                "PUT",
                &["X-Amz-Date", "content-type"]
            ))
            .as_deref(),
            Some("PUT")
        );
        assert_eq!(
            found(&request("http://any", "PUT", &["authorization"])),
            None
        );
        assert_eq!(
            found(&request("https://app.example.com", "DELETE", &[])),
            None
        );
    }

    #[test]
    fn configurations_are_checked() {
        assert!(validate(&[rule(&["*"], &["GET"], &[])]).is_ok());
        let code = |rules: &[CorsRule]| validate(rules).unwrap_err().code;
        assert_eq!(
            code(&[rule(&["*"], &["PATCH"], &[])]),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(&[rule(&["*.a.*"], &["GET"], &[])]),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(&[rule(&["*"], &["GET"], &["x-*-*"])]),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code(&[]), ErrorCode::MalformedXML);
        let many: Vec<_> = (0..101).map(|_| rule(&["*"], &["GET"], &[])).collect();
        assert_eq!(code(&many), ErrorCode::MalformedXML);
    }
}
