//! `kura admin …`: the command-line client of the admin API.

mod render;
mod table;
mod wait;

use clap::{ArgGroup, Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use kura_admin_client::{Connection, size};

const ADMIN_ABOUT: &str = "Manage users, access keys, buckets and quotas of a running Kura server";

const ADMIN_LONG_ABOUT: &str = "\
Manage users, access keys, buckets and quotas of a running Kura server.

`kura admin` talks to the admin API: JSON over HTTP under /_kura/admin/v1 on the S3 port,
signed with AWS SigV4 like any S3 request. Only the root credentials (the ones `kura serve`
printed on first start, also in <data-dir>/root-credentials.json, or KURA_ROOT_ACCESS_KEY /
KURA_ROOT_SECRET_KEY) may call it.

Connection settings, first found wins:
  endpoint    --endpoint, $KURA_ADMIN_ENDPOINT, $AWS_ENDPOINT_URL, http://127.0.0.1:9000
  access key  --access-key, $KURA_ADMIN_ACCESS_KEY, $KURA_ROOT_ACCESS_KEY, $AWS_ACCESS_KEY_ID
  secret key  --secret-key, $KURA_ADMIN_SECRET_KEY, $KURA_ROOT_SECRET_KEY, $AWS_SECRET_ACCESS_KEY
  region      --region, $KURA_REGION, us-east-1
  CA bundle   --ca-bundle, $KURA_ADMIN_CA_BUNDLE, $AWS_CA_BUNDLE (for https endpoints)

Output is a table for people; --json prints the API's JSON answer instead (exact byte counts,
stable field names) for scripts. A refused call prints `Code: message` on stderr and exits
with status 1; a usage error exits with status 2.";

const ADMIN_EXAMPLES: &str = "\
Examples:
  export KURA_ADMIN_ENDPOINT=http://127.0.0.1:9000
  export KURA_ADMIN_ACCESS_KEY=<root access key> KURA_ADMIN_SECRET_KEY=<root secret key>

  kura admin user create alice
  kura admin key create alice                  # the secret is shown only this once
  kura admin bucket create photos --owner alice
  kura admin quota set photos --max-objects 100000 --max-bytes 10GiB
  kura admin usage
  kura admin --json bucket info photos         # the API's JSON, for scripts
  kura admin key revoke KURA...                # the key stops working at once
  kura admin bucket delete photos --purge      # deletes every object first
  kura admin bucket stats photos               # shards, objects per shard, reshard progress
  kura admin bucket reshard photos --shards 16 --wait";

#[derive(Debug, Args)]
#[command(about = ADMIN_ABOUT, long_about = ADMIN_LONG_ABOUT, after_help = ADMIN_EXAMPLES)]
pub struct AdminArgs {
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(flatten)]
    connection: Connection,

    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Users: create, list, info, delete.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys of users: create, list, revoke.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Buckets: create for a user, list, info, stats, reshard, grant, delete.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Bucket quotas: set or clear max objects and max bytes.
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Objects and bytes stored in every bucket (exact counts).
    #[command(after_help = "Examples:\n  kura admin usage\n  kura admin --json usage")]
    Usage,
    /// Background work (garbage collection, resharding, lifecycle rules): whether each worker is busy, what
    /// it is doing, how many items and steps it has done, and its last failure.
    #[command(after_help = "Examples:\n  kura admin workers\n  kura admin --json workers")]
    Workers,
}

#[derive(Debug, Subcommand)]
#[command(after_help = "Examples:\n  kura admin user create alice\n  kura admin user info alice")]
enum UserCommand {
    /// Create a user.
    Create {
        /// 1 to 64 of A-Z a-z 0-9 _ . @ - (`root` is reserved).
        name: String,
    },
    /// List users.
    List,
    /// Show a user with their buckets and access keys.
    Info {
        /// The user.
        name: String,
    },
    /// Delete a user and revoke all their keys; refused while they own buckets.
    Delete {
        /// The user.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
#[command(after_help = "Examples:\n  kura admin key create alice\n  kura admin key revoke KURA...")]
enum KeyCommand {
    /// Create an access key for a user; prints the secret key, the only time it is shown.
    Create {
        /// The user the key belongs to.
        user: String,
    },
    /// List a user's access keys (active and revoked; never their secrets).
    List {
        /// The user.
        user: String,
    },
    /// Revoke an access key: requests signed with it are refused from now on.
    Revoke {
        /// The access key id (KURA…).
        #[arg(value_name = "ACCESS_KEY")]
        key: String,
    },
}

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Examples:\n  kura admin bucket create photos --owner alice\n  kura admin bucket stats photos\n  kura admin bucket reshard photos --shards 16 --wait\n  kura admin bucket delete photos --purge"
)]
enum BucketCommand {
    /// Create a bucket owned by a user; only that user's keys (and root) can use it.
    Create {
        /// A valid S3 bucket name.
        name: String,
        /// The user who owns the bucket.
        #[arg(long, value_name = "USER")]
        owner: String,
    },
    /// List buckets with owner, usage and quota.
    List,
    /// Show a bucket: owner, region, shards, usage, quota.
    Info {
        /// The bucket.
        name: String,
    },
    /// Show a bucket's index shards: count, objects per shard, and the reshard under way
    /// (target, progress, rate), if any.
    Stats {
        /// The bucket.
        name: String,
    },
    /// Move a bucket's index to N shards, online: reads, writes and listings go on.
    ///
    /// The reshard runs in the background on the server and survives its restarts; this
    /// command returns once it has started, or with --wait once it has finished (progress
    /// on stderr). Refused with ReshardInProgress while another reshard of the bucket runs.
    Reshard {
        /// The bucket.
        name: String,
        /// The new number of shards, 1 to 1024.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
        shards: u32,
        /// Wait until the reshard has finished, polling its progress every 500 ms.
        #[arg(long)]
        wait: bool,
    },
    /// Let another user's keys use the bucket's objects (not delete the bucket).
    Grant {
        /// The bucket.
        name: String,
        /// The user to let in.
        user: String,
    },
    /// Take back a grant.
    Ungrant {
        /// The bucket.
        name: String,
        /// The user to keep out again.
        user: String,
    },
    /// Delete a bucket; refused if it holds objects, unless --purge.
    Delete {
        /// The bucket.
        name: String,
        /// Delete every object version, delete marker and open multipart upload first.
        /// Versions under Object Lock stay (and so does the bucket) unless
        /// --bypass-object-lock.
        #[arg(long)]
        purge: bool,
        /// With --purge: delete versions under an Object Lock retention or legal hold
        /// too. The gateway logs every use; it overrides what even COMPLIANCE promises.
        #[arg(long, requires = "purge")]
        bypass_object_lock: bool,
    },
}

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Examples:\n  kura admin quota set photos --max-objects 100000 --max-bytes 10GiB\n  kura admin quota clear photos"
)]
enum QuotaCommand {
    /// Set a bucket's quota to exactly the limits given (a limit not given is removed).
    ///
    /// A write that would take the bucket over a limit is refused with 403 QuotaExceeded
    /// and stores nothing; multipart uploads are checked when they complete.
    #[command(group(ArgGroup::new("limits").required(true).multiple(true)))]
    Set {
        /// The bucket.
        bucket: String,
        /// Most objects the bucket may hold.
        #[arg(long, value_name = "N", group = "limits")]
        max_objects: Option<u64>,
        /// Most bytes the bucket may hold: 1073741824, 10GiB, 500MiB, 1GB, 1.5TB
        /// (KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024).
        #[arg(long, value_name = "SIZE", group = "limits", value_parser = size::parse_size)]
        max_bytes: Option<u64>,
    },
    /// Remove both limits of a bucket's quota.
    Clear {
        /// The bucket.
        bucket: String,
    },
}

/// One admin API call: what to send and how to show the answer.
struct Call<'a> {
    method: Method,
    path: Vec<&'a str>,
    query: Option<&'static str>,
    body: Option<Value>,
    view: View,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: Vec<&'a str>, view: View) -> Self {
        Self {
            method,
            path,
            query: None,
            body: None,
            view,
        }
    }

    fn body(self, body: Value) -> Self {
        Self {
            body: Some(body),
            ..self
        }
    }
}

/// How a successful answer is shown without --json.
enum View {
    /// The answer has no body: print this confirmation.
    Done(String),
    User,
    Users,
    /// A new key with its secret.
    NewKey,
    Keys,
    Bucket,
    Buckets,
    Usage,
    /// Shard counts and reshard progress.
    Stats,
    Workers,
}

impl AdminCommand {
    fn call(&self) -> Call<'_> {
        use AdminCommand as A;
        use Method as M;
        match self {
            A::User(UserCommand::Create { name }) => {
                Call::new(M::POST, vec!["users"], View::User).body(json!({ "name": name }))
            }
            A::User(UserCommand::List) => Call::new(M::GET, vec!["users"], View::Users),
            A::User(UserCommand::Info { name }) => {
                Call::new(M::GET, vec!["users", name], View::User)
            }
            A::User(UserCommand::Delete { name }) => Call::new(
                M::DELETE,
                vec!["users", name],
                View::Done(format!("deleted user {name}")),
            ),
            A::Key(KeyCommand::Create { user }) => {
                Call::new(M::POST, vec!["users", user, "keys"], View::NewKey)
            }
            A::Key(KeyCommand::List { user }) => {
                Call::new(M::GET, vec!["users", user, "keys"], View::Keys)
            }
            A::Key(KeyCommand::Revoke { key }) => Call::new(
                M::DELETE,
                vec!["keys", key],
                View::Done(format!("revoked key {key}")),
            ),
            A::Bucket(BucketCommand::Create { name, owner }) => {
                Call::new(M::POST, vec!["buckets"], View::Bucket)
                    .body(json!({ "name": name, "owner": owner }))
            }
            A::Bucket(BucketCommand::List) => Call::new(M::GET, vec!["buckets"], View::Buckets),
            A::Bucket(BucketCommand::Info { name }) => {
                Call::new(M::GET, vec!["buckets", name], View::Bucket)
            }
            A::Bucket(BucketCommand::Stats { name }) => {
                Call::new(M::GET, vec!["buckets", name, "stats"], View::Stats)
            }
            A::Bucket(BucketCommand::Reshard { name, shards, .. }) => {
                Call::new(M::POST, vec!["buckets", name, "reshard"], View::Stats)
                    .body(json!({ "shards": shards }))
            }
            A::Bucket(BucketCommand::Grant { name, user }) => {
                Call::new(M::PUT, vec!["buckets", name, "grants", user], View::Bucket)
            }
            A::Bucket(BucketCommand::Ungrant { name, user }) => Call::new(
                M::DELETE,
                vec!["buckets", name, "grants", user],
                View::Bucket,
            ),
            A::Bucket(BucketCommand::Delete {
                name,
                purge,
                bypass_object_lock,
            }) => Call {
                query: match (purge, bypass_object_lock) {
                    (_, true) => Some("purge=true&bypass-object-lock=true"),
                    (true, false) => Some("purge=true"),
                    (false, false) => None,
                },
                ..Call::new(
                    M::DELETE,
                    vec!["buckets", name],
                    View::Done(format!("deleted bucket {name}")),
                )
            },
            A::Quota(QuotaCommand::Set {
                bucket,
                max_objects,
                max_bytes,
            }) => Call::new(M::PUT, vec!["buckets", bucket, "quota"], View::Bucket)
                .body(json!({ "max_objects": max_objects, "max_bytes": max_bytes })),
            A::Quota(QuotaCommand::Clear { bucket }) => {
                Call::new(M::DELETE, vec!["buckets", bucket, "quota"], View::Bucket)
            }
            A::Usage => Call::new(M::GET, vec!["usage"], View::Usage),
            A::Workers => Call::new(M::GET, vec!["workers"], View::Workers),
        }
    }
}

impl View {
    /// The text to print for a successful call's answer.
    fn show(self, answer: Option<Value>) -> Result<String, String> {
        use render::decode;
        let render: fn(Value) -> Result<String, String> = match self {
            View::Done(text) => return Ok(format!("{text}\n")),
            View::User => |a| Ok(render::user(&decode(a)?)),
            View::Users => |a| Ok(render::users(&decode(a)?)),
            View::NewKey => |a| Ok(render::new_key(&decode(a)?)),
            View::Keys => |a| Ok(render::keys(&decode(a)?)),
            View::Bucket => |a| Ok(render::bucket(&decode(a)?)),
            View::Buckets => |a| Ok(render::buckets(&decode(a)?)),
            View::Usage => |a| Ok(render::usage(&decode(a)?)),
            View::Stats => |a| Ok(render::stats(&decode(a)?)),
            View::Workers => |a| Ok(render::workers(&decode(a)?)),
        };
        render(answer.ok_or("the admin API answered without a body")?)
    }
}

pub fn run(args: AdminArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = args.connection.client()?;
    let call = args.command.call();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut answer =
        runtime.block_on(client.call(call.method, &call.path, call.query, call.body.as_ref()))?;
    if let AdminCommand::Bucket(BucketCommand::Reshard {
        name, wait: true, ..
    }) = &args.command
    {
        answer = Some(runtime.block_on(wait::until_resharded(&client, name, answer))?);
    }
    if args.json {
        if let Some(answer) = answer {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        return Ok(());
    }
    if matches!(call.view, View::NewKey) {
        eprintln!("Store the secret key now: it is not shown again.");
    }
    print!("{}", call.view.show(answer)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> AdminArgs {
        let all = ["kura", "admin", "--access-key", "ROOT", "--secret-key", "S"];
        match Cli::try_parse_from(all.iter().chain(args)).unwrap().command {
            Command::Admin(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn arguments_do_not_shadow_the_connection_flags() {
        let args = parse(&["key", "revoke", "KURAREVOKED"]);
        assert_eq!(args.connection.access_key.as_deref(), Some("ROOT"));
        let call = args.command.call();
        assert_eq!(
            (call.method, call.path),
            (Method::DELETE, vec!["keys", "KURAREVOKED"])
        );
    }

    #[test]
    fn reshard_and_stats_map_to_admin_api_calls() {
        let args = parse(&["bucket", "reshard", "photos", "--shards", "16", "--wait"]);
        assert!(matches!(
            args.command,
            AdminCommand::Bucket(BucketCommand::Reshard { wait: true, .. })
        ));
        let call = args.command.call();
        assert_eq!(
            (call.method, call.path),
            (Method::POST, vec!["buckets", "photos", "reshard"])
        );
        assert_eq!(call.body, Some(json!({ "shards": 16 })));
        let args = parse(&["bucket", "stats", "photos"]);
        let call = args.command.call();
        assert_eq!(
            (call.method, call.path),
            (Method::GET, vec!["buckets", "photos", "stats"])
        );
        for bad in ["0", "1025", "x"] {
            let all = [
                "kura", "admin", "bucket", "reshard", "photos", "--shards", bad,
            ];
            assert!(Cli::try_parse_from(all).is_err(), "--shards {bad} accepted");
        }
    }

    #[test]
    fn commands_map_to_admin_api_calls() {
        let args = parse(&["quota", "set", "photos", "--max-bytes", "10GiB", "--json"]);
        assert!(args.json);
        let call = args.command.call();
        assert_eq!(call.path, vec!["buckets", "photos", "quota"]);
        assert_eq!(
            call.body,
            Some(json!({ "max_objects": null, "max_bytes": 10u64 << 30 }))
        );
        let args = parse(&["bucket", "grant", "photos", "bob"]);
        let call = args.command.call();
        assert_eq!(
            (call.method, call.path),
            (Method::PUT, vec!["buckets", "photos", "grants", "bob"])
        );
        let args = parse(&["bucket", "ungrant", "photos", "bob"]);
        let call = args.command.call();
        assert_eq!(
            (call.method, call.path),
            (Method::DELETE, vec!["buckets", "photos", "grants", "bob"])
        );
        let args = parse(&["bucket", "delete", "photos", "--purge"]);
        let call = args.command.call();
        assert_eq!(
            (call.method, call.query),
            (Method::DELETE, Some("purge=true"))
        );
    }
}
