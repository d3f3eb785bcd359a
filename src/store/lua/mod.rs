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
use crate::runtime::params::parse_size;
use crate::runtime::registry::{ClassDoc, FnDoc, ModuleDef, Opt, Param};

/// The options of `ferry.store.open`, which `s:set_credentials` also takes (a script may hand it
/// the table it opened the store with; only the three credential keys are used).
const OPEN_OPTIONS: &[Opt] = &[
    Opt::def("create", "boolean", "false"),
    Opt::def("probe", "boolean", "true"),
    Opt::def("layout", "string", "\"flat\""),
    Opt::new("ca_file", "string"),
    Opt::new("allow_http", "boolean"),
    Opt::new("endpoint", "string"),
    Opt::new("region", "string"),
    Opt::new("access_key_id", "string"),
    Opt::new("secret_access_key", "string"),
    Opt::new("session_token", "string"),
    Opt::new("virtual_hosted_style", "boolean"),
    Opt::new("skip_signature", "boolean"),
    Opt::new("sse_c_key", "string"),
    Opt::new("server_side_encryption", "string"),
    Opt::new("sse_kms_key_id", "string"),
    Opt::new("sse_customer_key_base64", "string"),
    Opt::new("acl", "string"),
    Opt::new("acl_from_bucket", "boolean"),
    Opt::new("account", "string"),
    Opt::new("account_name", "string"),
    Opt::new("access_key", "string"),
    Opt::new("account_key", "string"),
    Opt::new("master_key", "string"),
    Opt::new("sas", "string"),
    Opt::new("sas_token", "string"),
    Opt::new("sas_key", "string"),
    Opt::new("token", "string"),
    Opt::new("bearer_token", "string"),
    Opt::new("connection_string", "string"),
    Opt::new("use_emulator", "boolean"),
    Opt::new("service_account", "string"),
    Opt::new("service_account_key", "string"),
    Opt::new("application_credentials", "string"),
    Opt::new("anonymous", "boolean"),
    Opt::new("list_page_size", "integer"),
    Opt::new("timeout", "number|string"),
    Opt::new("connect_timeout", "number|string"),
    Opt::new("base_url", "string"),
    Opt::new("file_mode", "string"),
    Opt::new("fsync", "boolean"),
    Opt::new("aws_*", "any"),
    Opt::new("azure_*", "any"),
    Opt::new("google_*", "any"),
];

pub static MODULE: ModuleDef = ModuleDef {
    name: "store",
    summary: "Object stores (file, memory, S3, GCS, Azure) and the copy engine.",
    functions: &[
        FnDoc {
            name: "open",
            signature: "ferry.store.open(url [, {create = false, probe = true, layout = \"flat\", ca_file, allow_http, endpoint, region, access_key_id, secret_access_key, session_token, virtual_hosted_style, skip_signature, sse_c_key, server_side_encryption, sse_kms_key_id, sse_customer_key_base64, acl, acl_from_bucket, account, account_name, access_key, account_key, master_key, sas, sas_token, sas_key, token, bearer_token, connection_string, use_emulator, service_account, service_account_key, application_credentials, anonymous, list_page_size, timeout, connect_timeout, base_url, file_mode, fsync, aws_*, azure_*, google_*}]) -> store",
            params: &[Param::new("url", "string"), Param::opt("opts", "table")],
            options: OPEN_OPTIONS,
            returns: "ferry.store.Store",
            doc: "Opens file:///abs/path, memory://name, s3://bucket/prefix, gs://bucket/prefix, \
                  az://container/prefix or an Azure blob URL with a SAS query. opts: endpoint, \
                  region, access_key_id, secret_access_key, session_token, allow_http, \
                  virtual_hosted_style, ca_file (PEM CA roots, else AWS_CA_BUNDLE) (S3); \
                  account, access_key, sas, bearer_token, connection_string, ca_file, endpoint, \
                  use_emulator (Azure, see docs/stores-azure.md); service_account, \
                  service_account_key, application_credentials, \
                  bearer_token, endpoint, anonymous, list_page_size, timeout, connect_timeout (GCS; STORAGE_EMULATOR_HOST \
                  points gs:// at an emulator, see docs/stores.md); file_mode = \"0600\" (octal \
                  mode of new files) and fsync = true (flush file and folder before a write \
                  returns) (file); virtual_hosted_style with a bucketless endpoint addresses \
                  <bucket>.<host>; create = true to create a missing local folder; probe = false \
                  to skip the check request. account_name, account_key, master_key, sas_token, \
                  sas_key and token are aliases (Azure); keys starting aws_, azure_ or google_ \
                  are object_store's own settings, passed to that kind of store. A key another \
                  kind of store takes is refused. Credentials \
                  otherwise come from the usual AWS_*, AZURE_*, GOOGLE_* variables. A bad URL, \
                  missing bucket or rejected credential fails here. Handle methods: \
                  list([prefix [, {delimiter = true}]]) iterator of {key, size, etag, \
                  last_modified}, head(key) (nil when absent), get(key), put(key, bytes), \
                  delete(key), exists(key), get_file(key, path), put_file(path, key), \
                  copy_object(from, to) (server-side), put_zip(local_dir, key [, {level = 6}]) -> \
                  {bytes, files} (the folder's files zipped with deflate at `level` 1..9, \
                  streamed into one object: never held whole in memory or on disk), \
                  check_zip(key) -> {files, bytes, entries} (reads the object entry by entry as \
                  java.util.zip.ZipInputStream does, checking sizes and CRCs), url, and for S3 \
                  stores opened with access_key_id and secret_access_key \
                  set_credentials{access_key_id, secret_access_key [, session_token]}: every \
                  later request is signed with these, including the remaining parts of \
                  multipart uploads under way (renewing short-lived session credentials without \
                  reopening the store or restarting uploads).",
            example: Some(
                "local s = ferry.store.open(\"memory://doc-example\")\ns:put(\"a/b.txt\", \"hello\")\nassert(s:get(\"a/b.txt\") == \"hello\")\nassert(s:head(\"a/b.txt\").size == 5 and s:head(\"nope\") == nil)\nlocal n = 0\nfor e in s:list(\"a\") do n = n + 1 end\nassert(n == 1)\nlocal d = os.tmpname()\nferry.fs.remove(d)\nferry.fs.mkdir(d)\nferry.fs.write(d .. \"/00000.smoosh\", \"segment\")\nlocal z = s:put_zip(d, \"seg/index.zip\", {level = 1})\nassert(z.files == 1 and s:head(\"seg/index.zip\").size == z.bytes)\nferry.fs.remove(d, {recursive = true})",
            ),
        },
        FnDoc {
            name: "copy",
            signature: "ferry.store.copy(src, dst, {prefix | keys | iter, map, compare = \"size\", verify = \"none\", concurrency = 64, retries = 5, fail_fast = false, list_cache, list_cache_sizes = true, dst_prefix, multipart_threshold, part_size, part_concurrency, max_buffer, shard, throttle, ops_throttle, title, abort_stale_uploads = true}) -> {copied, skipped, failed, bytes, errors, ...}",
            params: &[
                Param::new("src", "any"),
                Param::new("dst", "any"),
                Param::new("opts", "table"),
            ],
            options: &[
                Opt::new("prefix", "string"),
                Opt::new("keys", "table"),
                Opt::new("iter", "function"),
                Opt::new("map", "function"),
                Opt::def("compare", "string", "\"size\""),
                Opt::def("verify", "string", "\"none\""),
                Opt::def("concurrency", "number", "64"),
                Opt::def("retries", "number", "5"),
                Opt::def("fail_fast", "boolean", "false"),
                Opt::new("list_cache", "string"),
                Opt::def("list_cache_sizes", "boolean", "true"),
                Opt::new("dst_prefix", "string"),
                Opt::new("multipart_threshold", "number|string"),
                Opt::new("part_size", "number|string"),
                Opt::new("part_concurrency", "integer"),
                Opt::new("max_buffer", "number|string"),
                Opt::new("shard", "any"),
                Opt::new("throttle", "any"),
                Opt::new("ops_throttle", "any"),
                Opt::new("title", "string"),
                Opt::def("abort_stale_uploads", "boolean", "true"),
            ],
            returns: "any",
            doc: "Copies objects from src to dst. Source: opts.prefix (a listing of src), opts.keys \
                  (a list of keys) or opts.iter (a function returning keys or {key, size}, nil at \
                  the end). opts.map(key) returns the destination key, or nil to leave the object \
                  out (it must not call async primitives). What to copy is decided from one \
                  listing of dst (opts.dst_prefix narrows it) or from opts.list_cache, a file \
                  filled by the first run and appended as objects land: compare = \"none\" | \
                  \"exists\" | \"size\" (default) | \"checksum\". Other options: concurrency (64), \
                  retries (5), fail_fast, verify = \"size\" | \"checksum\", throttle (bytes/s: a \
                  limiter or a rate such as \"50MiB\"), ops_throttle (objects/s), shard = {index, \
                  count} (default from --shard), multipart_threshold (\"16MiB\"), part_size \
                  (\"8MiB\"), part_concurrency (4), max_buffer (\"512MiB\"), list_cache_sizes \
                  (true), title. Under --dry-run nothing is written and the report gives what \
                  would be copied. Failed objects are listed in report.errors; the copy goes on. \
                  On an S3 dst, multipart uploads that earlier (killed) runs left open on the keys \
                  this copy writes are aborted before each is written (abort_stale_uploads = \
                  false leaves them): report.stale_uploads counts them, \
                  report.stale_uploads_aborted those aborted.",
            example: Some(
                "local a = ferry.store.open(\"memory://copy-src\")\nlocal b = ferry.store.open(\"memory://copy-dst\")\na:put(\"ab/cdef\", \"x\")\nlocal r = ferry.store.copy(a, b, {map = function(k) return (k:gsub(\"/\", \"\")) end})\nassert(r.copied == 1 and b:get(\"abcdef\") == \"x\")\nassert(ferry.store.copy(a, b, {map = function(k) return (k:gsub(\"/\", \"\")) end}).skipped == 1)",
            ),
        },
    ],
    classes: &[&STORE],
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
            options: &[Opt::def("delimiter", "boolean", "false")],
            returns: "fun(): ferry.store.Entry?",
            doc: "Lists the objects under prefix, one table per object; with delimiter = true only one level, folders as {key = \"dir/\", prefix = true}.",
            example: None,
        },
        FnDoc {
            name: "head",
            signature: "s:head(key) -> {key, size, etag, last_modified} | nil",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "ferry.store.Entry?",
            doc: "The object's metadata, nil when it is absent.",
            example: None,
        },
        FnDoc {
            name: "exists",
            signature: "s:exists(key) -> boolean",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "boolean",
            doc: "Whether the object exists.",
            example: None,
        },
        FnDoc {
            name: "get",
            signature: "s:get(key) -> bytes",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "string",
            doc: "The whole object as a string.",
            example: None,
        },
        FnDoc {
            name: "put",
            signature: "s:put(key, bytes)",
            params: &[Param::new("key", "string"), Param::new("bytes", "string")],
            options: &[],
            returns: "",
            doc: "Writes the object (nothing under --dry-run).",
            example: None,
        },
        FnDoc {
            name: "delete",
            signature: "s:delete(key)",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "",
            doc: "Deletes the object.",
            example: None,
        },
        FnDoc {
            name: "copy_object",
            signature: "s:copy_object(from, to)",
            params: &[Param::new("from", "string"), Param::new("to", "string")],
            options: &[],
            returns: "",
            doc: "Server-side copy inside this store.",
            example: None,
        },
        FnDoc {
            name: "get_file",
            signature: "s:get_file(key, path) -> bytes",
            params: &[Param::new("key", "string"), Param::new("path", "string")],
            options: &[],
            returns: "integer",
            doc: "Downloads the object to a local file (written to a temp file, then renamed) and returns its size.",
            example: None,
        },
        FnDoc {
            name: "put_file",
            signature: "s:put_file(path, key [, {multipart_threshold = \"16MiB\"}]) -> bytes",
            params: &[
                Param::new("path", "string"),
                Param::new("key", "string"),
                Param::opt("opts", "table"),
            ],
            options: &[Opt::def(
                "multipart_threshold",
                "number|string",
                "\"16MiB\"",
            )],
            returns: "integer",
            doc: "Uploads a local file, in parts above multipart_threshold, and returns its size.",
            example: None,
        },
        FnDoc {
            name: "put_zip",
            signature: "s:put_zip(local_dir, key [, {level = 6}]) -> {bytes, files}",
            params: &[
                Param::new("local_dir", "string"),
                Param::new("key", "string"),
                Param::opt("opts", "table"),
            ],
            options: &[Opt::def("level", "integer", "6")],
            returns: "{bytes: integer, files: integer}",
            doc: "Zips the folder's files with deflate at level 0..9 (0: stored) and streams the zip into one object, never held whole in memory or on disk.",
            example: None,
        },
        FnDoc {
            name: "check_zip",
            signature: "s:check_zip(key) -> {files, bytes, entries = {{name, size, crc}}}",
            params: &[Param::new("key", "string")],
            options: &[],
            returns: "{files: integer, bytes: integer, entries: {name: string, size: integer, crc: integer}[]}",
            doc: "Reads the object entry by entry as java.util.zip.ZipInputStream does, checking sizes and CRCs.",
            example: None,
        },
        FnDoc {
            name: "set_credentials",
            signature: "s:set_credentials(opts)",
            params: &[Param::new("opts", "table")],
            options: OPEN_OPTIONS,
            returns: "",
            doc: "S3 stores opened with access_key_id and secret_access_key: every later request is signed with these, including the remaining parts of multipart uploads under way. Takes the options table of ferry.store.open (a script may pass the one it opened the store with); only access_key_id, secret_access_key and session_token are used.",
            example: None,
        },
    ],
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

pub(super) fn size_opt(t: &Table, key: &str) -> mlua::Result<Option<u64>> {
    Ok(match t.get::<Value>(key)? {
        Value::Nil => None,
        Value::Integer(i) => Some(i.max(0) as u64),
        Value::Number(n) => Some(n.max(0.0) as u64),
        Value::String(s) => Some(
            parse_size(&s.to_str()?)
                .map_err(|m| FerryError::new(ErrorKind::InvalidInput, format!("{key}: {m}")))?,
        ),
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("{key}: expected a size, got {}", other.type_name()),
            )
            .into());
        }
    })
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
