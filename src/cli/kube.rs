//! `ferry kube NAME [-p ...] --shards N`: ready-to-apply Kubernetes manifests for a sharded run:
//! a ConfigMap with the script and its parameters, an Indexed Job whose pods are the shards
//! (`JOB_COMPLETION_INDEX` is the shard index), and a suspended finalize Job to resume once every
//! shard finished. Credentials are never written into the manifests: the pods read them from a
//! Secret by reference. See docs/scale-out.md.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Map, Value, json};

use crate::runtime::context::ScriptInfo;
use crate::runtime::error::{FerryError, Result};
use crate::runtime::output::say;
use crate::runtime::params::{RawParams, RawValue};
use crate::runtime::remote_state::is_remote;
use crate::runtime::scripts;

/// Where the pods mount the ConfigMap.
const MOUNT: &str = "/etc/ferry";

#[derive(Args, Clone, Debug)]
pub struct KubeArgs {
    /// Bundled procedure name, or path to a Lua file.
    pub name_or_file: String,
    /// Set a parameter (repeatable); secret parameters go in the Secret, not here.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Read parameters from a KEY=VALUE, .toml or .json file (-p wins).
    #[arg(long = "params", value_name = "FILE")]
    pub params_file: Option<PathBuf>,
    /// Number of shards: the Indexed Job's completions.
    #[arg(long, value_name = "N")]
    pub shards: u32,
    /// Pods running at once (default: all shards).
    #[arg(long, value_name = "P")]
    pub parallelism: Option<u32>,
    /// Container image with the ferry binary as its entry point.
    #[arg(long, value_name = "IMG", default_value = concat!("ferry:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// Shared state of all shards: s3://bucket/prefix (gs://, az://), or a folder on the
    /// volume of --volume-claim.
    #[arg(long, value_name = "URL")]
    pub state: String,
    /// A PersistentVolumeClaim (ReadWriteMany) mounted at --state when it is a folder.
    #[arg(long, value_name = "CLAIM")]
    pub volume_claim: Option<String>,
    /// The Secret the pods take credentials from as environment variables (AWS_ACCESS_KEY_ID,
    /// FERRY_PARAM_<SECRET PARAMETER>, ...); default <job name>-credentials.
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// Plain (not secret) environment of the pods, e.g. AWS_REGION=eu-west-1 (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Namespace of every object (default: kubectl's current one).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// CPU request of each pod.
    #[arg(long, default_value = "1")]
    pub cpu: String,
    /// Memory request (and limit) of each pod.
    #[arg(long, default_value = "1Gi")]
    pub memory: String,
    /// Pod retries of each Job before it fails.
    #[arg(long, default_value_t = 6)]
    pub backoff_limit: u32,
    /// Answer yes to the procedure's confirmations (pods have no terminal to ask on).
    #[arg(long)]
    pub yes: bool,
    /// Job name (default: ferry-<procedure>).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// A DNS-1123 label from any text: lower case, `-` for anything else, at most 52 characters
/// (room for the `-finalize` suffix and Kubernetes' pod name suffixes).
fn dns_name(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let mut out = out.trim_matches('-').to_string();
    out.truncate(52);
    out.trim_end_matches('-').to_string()
}

/// The script's declared parameters (run in describe mode, as `ferry help` does).
fn declared_secrets(script: &ScriptInfo) -> Vec<String> {
    let ctx = super::help::describe(script);
    ctx.decls
        .borrow()
        .iter()
        .filter(|d| d.secret)
        .map(|d| d.name.clone())
        .collect()
}

pub fn kube(args: KubeArgs) -> Result<()> {
    if args.shards == 0 {
        return Err(FerryError::usage("--shards must be above 0"));
    }
    let parallelism = args.parallelism.unwrap_or(args.shards);
    if parallelism == 0 {
        return Err(FerryError::usage("--parallelism must be above 0"));
    }
    if !is_remote(&args.state) {
        let folder = args.state.strip_prefix("file://").unwrap_or(&args.state);
        if args.volume_claim.is_none() || !folder.starts_with('/') {
            return Err(FerryError::usage(format!(
                "--state {}: pods on different nodes share no folder; give an object store URL \
                 (s3://bucket/prefix, gs://..., az://...) or an absolute path with \
                 --volume-claim CLAIM (a ReadWriteMany volume mounted there)",
                args.state
            )));
        }
    }
    let script = scripts::resolve(&args.name_or_file)?;
    let secrets = declared_secrets(&script);
    let raw = RawParams::from_sources(&args.params, args.params_file.as_deref())?;
    let job = args
        .name
        .as_deref()
        .map(dns_name)
        .unwrap_or_else(|| dns_name(&format!("ferry-{}", script.name)));
    if job.is_empty() {
        return Err(FerryError::usage("the job name has no letters or digits"));
    }
    let secret_name = args
        .secret
        .clone()
        .unwrap_or_else(|| format!("{job}-credentials"));

    // Parameters: the command line and --params only (not this machine's FERRY_PARAM_*), and
    // never a secret one.
    let mut params = Map::new();
    let mut held_back = Vec::new();
    for (k, (v, source)) in &raw.values {
        if *source == "environment" {
            continue;
        }
        if secrets.contains(k) {
            held_back.push(k.clone());
            continue;
        }
        let value = match v {
            RawValue::Text(s) => json!(s),
            RawValue::List(items) => json!(items),
        };
        params.insert(k.clone(), value);
    }
    let script_file = format!("{}.lua", dns_name(&script.name));
    let labels = json!({
        "app.kubernetes.io/name": "ferry",
        "app.kubernetes.io/instance": job,
        "app.kubernetes.io/component": "migration",
    });
    let meta = |name: &str| {
        let mut m = json!({"name": name, "labels": labels});
        if let Some(ns) = &args.namespace {
            m["namespace"] = json!(ns);
        }
        m
    };

    let mut env = vec![json!({"name": "FERRY_NO_BARS", "value": "1"})];
    for item in &args.env {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| FerryError::usage(format!("--env expects KEY=VALUE, got '{item}'")))?;
        env.push(json!({"name": k.trim(), "value": v}));
    }
    for k in &secrets {
        let var = format!("FERRY_PARAM_{}", k.to_ascii_uppercase());
        // Required when given on the command line; otherwise the procedure decides.
        env.push(json!({"name": var, "valueFrom": {"secretKeyRef": {
            "name": secret_name, "key": var, "optional": !held_back.contains(k)}}}));
    }
    let mut mounts = vec![json!({"name": "procedure", "mountPath": MOUNT, "readOnly": true})];
    let mut volumes = vec![json!({"name": "procedure", "configMap": {"name": job}})];
    if let Some(claim) = &args.volume_claim {
        let folder = args.state.strip_prefix("file://").unwrap_or(&args.state);
        mounts.push(json!({"name": "state", "mountPath": folder}));
        volumes.push(json!({"name": "state", "persistentVolumeClaim": {"claimName": claim}}));
    }
    let container = |phase_args: Vec<String>| {
        let mut a = vec![
            "run".to_string(),
            format!("{MOUNT}/{script_file}"),
            "--params".into(),
            format!("{MOUNT}/params.json"),
        ];
        a.extend(phase_args);
        a.extend(["--state".into(), args.state.clone()]);
        if args.yes {
            a.push("--yes".into());
        }
        json!({
            "name": "ferry",
            "image": args.image,
            "args": a,
            "env": env,
            "envFrom": [{"secretRef": {"name": secret_name, "optional": true}}],
            "resources": {
                "requests": {"cpu": args.cpu, "memory": args.memory},
                "limits": {"memory": args.memory},
            },
            "volumeMounts": mounts,
        })
    };
    // Bad usage (2) and an unanswerable confirmation (3) do not get better on retry.
    let failure_policy = json!({"rules": [{"action": "FailJob", "onExitCodes": {
        "containerName": "ferry", "operator": "In", "values": [2, 3]}}]});
    let pod = |c: Value| {
        json!({
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [c], "volumes": volumes},
        })
    };
    let n = args.shards.to_string();
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(&job),
        "data": {
            script_file.clone(): script.source,
            "params.json": serde_json::to_string_pretty(&Value::Object(params)).unwrap_or_default() + "\n",
        },
    });
    let shards_job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(&format!("{job}-shards")),
        "spec": {
            "completionMode": "Indexed",
            "completions": args.shards,
            "parallelism": parallelism,
            "backoffLimit": args.backoff_limit,
            "podFailurePolicy": failure_policy,
            "template": pod(container(vec!["--phase".into(), "shards".into(), "--shards".into(), n.clone()])),
        },
    });
    let finalize_job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(&format!("{job}-finalize")),
        "spec": {
            "suspend": true,
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": args.backoff_limit,
            "podFailurePolicy": failure_policy,
            "template": pod(container(vec!["--phase".into(), "finalize".into(), "--shards".into(), n])),
        },
    });
    let ns = args
        .namespace
        .as_deref()
        .map(|n| format!(" -n {n}"))
        .unwrap_or_default();
    let mut out = format!(
        "# ferry kube {}: {} shard(s), {parallelism} at a time, state {}\n\
         # kubectl{ns} create secret generic {secret_name} --from-literal=AWS_ACCESS_KEY_ID=... \
         --from-literal=AWS_SECRET_ACCESS_KEY=...{}\n\
         # kubectl{ns} apply -f THIS_FILE\n\
         # kubectl{ns} wait --for=condition=complete --timeout=24h job/{job}-shards\n\
         # kubectl{ns} patch job {job}-finalize --type=merge -p '{{\"spec\":{{\"suspend\":false}}}}'\n\
         # ferry status --state {}\n",
        args.name_or_file,
        args.shards,
        args.state,
        secrets
            .iter()
            .map(|k| format!(" --from-literal=FERRY_PARAM_{}=...", k.to_ascii_uppercase()))
            .collect::<String>(),
        args.state,
    );
    for doc in [config_map, shards_job, finalize_job] {
        out.push_str("---\n");
        out.push_str(&to_yaml(&doc));
    }
    print!("{out}");
    for k in held_back {
        say(&format!(
            "note: the secret parameter '{k}' is not written into the manifests; put it in the \
             Secret {secret_name} as FERRY_PARAM_{}",
            k.to_ascii_uppercase()
        ));
    }
    Ok(())
}

/// YAML for a JSON value: block mappings and sequences, strings double-quoted (JSON escapes are
/// valid YAML) except multi-line text, which becomes a literal block.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                out.push_str(&format!("{pad}{}:", scalar(&Value::String(k.clone()))));
                emit_child(val, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for val in a {
                out.push_str(&format!("{pad}-"));
                match val {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key on the dash line, the others aligned below it.
                        let mut first = true;
                        for (k, x) in m {
                            if first {
                                out.push_str(&format!(" {}:", scalar(&Value::String(k.clone()))));
                                first = false;
                            } else {
                                out.push_str(&format!(
                                    "{pad}  {}:",
                                    scalar(&Value::String(k.clone()))
                                ));
                            }
                            emit_child(x, indent + 2, out);
                        }
                    }
                    other => emit_child(other, indent, out),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// The value after `key:` or `-`: inline for scalars, a block below for the rest.
fn emit_child(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        Value::String(s) if literal_block_ok(s) => {
            let body = s.strip_suffix('\n').unwrap_or(s);
            let chomp = if s.ends_with('\n') { "" } else { "-" };
            out.push_str(&format!(" |{chomp}\n"));
            let pad = " ".repeat(indent + 2);
            for line in body.split('\n') {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("{pad}{line}\n"));
                }
            }
        }
        other => out.push_str(&format!(" {}\n", scalar(other))),
    }
}

/// Multi-line text that a literal block keeps byte for byte.
fn literal_block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.ends_with("\n\n")
        && !s.starts_with([' ', '\n'])
        && !s
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{feff}')
        && !s.split('\n').any(|l| l.ends_with(' '))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) if plain_ok(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Text YAML reads back as the same string without quotes: a letter first, then letters,
/// digits and `._/-`, and none of the words YAML 1.1 reads as booleans or null.
fn plain_ok(s: &str) -> bool {
    const WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(
            dns_name("ferry-Seafile_migrate.lua"),
            "ferry-seafile-migrate-lua"
        );
        assert_eq!(dns_name("--a--b--"), "a-b");
        assert!(dns_name(&"x".repeat(80)).len() <= 52);
    }

    #[test]
    fn yaml_keeps_scripts_and_quotes_strings() {
        let v = json!({"data": {"s.lua": "local x = 1\n\nprint(x)\n", "m": "1"},
                        "list": [{"a": 1, "b": [true]}, "x"], "empty": {}});
        let y = to_yaml(&v);
        assert!(
            y.contains("s.lua: |\n    local x = 1\n\n    print(x)\n"),
            "{y}"
        );
        assert!(y.contains("m: \"1\"\n"), "{y}");
        assert!(
            y.contains("list:\n  - a: 1\n    b:\n      - true\n  - x\n"),
            "{y}"
        );
        assert!(y.contains("empty: {}\n"), "{y}");
        assert!(to_yaml(&json!({"on": "yes"})).contains("\"on\": \"yes\""));
    }
}
