//! `ferry.sql.copy_table`'s options table in and its report out (the Lua side only converts).

use super::*;

pub(super) fn parse_options(t: &Table) -> mlua::Result<Options> {
    crate::runtime::options::check_documented(t, &crate::sql::lua::MODULE, "copy_table")?;
    let table: String = t.get::<Option<String>>("table")?.ok_or_else(|| {
        FerryError::new(
            ErrorKind::InvalidInput,
            "ferry.sql.copy_table needs table = \"name\"",
        )
    })?;
    let list = |v: Value| -> mlua::Result<Option<Vec<String>>> {
        Ok(match v {
            Value::Nil => None,
            Value::String(s) => Some(vec![s.to_str()?.to_string()]),
            Value::Table(t) => Some(t.sequence_values::<String>().collect::<mlua::Result<_>>()?),
            other => {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("expected a list of names, got {}", other.type_name()),
                )
                .into());
            }
        })
    };
    let on_conflict = match t.get::<Option<String>>("on_conflict")?.as_deref() {
        None | Some("error") => OnConflict::Error,
        Some("ignore") => OnConflict::Ignore,
        Some("replace") => OnConflict::Replace,
        Some(o) => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("on_conflict must be error, ignore or replace, not '{o}'"),
            )
            .into());
        }
    };
    let verify = match t.get::<Option<String>>("verify")?.as_deref() {
        None | Some("count") => VerifyMode::Count,
        Some("checksum") => VerifyMode::Checksum,
        Some("none") => VerifyMode::None,
        Some(o) => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("verify must be count, checksum or none, not '{o}'"),
            )
            .into());
        }
    };
    Ok(Options {
        dst_table: t
            .get::<Option<String>>("dst_table")?
            .unwrap_or_else(|| table.clone()),
        title: t
            .get::<Option<String>>("title")?
            .unwrap_or_else(|| format!("copy_table {table}")),
        table,
        key: list(t.get("key")?)?,
        columns: list(t.get("columns")?)?,
        where_: t.get("where")?,
        batch: t.get::<Option<usize>>("batch")?.unwrap_or(1000).max(1),
        workers: t.get::<Option<usize>>("workers")?.unwrap_or(4).max(1),
        ranges: t.get("ranges")?,
        on_conflict,
        load: match t.get::<Option<String>>("load")?.as_deref() {
            None | Some("auto") => LoadMode::Auto,
            Some("insert") => LoadMode::Insert,
            Some("load_data") => LoadMode::LoadData,
            Some("copy") => LoadMode::Copy,
            Some(o) => {
                return Err(FerryError::new(
                    ErrorKind::InvalidInput,
                    format!("load must be auto, insert, load_data or copy, not '{o}'"),
                )
                .into());
            }
        },
        throttle: limiter_from(&t.get::<Value>("throttle")?)?,
        verify,
        shard: crate::runtime::shard::shard_option(t)?,
    })
}

pub async fn lua_copy_table(
    lua: Lua,
    (src, dst, opts): (mlua::AnyUserData, mlua::AnyUserData, Table),
) -> mlua::Result<Table> {
    let src = src.borrow::<LuaDb>()?.db.clone();
    let dst = dst.borrow::<LuaDb>()?.db.clone();
    let transform: Option<Function> = opts.get("transform")?;
    let mut o = parse_options(&opts)?;
    if o.shard.is_none() {
        o.shard = ctx(&lua).opts.shard;
    }
    let report = copy_table(&lua, src, dst, o, transform).await.lua_err()?;
    let t = lua.create_table()?;
    for (k, v) in report.as_object().into_iter().flatten() {
        t.set(k.as_str(), lua.to_value_json(v)?)?;
    }
    Ok(t)
}

pub(super) trait ToValueJson {
    fn to_value_json(&self, v: &Json) -> mlua::Result<Value>;
}

impl ToValueJson for Lua {
    fn to_value_json(&self, v: &Json) -> mlua::Result<Value> {
        use mlua::LuaSerdeExt;
        self.to_value(v)
    }
}
