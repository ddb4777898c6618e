//! Who is asking and how: the authenticated user (or anonymous), the client's address and
//! whether it came over TLS, and the request's policy condition keys (`aws:SourceIp`,
//! `s3:prefix`, `s3:x-amz-acl`, …) as bucket policies read them.

use crate::auth::Via;
use crate::owner::canonical_id;
use crate::policy::Context;
use crate::policy::condition::Cidr;
use crate::query::Query;
use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// Where a request came from, after trusted proxies' `X-Forwarded-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub secure: bool,
}

impl Client {
    /// The client of a connection from `peer`: a proxy listed in `trusted` speaks for its
    /// client (`X-Forwarded-For`, `X-Forwarded-Proto`); anyone else only for itself, so a
    /// client cannot claim TLS or another address by sending those headers.
    pub fn of(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Client {
        let peer_ip = peer.map(|p| p.ip());
        let proxied = peer_ip.is_some_and(|ip| trusted.iter().any(|c| c.contains(ip)));
        if !proxied {
            return Client {
                ip: peer_ip,
                secure: false,
            };
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let forwarded_ip = header("x-forwarded-for")
            .and_then(|v| v.split(',').next())
            .and_then(|ip| ip.trim().parse().ok());
        Client {
            ip: forwarded_ip.or(peer_ip),
            secure: header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https")),
        }
    }
}

/// A request as policies see it.
#[derive(Clone, Copy)]
pub struct Requester<'a> {
    /// The user; None for an anonymous request.
    pub user: Option<&'a str>,
    pub via: Via,
    pub headers: &'a HeaderMap,
    pub query: &'a Query,
    pub client: Client,
    /// The tags of the object the request acts on, once authorization has read it.
    pub object_tags: Option<&'a [(String, String)]>,
}

/// Request headers that are condition keys of their own name (`s3:x-amz-acl`, …).
const HEADER_KEYS: &[&str] = &[
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-object-ownership",
];

impl Context for Requester<'_> {
    fn values(&self, key: &str) -> Vec<String> {
        let one = |v: Option<&str>| v.map(|v| vec![v.to_owned()]).unwrap_or_default();
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        let user = self.user;
        match key {
            "aws:securetransport" => vec![self.client.secure.to_string()],
            "aws:sourceip" => self
                .client
                .ip
                .map(|ip| vec![ip.to_string()])
                .unwrap_or_default(),
            "aws:currenttime" => vec![crate::timefmt::iso8601(now_ms())],
            "aws:epochtime" => vec![(now_ms() / 1000).to_string()],
            "aws:username" => one(user),
            "aws:userid" => one(user.map(canonical_id).as_deref()),
            "aws:principaltype" => vec![if user.is_some() { "User" } else { "Anonymous" }.into()],
            "aws:referer" => one(header("referer")),
            "aws:useragent" => one(header("user-agent")),
            "s3:prefix" | "s3:delimiter" | "s3:max-keys" => one(self.query.get(&key[3..])),
            "s3:versionid" => one(self.query.get("versionId")),
            "s3:authtype" => one(self.via.auth_type()),
            "s3:signatureversion" => one(self.via.signature_version()),
            "s3:requestobjecttagkeys" => self.request_tags().into_iter().map(|(k, _)| k).collect(),
            _ => {
                if let Some(tag) = key.strip_prefix("s3:existingobjecttag/") {
                    return tag_values(self.object_tags.unwrap_or_default(), tag);
                }
                if let Some(tag) = key.strip_prefix("s3:requestobjecttag/") {
                    return tag_values(&self.request_tags(), tag);
                }
                match key.strip_prefix("s3:") {
                    Some(name) if HEADER_KEYS.contains(&name) => one(header(name)),
                    _ => Vec::new(),
                }
            }
        }
    }
}

impl Requester<'_> {
    /// The tags a write asks for (`x-amz-tagging`); none if the header is malformed (the
    /// write itself is refused for that).
    fn request_tags(&self) -> Vec<(String, String)> {
        let header = self
            .headers
            .get("x-amz-tagging")
            .and_then(|v| v.to_str().ok());
        crate::tags::from_header(header).unwrap_or_default()
    }
}

/// Tag keys are case-sensitive, but condition keys arrive lower-cased: a tag matches
/// ignoring case.
fn tag_values(tags: &[(String, String)], key: &str) -> Vec<String> {
    tags.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trusted_proxies_speak_for_their_clients() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let peer = Some("10.0.0.2:5555".parse().unwrap());
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let via_proxy = Client::of(peer, &headers, &trusted);
        assert_eq!(via_proxy.ip, Some("203.0.113.9".parse().unwrap()));
        assert!(via_proxy.secure);
        let direct = Client::of(peer, &headers, &[]);
        assert_eq!(direct.ip, Some("10.0.0.2".parse().unwrap()));
        assert!(!direct.secure);
    }

    #[test]
    fn condition_keys_from_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-acl", "public-read".parse().unwrap());
        headers.insert(
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256".parse().unwrap(),
        );
        headers.insert("x-amz-tagging", "Project=X&team=blue".parse().unwrap());
        let query = Query::parse(Some("prefix=docs%2F&max-keys=5"));
        let tags = vec![("Class".to_owned(), "public".to_owned())];
        let requester = Requester {
            user: None,
            via: Via::Anonymous,
            headers: &headers,
            query: &query,
            client: Client {
                ip: Some("127.0.0.1".parse().unwrap()),
                secure: false,
            },
            object_tags: Some(&tags),
        };
        let v = |k: &str| requester.values(k);
        assert_eq!(v("s3:prefix"), ["docs/"]);
        assert_eq!(v("s3:max-keys"), ["5"]);
        assert!(v("s3:delimiter").is_empty());
        assert_eq!(v("s3:x-amz-acl"), ["public-read"]);
        assert_eq!(
            v("s3:x-amz-server-side-encryption-customer-algorithm"),
            ["AES256"]
        );
        assert_eq!(v("aws:securetransport"), ["false"]);
        assert_eq!(v("aws:sourceip"), ["127.0.0.1"]);
        assert!(v("aws:username").is_empty());
        assert_eq!(v("aws:principaltype"), ["Anonymous"]);
        assert!(v("s3:authtype").is_empty());
        assert_eq!(v("s3:existingobjecttag/class"), ["public"]);
        assert_eq!(v("s3:requestobjecttag/project"), ["X"]);
        assert_eq!(v("s3:requestobjecttagkeys"), ["Project", "team"]);
    }
}
