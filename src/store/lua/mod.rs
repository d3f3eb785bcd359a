//! Lua binding of `ferry.store`: store handles (`copy.rs`: `ferry.store.copy`).

mod copy;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use futures::StreamExt;
use futures::stream::BoxStream;
use mlua::{Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::{Entry, OpenOptions, Store};
use crate::runtime::context::ctx;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult, Result};
use crate::runtime::options::size_opt;
use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};

/// The options of `ferry.store.open`, which `s:set_credentials` also takes (a script may hand it
/// the table it opened the store with; only the three credential keys are used).
const OPEN_OPTIONS: &[Opt] = &[
    Opt::def("create", "boolean", "false").doc("create a missing local folder (file://)"),
    Opt::def("probe", "boolean", "true").doc("false skips the check request made at open"),
    Opt::def("layout", "\"flat\"|\"seafile-fs\"|\"split2\"", "\"flat\"").doc(
        "\"seafile-fs\" (alias split2) stores key abcdef as ab/cdef, as Seafile's backends do",
    ),
    Opt::new("ca_file", "string").doc("PEM file of CA roots for TLS (else AWS_CA_BUNDLE for S3)"),
    Opt::new("allow_http", "boolean").doc("allow a plain http:// endpoint (S3)"),
    Opt::new("endpoint", "string")
        .doc("the service URL, for S3-compatible servers, Azurite or a GCS emulator"),
    Opt::new("region", "string").doc("the S3 region"),
    Opt::new("access_key_id", "string")
        .doc("S3 access key id (with secret_access_key; s:set_credentials can replace both)"),
    Opt::new("secret_access_key", "string").doc("S3 secret access key"),
    Opt::new("session_token", "string").doc("S3 session token of temporary credentials"),
    Opt::new("virtual_hosted_style", "boolean")
        .doc("address <bucket>.<host> instead of <host>/<bucket> (S3)"),
    Opt::new("skip_signature", "boolean").doc("send unsigned requests (a public S3 bucket)"),
    Opt::new("unsigned_payload", "boolean").doc(
        "send S3 request bodies as UNSIGNED-PAYLOAD instead of hashing every byte with SHA-256 \
         for the signature; default true for AWS itself (with a CRC64NVME checksum header), \
         false with an endpoint; over http it warns",
    ),
    Opt::new("sse_c_key", "string").doc("S3 SSE-C customer key, the raw 32 bytes"),
    Opt::new("server_side_encryption", "string")
        .doc("S3 server-side encryption of new objects (AES256, aws:kms...)"),
    Opt::new("sse_kms_key_id", "string").doc("the KMS key of aws:kms encryption (S3)"),
    Opt::new("sse_customer_key_base64", "string").doc("S3 SSE-C customer key, base64"),
    Opt::new("acl", "string").doc("canned ACL of new objects (S3)"),
    Opt::new("acl_from_bucket", "boolean").doc("give new objects the bucket's ACL (S3)"),
    Opt::new("account", "string").doc("the storage account (Azure; alias account_name)"),
    Opt::new("account_name", "string").doc("alias of account (Azure)"),
    Opt::new("access_key", "string").doc("the account key (Azure; alias account_key, master_key)"),
    Opt::new("account_key", "string").doc("alias of access_key (Azure)"),
    Opt::new("master_key", "string").doc("alias of access_key (Azure)"),
    Opt::new("sas", "string").doc("a SAS token (Azure; alias sas_token, sas_key)"),
    Opt::new("sas_token", "string").doc("alias of sas (Azure)"),
    Opt::new("sas_key", "string").doc("alias of sas (Azure)"),
    Opt::new("token", "string").doc("alias of bearer_token (Azure)"),
    Opt::new("bearer_token", "string").doc("an OAuth bearer token (Azure, GCS)"),
    Opt::new("connection_string", "string").doc("an Azure storage connection string"),
    Opt::new("use_emulator", "boolean").doc("talk to Azurite (Azure)"),
    Opt::new("service_account", "string").doc("path of a service account JSON file (GCS)"),
    Opt::new("service_account_key", "string").doc("a service account JSON key, inline (GCS)"),
    Opt::new("application_credentials", "string")
        .doc("path of application default credentials (GCS)"),
    Opt::new("anonymous", "boolean").doc("unsigned requests (a public GCS bucket)"),
    Opt::new("list_page_size", "integer").doc("objects per listing page (GCS)"),
    Opt::def("timeout", "number|string", "300").doc(
        "limit of one whole request, body included, in seconds or a duration (\"2m\"); a request \
         past it is retried, then fails naming the host (S3, Azure, GCS)",
    ),
    Opt::def("connect_timeout", "number|string", "10")
        .doc("limit of opening a connection, seconds or a duration (S3, Azure, GCS)"),
    Opt::new("base_url", "string").doc("alias of endpoint (GCS)"),
    Opt::new("file_mode", "string").doc("octal mode of new files, e.g. \"0600\" (file)"),
    Opt::new("fsync", "boolean").doc("flush file and folder before a write returns (file)"),
    Opt::new("aws_*", "string|number|boolean")
        .doc("object_store's own setting of that name, for S3"),
    Opt::new("azure_*", "string|number|boolean")
        .doc("object_store's own setting of that name, for Azure"),
    Opt::new("google_*", "string|number|boolean")
        .doc("object_store's own setting of that name, for GCS"),
];

pub static MODULE: ModuleDef = ModuleDef {
    name: "store",
    summary: "Object stores (file, memory, S3, GCS, Azure) and the copy engine.",
    functions: &[
        FnDoc {
            name: "open",
            signature: "ferry.store.open(url [, {create = false, probe = true, layout = \"flat\", ca_file, allow_http, endpoint, region, access_key_id, secret_access_key, session_token, virtual_hosted_style, skip_signature, unsigned_payload, sse_c_key, server_side_encryption, sse_kms_key_id, sse_customer_key_base64, acl, acl_from_bucket, account, account_name, access_key, account_key, master_key, sas, sas_token, sas_key, token, bearer_token, connection_string, use_emulator, service_account, service_account_key, application_credentials, anonymous, list_page_size, timeout, connect_timeout, base_url, file_mode, fsync, aws_*, azure_*, google_*}]) -> store",
            params: &[
                Param::new("url", "string").doc("file://, memory://, s3://, gs://, az:// or an Azure blob URL"),
                Param::opt("opts", "table"),
            ],
            options: OPEN_OPTIONS,
            returns: "ferry.store.Store",
            doc: "Opens file:///abs/path, memory://name, s3://bucket/prefix, gs://bucket/prefix, \
                  az://container/prefix or an Azure blob URL with a SAS query (see \
                  docs/stores.md and docs/stores-azure.md). Each option belongs to one kind of \
                  store, and a key another kind of store takes is refused. STORAGE_EMULATOR_HOST \
                  points gs:// at an emulator; timeout and connect_timeout bound each request \
                  and its connection (S3, Azure, GCS). Credentials otherwise come from the usual AWS_*, \
                  AZURE_*, GOOGLE_* variables. A bad URL, missing bucket or rejected credential \
                  fails here. The methods of the store are those of ferry.store.Store.",
            example: Some(
                "local s = ferry.store.open(\"memory://doc-example\")\ns:put(\"a/b.txt\", \"hello\")\nassert(s:get(\"a/b.txt\") == \"hello\")\nassert(s:head(\"a/b.txt\").size == 5 and s:head(\"nope\") == nil)\nlocal n = 0\nfor e in s:list(\"a\") do n = n + 1 end\nassert(n == 1)\nlocal d = os.tmpname()\nferry.fs.remove(d)\nferry.fs.mkdir(d)\nferry.fs.write(d .. \"/00000.smoosh\", \"segment\")\nlocal z = s:put_zip(d, \"seg/index.zip\", {level = 1})\nassert(z.files == 1 and s:head(\"seg/index.zip\").size == z.bytes)\nferry.fs.remove(d, {recursive = true})",
            ),
        },
        FnDoc {
            name: "copy",
            signature: "ferry.store.copy(src, dst, {prefix | keys | iter, map, compare = \"size\", verify = \"none\", concurrency = 64, retries = 5, fail_fast = false, list_cache, list_cache_sizes = true, dst_prefix, multipart_threshold, part_size, part_concurrency, max_buffer, shard, throttle, ops_throttle, title, abort_stale_uploads = true}) -> {copied, skipped, failed, bytes, errors, ...}",
            params: &[
                Param::new("src", "ferry.store.Store").doc("where the objects are read"),
                Param::new("dst", "ferry.store.Store").doc("where they are written"),
                Param::opt("opts", "table"),
            ],
            options: &[
                Opt::new("prefix", "string").doc("copy the objects listed under this prefix of src"),
                Opt::new("keys", "string[]").doc("copy these keys of src"),
                Opt::new("iter", "fun(): (string|{key: string, size: integer?})?")
                    .doc("returns the next key (or {key, size}), nil at the end"),
                Opt::new("map", "fun(key: string): string?")
                    .doc("the destination key of a source key, nil to leave the object out; must not call async primitives"),
                Opt::def("compare", "\"none\"|\"exists\"|\"size\"|\"checksum\"", "\"size\"")
                    .doc("what makes an object at the destination up to date (skipped)"),
                Opt::def("verify", "\"none\"|\"size\"|\"checksum\"", "\"none\"")
                    .doc("check each copied object afterwards"),
                Opt::def("concurrency", "integer", "64").doc("objects copied at once"),
                Opt::def("retries", "integer", "5").doc("retries of a failed object"),
                Opt::def("fail_fast", "boolean", "false").doc("stop at the first failed object"),
                Opt::new("list_cache", "string")
                    .doc("file holding the destination listing: filled by the first run, appended as objects land"),
                Opt::def("list_cache_sizes", "boolean", "true").doc("keep sizes in list_cache"),
                Opt::new("dst_prefix", "string").doc("list only this prefix of dst"),
                Opt::def("multipart_threshold", "integer|string", "\"16MiB\"")
                    .doc("objects larger than this go in parts"),
                Opt::def("part_size", "integer|string", "\"8MiB\"").doc("size of a part, at least 5MiB"),
                Opt::def("part_concurrency", "integer", "4").doc("parts of one object uploaded at once"),
                Opt::def("max_buffer", "integer|string", "\"512MiB\"")
                    .doc("memory held by parts in flight, over all objects"),
                Opt::new("shard", "{index: integer, count: integer}")
                    .doc("copy only this shard's keys (default from --shard)"),
                Opt::new("throttle", "ferry.throttle.Limiter|number|string")
                    .doc("bytes/s: a limiter or a rate such as \"50MiB\""),
                Opt::new("ops_throttle", "ferry.throttle.Limiter|number|string")
                    .doc("objects/s: a limiter or a rate"),
                Opt::new("title", "string").doc("the name in progress lines and the summary"),
                Opt::def("abort_stale_uploads", "boolean", "true").doc(
                    "S3: abort the multipart uploads earlier (killed) runs left open on the keys this copy writes",
                ),
            ],
            returns: "ferry.store.CopyReport",
            doc: "Copies objects from src to dst. The source is one of prefix (a listing of \
                  src), keys or iter. What to copy is decided from one listing of dst (or \
                  list_cache) and compare. Under --dry-run nothing is written and the report \
                  gives what would be copied. Failed objects are listed in report.errors; the \
                  copy goes on. To S3, multipart uploads that earlier runs left open on the keys \
                  this copy writes are aborted before each is written (see docs/reliability.md).",
            example: Some(
                "local a = ferry.store.open(\"memory://copy-src\")\nlocal b = ferry.store.open(\"memory://copy-dst\")\na:put(\"ab/cdef\", \"x\")\nlocal r = ferry.store.copy(a, b, {map = function(k) return (k:gsub(\"/\", \"\")) end})\nassert(r.copied == 1 and b:get(\"abcdef\") == \"x\")\nassert(ferry.store.copy(a, b, {map = function(k) return (k:gsub(\"/\", \"\")) end}).skipped == 1)",
            ),
        },
    ],
    classes: &[&STORE, &ENTRY, &COPY_REPORT],
    constants: &[],
    build,
};

/// The handle class of this module, described once for the option checks, `ferry doc`, the LuaLS
/// stubs, `ferry check` and REPL completion.
pub static STORE: ClassDoc = ClassDoc {
    name: "ferry.store.Store",
    doc: "An open object store, from ferry.store.open.",
    fields: &[("url", "string")],
    methods: &[
        FnDoc {
            name: "list",
            signature: "s:list([prefix [, {delimiter = false}]]) -> iterator of {key, size, etag, last_modified}",
            params: &[Param::opt("prefix", "string"), Param::opt("opts", "table")],
            options: &[Opt::def("delimiter", "boolean", "false")
                .doc("one level only: folders come as {key = \"dir/\", prefix = true}")],
            returns: "fun(): ferry.store.Entry?",
            doc: "Lists the objects under prefix, one table per object.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-list\")\ns:put(\"logs/a.txt\", \"1\")\ns:put(\"logs/old/b.txt\", \"22\")\nlocal bytes = 0\nfor e in s:list(\"logs/\") do bytes = bytes + e.size end\nassert(bytes == 3)\nlocal top = {}\nfor e in s:list(\"logs/\", {delimiter = true}) do top[#top + 1] = e.key end\ntable.sort(top)\nassert(top[1] == \"logs/a.txt\" and top[2] == \"logs/old/\")",
            ),
        },
        FnDoc {
            name: "head",
            signature: "s:head(key) -> {key, size, etag, last_modified} | nil",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "ferry.store.Entry?",
            doc: "The object's metadata, nil when it is absent.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-head\")\ns:put(\"a\", \"hello\")\nassert(s:head(\"a\").size == 5)\nassert(s:head(\"missing\") == nil)",
            ),
        },
        FnDoc {
            name: "exists",
            signature: "s:exists(key) -> boolean",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "boolean",
            doc: "Whether the object exists.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-exists\")\ns:put(\"a\", \"x\")\nassert(s:exists(\"a\") and not s:exists(\"b\"))",
            ),
        },
        FnDoc {
            name: "get",
            signature: "s:get(key) -> bytes",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "string",
            doc: "The whole object as a string.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-get\")\ns:put(\"conf.json\", '{\"n\": 1}')\nassert(ferry.json.decode(s:get(\"conf.json\")).n == 1)",
            ),
        },
        FnDoc {
            name: "put",
            signature: "s:put(key, bytes)",
            params: &[Param::new("key", "string"), Param::new("bytes", "string")],
            options: &[],
            returns: "",
            doc: "Writes the object (nothing under --dry-run).",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-put\")\ns:put(\"a/b.bin\", \"\\0\\1\\2\")\nassert(#s:get(\"a/b.bin\") == 3)",
            ),
        },
        FnDoc {
            name: "delete",
            signature: "s:delete(key)",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "",
            doc: "Deletes the object.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-delete\")\ns:put(\"tmp\", \"x\")\ns:delete(\"tmp\")\nassert(not s:exists(\"tmp\"))",
            ),
        },
        FnDoc {
            name: "copy_object",
            signature: "s:copy_object(from, to)",
            params: &[Param::new("from", "string"), Param::new("to", "string")],
            options: &[],
            returns: "",
            doc: "Server-side copy inside this store.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-copy-object\")\ns:put(\"v1/a\", \"x\")\ns:copy_object(\"v1/a\", \"v2/a\")\nassert(s:get(\"v2/a\") == \"x\")",
            ),
        },
        FnDoc {
            name: "get_file",
            signature: "s:get_file(key, path) -> bytes",
            params: &[Param::new("key", "string"), Param::new("path", "string")],
            options: &[],
            returns: "integer",
            doc: "Downloads the object to a local file (written to a temp file, then renamed) and returns its size.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-get-file\")\ns:put(\"a.txt\", \"hello\")\nlocal p = os.tmpname()\nassert(s:get_file(\"a.txt\", p) == 5 and ferry.fs.read(p) == \"hello\")\nferry.fs.remove(p)",
            ),
        },
        FnDoc {
            name: "put_file",
            signature: "s:put_file(path, key [, {multipart_threshold = \"16MiB\"}]) -> bytes",
            params: &[
                Param::new("path", "string"),
                Param::new("key", "string"),
                Param::opt("opts", "table"),
            ],
            options: &[
                Opt::def("multipart_threshold", "integer|string", "\"16MiB\"")
                    .doc("files larger than this are uploaded in parts"),
            ],
            returns: "integer",
            doc: "Uploads a local file and returns its size.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-put-file\")\nlocal p = os.tmpname()\nferry.fs.write(p, \"abc\")\nassert(s:put_file(p, \"up/abc.txt\", {multipart_threshold = \"8MiB\"}) == 3)\nassert(s:get(\"up/abc.txt\") == \"abc\")\nferry.fs.remove(p)",
            ),
        },
        FnDoc {
            name: "put_zip",
            signature: "s:put_zip(local_dir, key [, {level = 6}]) -> {bytes, files}",
            params: &[
                Param::new("local_dir", "string"),
                Param::new("key", "string"),
                Param::opt("opts", "table"),
            ],
            options: &[Opt::def("level", "integer", "6").doc("deflate level 0..9 (0: stored)")],
            returns: "{bytes: integer, files: integer}",
            doc: "Zips the folder's files and streams the zip into one object, never held whole in memory or on disk.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-put-zip\")\nlocal d = os.tmpname()\nferry.fs.remove(d)\nferry.fs.mkdir(d)\nferry.fs.write(d .. \"/00000.smoosh\", \"segment\")\nlocal z = s:put_zip(d, \"seg/index.zip\", {level = 1})\nassert(z.files == 1 and s:head(\"seg/index.zip\").size == z.bytes)\nferry.fs.remove(d, {recursive = true})",
            ),
        },
        FnDoc {
            name: "check_zip",
            signature: "s:check_zip(key) -> {files, bytes, entries = {{name, size, crc}}}",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "{files: integer, bytes: integer, entries: {name: string, size: integer, crc: integer}[]}",
            doc: "Reads the object entry by entry as java.util.zip.ZipInputStream does, checking sizes and CRCs.",
            example: Some(
                "local s = ferry.store.open(\"memory://ex-check-zip\")\nlocal d = os.tmpname()\nferry.fs.remove(d)\nferry.fs.mkdir(d)\nferry.fs.write(d .. \"/meta.smoosh\", \"v1\")\ns:put_zip(d, \"index.zip\")\nlocal z = s:check_zip(\"index.zip\")\nassert(z.files == 1 and z.entries[1].name == \"meta.smoosh\" and z.entries[1].size == 2)\nferry.fs.remove(d, {recursive = true})",
            ),
        },
        FnDoc {
            name: "set_credentials",
            signature: "s:set_credentials(opts)",
            params: &[Param::new("opts", "table")],
            options: OPEN_OPTIONS,
            returns: "",
            doc: "S3 stores opened with access_key_id and secret_access_key: every later request is signed with these, including the remaining parts of multipart uploads under way. Takes the options table of ferry.store.open (a script may pass the one it opened the store with); only access_key_id, secret_access_key and session_token are used.",
            example: Some(
                "-- probe = false: no request is made, so no server is needed here\nlocal s = ferry.store.open(\"s3://bucket/prefix\", {endpoint = \"http://127.0.0.1:9\", allow_http = true,\n  region = \"us-east-1\", access_key_id = \"old-id\", secret_access_key = \"old-secret\", probe = false})\ns:set_credentials{access_key_id = \"new-id\", secret_access_key = \"new-secret\", session_token = \"token\"}",
            ),
        },
    ],
};

/// What `s:list` and `s:head` return for an object.
pub static ENTRY: ClassDoc = ClassDoc {
    name: "ferry.store.Entry",
    doc: "An object in a listing (s:list) or s:head's answer; a folder of a delimiter listing has prefix = true.",
    fields: &[
        ("key", "string"),
        ("size", "integer"),
        ("etag", "string?"),
        ("last_modified", "string"),
        ("prefix", "boolean?"),
    ],
    methods: &[],
};

/// What `ferry.store.copy` returns.
pub static COPY_REPORT: ClassDoc = ClassDoc {
    name: "ferry.store.CopyReport",
    doc: "The report of ferry.store.copy: objects copied, skipped (already up to date), failed, \
          left out by map, and of other shards; errors lists each failed object.",
    fields: &[
        ("copied", "integer"),
        ("skipped", "integer"),
        ("failed", "integer"),
        ("bytes", "integer"),
        ("skipped_bytes", "integer"),
        ("left_out", "integer"),
        ("other_shards", "integer"),
        ("retried", "integer"),
        ("seconds", "number"),
        ("dry_run", "boolean"),
        ("inventory", "\"listing\"|\"cache\""),
        ("destination_objects", "integer"),
        ("errors", "{key: string, kind: string, message: string}[]"),
        ("stale_uploads", "integer"),
        ("stale_uploads_aborted", "integer"),
    ],
    methods: &[],
};

/// A store handle; the second field is set for S3 stores opened with keys (see
/// [`super::open::open_updatable`]): `set_credentials` replaces them.
#[derive(Clone)]
pub struct LuaStore(
    pub Store,
    pub Option<std::sync::Arc<super::open::s3_credentials::UpdatableAwsCredentials>>,
);

fn entry_table(lua: &Lua, e: &Entry) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("key", e.key.as_str())?;
    t.set("size", e.size)?;
    t.set("etag", e.etag.clone())?;
    t.set("last_modified", e.last_modified.to_rfc3339())?;
    Ok(t)
}

type EntryStream = BoxStream<'static, Result<Entry>>;

impl UserData for LuaStore {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("url", |_, s| Ok(s.0.display.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(mlua::MetaMethod::ToString, |_, s, ()| {
            Ok(format!("store {}", s.0.display))
        });
        m.add_method("set_credentials", |_, s, t: Table| {
            crate::runtime::options::check_method(Some(&t), &STORE, "set_credentials")?;
            let Some(creds) = &s.1 else {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "store {}: set_credentials needs an S3 store opened with \
                         access_key_id and secret_access_key",
                        s.0.display
                    ),
                )
                .into());
            };
            let field = |k: &str| -> mlua::Result<Option<String>> { t.get::<Option<String>>(k) };
            let (Some(id), Some(secret)) = (field("access_key_id")?, field("secret_access_key")?)
            else {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "store {}: set_credentials needs access_key_id and secret_access_key",
                        s.0.display
                    ),
                )
                .into());
            };
            creds.set(&id, &secret, field("session_token")?.as_deref());
            Ok(())
        });
        m.add_async_method(
            "list",
            |lua, s, (prefix, opts): (Option<String>, Option<Table>)| async move {
                crate::runtime::options::check_method(opts.as_ref(), &STORE, "list")?;
                let delimiter = match &opts {
                    Some(o) => o.get::<Option<bool>>("delimiter")?.unwrap_or(false),
                    None => false,
                };
                if delimiter {
                    let (objects, prefixes) = s.0.list_dir(prefix.as_deref()).await.lua_err()?;
                    let mut items: Vec<Table> = Vec::new();
                    for e in &objects {
                        items.push(entry_table(&lua, e)?);
                    }
                    for p in prefixes {
                        let t = lua.create_table()?;
                        t.set("key", format!("{p}/"))?;
                        t.set("prefix", true)?;
                        items.push(t);
                    }
                    let mut iter = items.into_iter();
                    return lua.create_function_mut(move |_, ()| Ok(iter.next()));
                }
                let stream: Rc<RefCell<Option<EntryStream>>> =
                    Rc::new(RefCell::new(Some(s.0.list(prefix.as_deref()).lua_err()?)));
                lua.create_async_function(move |lua, ()| {
                    let stream = stream.clone();
                    async move {
                        let taken = stream.borrow_mut().take();
                        let Some(mut st) = taken else { return Ok(None) };
                        let next = st.next().await;
                        match next {
                            Some(Ok(e)) => {
                                *stream.borrow_mut() = Some(st);
                                Ok(Some(entry_table(&lua, &e)?))
                            }
                            Some(Err(e)) => Err(e.into()),
                            None => Ok(None),
                        }
                    }
                })
            },
        );
        m.add_async_method("head", |lua, s, key: String| async move {
            match s.0.head(&key).await.lua_err()? {
                Some(e) => Ok(Some(entry_table(&lua, &e)?)),
                None => Ok(None),
            }
        });
        m.add_async_method("exists", |_, s, key: String| async move {
            Ok(s.0.head(&key).await.lua_err()?.is_some())
        });
        m.add_async_method("get", |lua, s, key: String| async move {
            let data = s.0.get(&key).await.lua_err()?;
            lua.create_string(&data)
        });
        m.add_async_method(
            "put",
            |lua, s, (key, data): (String, mlua::LuaString)| async move {
                let bytes = bytes::Bytes::copy_from_slice(&data.as_bytes());
                if ctx(&lua).would(&format!(
                    "write {} bytes to '{key}' in {}",
                    bytes.len(),
                    s.0.display
                )) {
                    return Ok(());
                }
                s.0.put(&key, bytes).await.lua_err()
            },
        );
        m.add_async_method("delete", |lua, s, key: String| async move {
            if ctx(&lua).would(&format!("delete '{key}' from {}", s.0.display)) {
                return Ok(());
            }
            s.0.delete(&key).await.lua_err()
        });
        m.add_async_method(
            "copy_object",
            |lua, s, (from, to): (String, String)| async move {
                if ctx(&lua).would(&format!("copy '{from}' to '{to}' in {}", s.0.display)) {
                    return Ok(());
                }
                s.0.copy_object(&from, &to).await.lua_err()
            },
        );
        m.add_async_method(
            "get_file",
            |lua, s, (key, path): (String, String)| async move {
                if ctx(&lua).would(&format!("download '{key}' from {} to {path}", s.0.display)) {
                    return Ok(0);
                }
                super::transfer::download(&s.0, &key, &PathBuf::from(path))
                    .await
                    .lua_err()
            },
        );
        m.add_async_method(
            "put_file",
            |lua, s, (path, key, opts): (String, String, Option<Table>)| async move {
                crate::runtime::options::check_method(opts.as_ref(), &STORE, "put_file")?;
                let threshold = match &opts {
                    Some(o) => size_opt(o, "multipart_threshold")?.unwrap_or(16 << 20),
                    None => 16 << 20,
                };
                if ctx(&lua).would(&format!("upload {path} to '{key}' in {}", s.0.display)) {
                    return Ok(0);
                }
                super::transfer::upload(&s.0, &PathBuf::from(path), &key, threshold)
                    .await
                    .lua_err()
            },
        );
        // check_zip(key) -> {files, bytes, entries = {{name, size, crc}}}: reads the object
        // entry by entry as java.util.zip.ZipInputStream does (src/store/zip.rs).
        m.add_async_method("check_zip", |lua, s, key: String| async move {
            let entries = super::zip::check_zip(&s.0, &key).await.lua_err()?;
            let t = lua.create_table()?;
            let list = lua.create_table()?;
            let mut bytes = 0u64;
            for (i, e) in entries.iter().enumerate() {
                let et = lua.create_table()?;
                et.set("name", e.name.as_str())?;
                et.set("size", e.size)?;
                et.set("crc", e.crc)?;
                list.set(i + 1, et)?;
                bytes += e.size;
            }
            t.set("files", entries.len())?;
            t.set("bytes", bytes)?;
            t.set("entries", list)?;
            Ok(t)
        });
        m.add_async_method(
            "put_zip",
            |lua, s, (dir, key, opts): (String, String, Option<Table>)| async move {
                crate::runtime::options::check_method(opts.as_ref(), &STORE, "put_zip")?;
                let level = match &opts {
                    Some(o) => o.get::<Option<i64>>("level")?.unwrap_or(6),
                    None => 6,
                };
                if !(0..=9).contains(&level) {
                    return Err(FerryError::new(
                        ErrorKind::InvalidInput,
                        format!("put_zip: level must be 0 (stored) to 9, not {level}"),
                    )
                    .into());
                }
                let t = lua.create_table()?;
                if ctx(&lua).would(&format!("zip {dir} into '{key}' in {}", s.0.display)) {
                    t.set("bytes", 0)?;
                    t.set("files", 0)?;
                    return Ok(t);
                }
                let r = super::zip::put_zip(&s.0, &PathBuf::from(dir), &key, level)
                    .await
                    .lua_err()?;
                t.set("bytes", r.bytes)?;
                t.set("files", r.files)?;
                Ok(t)
            },
        );
    }
}

fn open_options(t: Option<Table>) -> mlua::Result<OpenOptions> {
    let mut o = OpenOptions::default();
    if let Some(t) = t {
        crate::runtime::options::check_documented(&t, &MODULE, "open")?;
        for pair in t.pairs::<String, Value>() {
            let (k, v) = pair?;
            match k.as_str() {
                "create" => o.create = matches!(v, Value::Boolean(true)),
                "probe" => o.no_probe = matches!(v, Value::Boolean(false)),
                _ => {
                    o.values.insert(k, v.to_string()?);
                }
            }
        }
    }
    Ok(o)
}

/// In a dry run, `{create = true}` on a missing local folder creates nothing: the store is an
/// empty in-memory one in its place (so a planned copy lists everything as to be copied).
async fn dry_run_folder(lua: &Lua, url: &str, o: &OpenOptions) -> mlua::Result<Option<Store>> {
    if !o.create || !ctx(lua).dry_run() {
        return Ok(None);
    }
    let Some(path) = url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
    else {
        return Ok(None);
    };
    if path.exists() {
        return Ok(None);
    }
    ctx(lua).would(&format!("create folder {}", path.display()));
    let name = format!(
        "memory://ferry-dry-run-{}",
        hex::encode(path.to_string_lossy().as_bytes())
    );
    let mut store = super::open(&name, &OpenOptions::default())
        .await
        .lua_err()?;
    store.display = url.to_string();
    Ok(Some(store))
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "open",
        lua.create_async_function(|lua, (url, opts): (String, Option<Table>)| async move {
            let o = open_options(opts)?;
            if let Some(store) = dry_run_folder(&lua, &url, &o).await? {
                return Ok(LuaStore(store, None));
            }
            let (store, creds) = super::open::open_updatable(&url, &o).await.lua_err()?;
            Ok(LuaStore(store, creds))
        })?,
    )?;
    m.set("copy", lua.create_async_function(copy::copy)?)?;
    Ok(m)
}
