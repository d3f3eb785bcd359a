//! `ferry.store.copy`: its options table in, its report table out, and the key sources that
//! need Lua (a `keys` list, an `iter` function, a `map` callback). The engine is `store/copy`.

use std::path::PathBuf;

use mlua::{Function, Lua, Table, Value};

use super::super::Entry;
use super::super::copy::{self as engine, Compare, CopyOptions, Engine, Item, Report, Verify};
use super::{LuaStore, MODULE};
use crate::runtime::context::ctx;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult};
use crate::runtime::options::size_opt;
use crate::throttle::lua::limiter_from;

fn copy_options(lua: &Lua, t: &Table) -> mlua::Result<CopyOptions> {
    crate::runtime::options::check_documented(t, &MODULE, "copy")?;
    let c = ctx(lua);
    let mut o = CopyOptions {
        dry_run: c.dry_run(),
        shard: c.opts.shard,
        ..CopyOptions::default()
    };
    if let Some(s) = t.get::<Option<String>>("compare")? {
        o.compare = Compare::parse(&s).ok_or_else(|| {
            FerryError::new(
                ErrorKind::InvalidInput,
                format!("compare must be none, exists, size or checksum, not '{s}'"),
            )
        })?;
    }
    o.verify = match t.get::<Option<String>>("verify")?.as_deref() {
        None | Some("none") => Verify::None,
        Some("size") => Verify::Size,
        Some("checksum") => Verify::Checksum,
        Some(other) => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("verify must be size or checksum, not '{other}'"),
            )
            .into());
        }
    };
    if let Some(n) = t.get::<Option<i64>>("concurrency")? {
        if n < 1 {
            return Err(
                FerryError::new(ErrorKind::InvalidInput, "concurrency must be at least 1").into(),
            );
        }
        o.concurrency = n as usize;
    }
    if let Some(n) = t.get::<Option<u32>>("retries")? {
        o.retries = n;
    }
    o.fail_fast = t.get::<Option<bool>>("fail_fast")?.unwrap_or(false);
    o.list_cache = t.get::<Option<String>>("list_cache")?.map(PathBuf::from);
    o.list_cache_sizes = t.get::<Option<bool>>("list_cache_sizes")?.unwrap_or(true);
    o.dst_list_prefix = t.get::<Option<String>>("dst_prefix")?;
    o.abort_stale_uploads = t
        .get::<Option<bool>>("abort_stale_uploads")?
        .unwrap_or(true);
    if let Some(v) = size_opt(t, "multipart_threshold")? {
        o.multipart_threshold = v;
    }
    if let Some(v) = size_opt(t, "part_size")? {
        if v < 5 << 20 {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                "part_size must be at least 5MiB (S3's minimum part)",
            )
            .into());
        }
        o.part_size = v as usize;
    }
    if let Some(v) = t.get::<Option<usize>>("part_concurrency")? {
        o.part_concurrency = v.max(1);
    }
    if let Some(v) = size_opt(t, "max_buffer")? {
        o.max_buffer = v.max(1 << 20);
    }
    if let Some(shard) = crate::runtime::shard::shard_option(t)? {
        o.shard = Some(shard);
    }
    o.throttle = limiter_from(&t.get::<Value>("throttle")?)?;
    o.ops_throttle = limiter_from(&t.get::<Value>("ops_throttle")?)?;
    if let Some(title) = t.get::<Option<String>>("title")? {
        o.title = title;
    }
    Ok(o)
}

fn apply_map(map: &Option<Function>, key: &str) -> mlua::Result<Option<String>> {
    let Some(f) = map else {
        return Ok(Some(key.to_string()));
    };
    match f.call::<Value>(key)? {
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::String(s) => Ok(Some(s.to_str()?.to_string())),
        other => Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "map('{key}') returned a {}, expected a string key or nil",
                other.type_name()
            ),
        )
        .into()),
    }
}

pub(super) async fn copy(
    lua: Lua,
    (src, dst, opts): (mlua::AnyUserData, mlua::AnyUserData, Option<Table>),
) -> mlua::Result<Table> {
    let src = src.borrow::<LuaStore>()?.0.clone();
    let dst = dst.borrow::<LuaStore>()?.0.clone();
    let opts_t = match opts {
        Some(t) => t,
        None => lua.create_table()?,
    };
    let o = copy_options(&lua, &opts_t)?;
    let map: Option<Function> = opts_t.get("map")?;
    let keys: Option<Table> = opts_t.get("keys")?;
    let iter: Option<Function> = opts_t.get("iter")?;
    let prefix: Option<String> = opts_t.get("prefix")?;
    let sources = keys.is_some() as u8 + iter.is_some() as u8 + prefix.is_some() as u8;
    if sources > 1 {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            "ferry.store.copy: give only one of prefix, keys and iter",
        )
        .into());
    }
    let c = ctx(&lua);
    let title = o.title.clone();
    let mut engine = Engine::start(src.clone(), dst.clone(), o, c.cancel.clone())
        .await
        .lua_err()?;
    let mut left_out = 0u64;
    const BATCH: usize = 1000;
    if let Some(keys) = keys {
        for k in keys.sequence_values::<String>() {
            let k = k?;
            match apply_map(&map, &k)? {
                Some(d) => {
                    if !engine
                        .submit(Item {
                            src: k,
                            dst: d,
                            size: None,
                        })
                        .await
                        .lua_err()?
                    {
                        break;
                    }
                }
                None => left_out += 1,
            }
        }
    } else if let Some(iter) = iter {
        loop {
            let v = iter.call_async::<Value>(()).await?;
            let (key, size) = match v {
                Value::Nil => break,
                Value::String(s) => (s.to_str()?.to_string(), None),
                Value::Table(t) => (t.get::<String>("key")?, t.get::<Option<u64>>("size")?),
                other => {
                    return Err(FerryError::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "iter returned a {}, expected a key or {{key, size}}",
                            other.type_name()
                        ),
                    )
                    .into());
                }
            };
            match apply_map(&map, &key)? {
                Some(d) => {
                    if !engine
                        .submit(Item {
                            src: key,
                            dst: d,
                            size,
                        })
                        .await
                        .lua_err()?
                    {
                        break;
                    }
                }
                None => left_out += 1,
            }
        }
    } else {
        // Folder by folder, 16 at a time, as the destination is listed: a re-run that copies
        // nothing is two listings, and the source's was the slower one (bench/copy/million.sh).
        let mut listing = super::super::inventory::parallel_listing(&src, prefix.as_deref())
            .await
            .lua_err()?;
        let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
        let mut done = false;
        while !done {
            done = !engine::next_batch(&mut listing, &mut batch, BATCH)
                .await
                .lua_err()?;
            // Map callbacks run here, on the Lua thread, a batch at a time.
            let mut items = Vec::with_capacity(batch.len());
            for e in batch.drain(..) {
                match apply_map(&map, &e.key)? {
                    Some(d) => items.push(Item {
                        src: e.key,
                        dst: d,
                        size: Some(e.size),
                    }),
                    None => left_out += 1,
                }
            }
            for it in items {
                if !engine.submit(it).await.lua_err()? {
                    done = true;
                    break;
                }
            }
        }
    }
    let report = engine.finish().await.lua_err()?;
    if report.cancelled {
        return Err(FerryError::new(ErrorKind::Cancelled, format!("{title}: interrupted")).into());
    }
    engine::log_report(&title, &report, left_out);
    report_table(&lua, &report, left_out)
}

fn report_table(lua: &Lua, r: &Report, left_out: u64) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("copied", r.copied)?;
    t.set("skipped", r.skipped)?;
    t.set("failed", r.failed)?;
    t.set("bytes", r.bytes)?;
    t.set("skipped_bytes", r.skipped_bytes)?;
    t.set("left_out", left_out)?;
    t.set("other_shards", r.other_shards)?;
    t.set("retried", r.retried)?;
    t.set("seconds", r.seconds)?;
    t.set("dry_run", r.dry_run)?;
    t.set("inventory", r.inventory)?;
    t.set("destination_objects", r.destination_objects)?;
    t.set("stale_uploads", r.stale_uploads)?;
    t.set("stale_uploads_aborted", r.stale_uploads_aborted)?;
    let errors = lua.create_table()?;
    for (i, (key, e)) in r.errors.iter().enumerate() {
        let et = lua.create_table()?;
        et.set("key", key.as_str())?;
        et.set("kind", e.kind.as_str())?;
        et.set("message", e.message.as_str())?;
        errors.raw_set(i + 1, et)?;
    }
    t.set("errors", errors)?;
    Ok(t)
}
