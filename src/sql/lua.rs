//! Lua binding of `ferry.sql`.

use std::rc::Rc;

use mlua::{
    Function, Lua, LuaSerdeExt, MultiValue, Table, UserData, UserDataFields, UserDataMethods, Value,
};
use tokio::sync::Mutex;

use super::value::SqlValue;
use super::{Backend, Conn, ConnectOptions, Db, ResultSet, statement};
use crate::runtime::context::ctx;
use crate::runtime::error::{ErrorKind, FerryError, IntoLuaResult};
use crate::runtime::registry::{ClassDoc, ConstDoc, FnDoc, ModuleDef, Opt, Param};

pub static MODULE: ModuleDef = ModuleDef {
    name: "sql",
    summary: "MySQL-protocol (MySQL, MariaDB, StarRocks) and PostgreSQL access, and table copy.",
    functions: &[
        FnDoc {
            name: "connect",
            signature: "ferry.sql.connect(url [, {pool_size, tls = \"disable\"|\"prefer\"|\"require\"|\"verify-ca\"|\"verify-full\", ca, connect_timeout = 15, query_timeout}]) -> db",
            params: &[
                Param::new("url", "string")
                    .doc("mysql://user:password@host:port/db or postgres://user:password@host:port/db"),
                Param::opt("opts", "table"),
            ],
            options: &[
                Opt::new("pool_size", "integer").doc("connections kept open"),
                Opt::new(
                    "tls",
                    "\"disable\"|\"prefer\"|\"require\"|\"verify-ca\"|\"verify-full\"|string|boolean",
                )
                .doc("TLS mode (below, and libpq's and MySQL's spellings); true means require, false disable"),
                Opt::new("ca", "string").doc("PEM file of the CA the server's certificate must chain to"),
                Opt::def("connect_timeout", "number|string", "15")
                    .doc("seconds or a duration such as \"30s\" for TCP, TLS and login of each connection"),
                Opt::new("query_timeout", "number|string")
                    .doc("bounds each statement (for db:rows, the silence before the next row); no limit by default"),
            ],
            returns: "ferry.sql.Db",
            doc: "Connects to mysql://user:password@host:port/db or postgres://user:password@host:port/db \
                  and checks the connection at once (a wrong password, unknown host or unknown \
                  database fails here with the server's code and message; the password never \
                  appears). TLS modes, named as libpq and the MySQL client name them: disable (no \
                  TLS; MySQL's default); prefer (TLS when the server offers it, else plain; \
                  PostgreSQL's default; allow is the same); require (encrypted, the certificate is \
                  not checked, like sslmode=require / ssl-mode=REQUIRED); verify-ca (the \
                  certificate must chain to `ca` or to the system's roots; VERIFY_CA); \
                  verify-full or verify (the chain and the host name of the URL; \
                  VERIFY_IDENTITY). A `ca` with require (or with no mode) means verify-ca, as in \
                  libpq. The URL may carry the same as the options: ?sslmode=...&sslrootcert=... \
                  for PostgreSQL, ?ssl-mode=REQUIRED&ssl-ca=... (or sslmode=) for MySQL; libpq's \
                  and MySQL's spellings are accepted in both places, an unknown mode is an error, \
                  and the URL and the options must agree. A wrong CA, a wrong host name or an \
                  account that needs TLS fail with the server named and a hint. A connection that \
                  exceeds connect_timeout fails with an error of kind timeout naming the server \
                  instead of hanging. A statement that exceeds query_timeout is cancelled on the \
                  server (MySQL KILL QUERY, PostgreSQL's cancel request), its connection is closed \
                  (an open transaction rolls back) and the error, of kind timeout, is not retried. \
                  Placeholders are `?` on both servers (PostgreSQL's own $1, $2... work there too). Types: integers (64-bit) stay \
                  integers, DECIMAL/NUMERIC are strings, dates and times are ISO strings, \
                  BLOB/BYTEA are byte strings, JSON is its text, NULL is ferry.sql.null (rows keep \
                  every column). Under --dry-run only SELECT, SHOW, DESCRIBE, EXPLAIN (and WITH \
                  ... SELECT) run; other statements are reported. The methods of the connection \
                  are those of ferry.sql.Db.",
            example: Some(
                r#"local db = ferry.sql.connect("postgres://ferry:secret@127.0.0.1:5432/app", {connect_timeout = 5})
local rows = db:query("select $1::int as n", {41})
assert(rows[1].n == 41)
assert(db:exec("update jobs set done = true where id = $1", {7}) >= 0)
for row in db:rows("select id from jobs", {}, {array = true}) do print(row[1]) end"#,
            ),
        },
        FnDoc {
            name: "copy_table",
            signature: "ferry.sql.copy_table(src_db, dst_db, {table, dst_table, key, columns, where, batch, workers, ranges, on_conflict, load, transform, throttle, verify, title, shard}) -> report",
            params: &[
                Param::new("src_db", "ferry.sql.Db"),
                Param::new("dst_db", "ferry.sql.Db"),
                Param::new("opts", "table"),
            ],
            options: &[
                Opt::new("table", "string").doc("the source table").required(),
                Opt::new("dst_table", "string").doc("the target table, default the same name"),
                Opt::new("key", "string|string[]")
                    .doc("the column(s) of the keyset pagination, default the primary key"),
                Opt::new("columns", "string|string[]").doc("the columns to copy, default all"),
                Opt::new("where", "string").doc("an SQL filter on the source rows"),
                Opt::def("batch", "integer", "1000").doc("rows per batch (one INSERT, LOAD DATA or COPY)"),
                Opt::def("workers", "integer", "4").doc("ranges copied at once"),
                Opt::new("ranges", "integer")
                    .doc("how many ranges an integer key is split into, default workers * 2"),
                Opt::def("on_conflict", "\"error\"|\"ignore\"|\"replace\"", "\"error\"")
                    .doc("what a duplicate key in the target does"),
                Opt::def("load", "\"auto\"|\"insert\"|\"load_data\"|\"copy\"", "\"auto\"")
                    .doc("how batches are written: auto is insert on MySQL/MariaDB and copy on PostgreSQL; load_data: LOAD DATA LOCAL INFILE per batch (MySQL/MariaDB); copy: COPY FROM STDIN per batch (PostgreSQL)"),
                Opt::new("transform", "fun(row: table): table?")
                    .doc("the row to write, or nil to drop it"),
                Opt::new("throttle", "ferry.throttle.Limiter|number|string").doc("rows/s"),
                Opt::def("verify", "\"count\"|\"checksum\"|\"none\"", "\"count\"")
                    .doc("compare both sides afterwards"),
                Opt::new("title", "string").doc("the name in progress lines"),
                Opt::new("shard", "{index: integer, count: integer}")
                    .doc("copy only this shard's slice of the key range (default from --shard)"),
            ],
            returns: "ferry.sql.CopyTableReport",
            doc: "Copies rows between tables on the same or different servers with keyset \
                  pagination on the primary key (or `key`), the key range split for `workers` \
                  concurrent workers. load = \"load_data\" falls back to INSERTs, with a log \
                  line, when the server's local_infile is off, for a batch the server would not \
                  take whole as an INSERT (a duplicate key under on_conflict = \"error\", a \
                  value it would convert), for BIT or spatial columns, and on PostgreSQL \
                  targets. On a PostgreSQL target each batch is one binary COPY FROM STDIN (load = \
                  \"insert\" forces INSERTs); INSERTs are kept, with a log line when copy was \
                  asked for, under on_conflict = \"ignore\" or \"replace\" and for column types \
                  without a binary encoding (inet, interval, arrays, ...). Progress is \
                  reported every second (seconds elapsed, rows, rows in the last second). Inside \
                  a ferry.step the last key of every range is checkpointed, so a re-run resumes \
                  without duplicates or gaps. It refuses to \
                  start when the target table is missing or lacks columns, naming them. With \
                  `shard` only that shard's contiguous slice of an integer key's range is copied \
                  and verified; with another key shard 0 copies the whole table.",
            example: Some(
                r#"local src = ferry.sql.connect("mysql://ferry:secret@10.0.0.5:3306/legacy")
local dst = ferry.sql.connect("postgres://ferry:secret@10.0.0.6:5432/app")
local r = ferry.sql.copy_table(src, dst, {table = "orders", batch = 1000, workers = 4, verify = "count"})
ferry.log.info("orders copied: ", r.rows)"#,
            ),
        },
    ],
    classes: &[&DB, &COPY_TABLE_REPORT],
    constants: &[ConstDoc {
        name: "null",
        ty: "lightuserdata",
        doc: "SQL NULL: what a NULL column reads as (rows keep every column), and a parameter \
              that binds NULL.",
    }],
    build,
};

/// The handle class of this module, described once for the option checks, `ferry doc`, the LuaLS
/// stubs, `ferry check` and REPL completion.
pub static DB: ClassDoc = ClassDoc {
    name: "ferry.sql.Db",
    doc: "A connection pool from ferry.sql.connect (or the transaction's connection inside db:transaction).",
    fields: &[("url", "string"), ("backend", "\"mysql\"|\"postgres\"")],
    methods: &[
        FnDoc {
            name: "query",
            signature: "db:query(sql [, params [, {array = false}]]) -> rows, columns",
            params: &[
                Param::new("sql", "string"),
                Param::opt("params", "(string|number|boolean|lightuserdata)[]")
                    .doc("values of the ? placeholders, in order; ferry.sql.null for NULL"),
                Param::opt("opts", "table"),
            ],
            options: &[Opt::def("array", "boolean", "false")
                .doc("rows as arrays in column order instead of tables keyed by column name")],
            returns: "table[], string[]",
            doc: "Runs a query and returns its rows and the column names.",
            example: Some(
                r#"local db = ferry.sql.connect("mysql://ferry:secret@127.0.0.1:3306/app")
local rows, columns = db:query("select id, name from users where id > ?", {100})
for _, r in ipairs(rows) do print(r.id, r.name) end
local arrays = db:query("select count(*) from users", {}, {array = true})
print(columns[1], arrays[1][1])"#,
            ),
        },
        FnDoc {
            name: "exec",
            signature: "db:exec(sql [, params]) -> affected, last_insert_id",
            params: &[
                Param::new("sql", "string"),
                Param::opt("params", "(string|number|boolean|lightuserdata)[]")
                    .doc("values of the placeholders"),
            ],
            options: &[],
            returns: "integer, integer?",
            doc: "Runs a statement and returns the rows affected (and MySQL's last insert id). Under --dry-run a writing statement is reported, not run.",
            example: Some(
                r#"local db = ferry.sql.connect("mysql://ferry:secret@127.0.0.1:3306/app")
local affected, id = db:exec("insert into jobs (name) values (?)", {"copy"})
ferry.log.info("inserted", affected, "row, id", id)"#,
            ),
        },
        FnDoc {
            name: "rows",
            signature: "db:rows(sql [, params [, {array = false}]]) -> iterator of rows",
            params: &[
                Param::new("sql", "string"),
                Param::opt("params", "(string|number|boolean|lightuserdata)[]")
                    .doc("values of the placeholders"),
                Param::opt("opts", "table"),
            ],
            options: &[Opt::def("array", "boolean", "false")
                .doc("rows as arrays in column order instead of tables keyed by column name")],
            returns: "fun(): table?",
            doc: "Streams a query's rows one at a time (for row in db:rows(...) do).",
            example: Some(
                r#"local db = ferry.sql.connect("postgres://ferry:secret@127.0.0.1:5432/app")
local n = 0
for row in db:rows("select id from events where day = $1", {"2024-04-03"}) do n = n + 1 end
ferry.log.info("events", n)"#,
            ),
        },
        FnDoc {
            name: "transaction",
            signature: "db:transaction(fn(tx)) -> fn's results",
            params: &[Param::new("fn", "fun(tx: ferry.sql.Db): any")],
            options: &[],
            returns: "any",
            doc: "Runs fn with a handle on one connection inside BEGIN ... COMMIT; an error rolls back and is raised again.",
            example: Some(
                r#"local db = ferry.sql.connect("mysql://ferry:secret@127.0.0.1:3306/app")
db:transaction(function(tx)
  tx:exec("update accounts set balance = balance - ? where id = ?", {10, 1})
  tx:exec("update accounts set balance = balance + ? where id = ?", {10, 2})
end)"#,
            ),
        },
    ],
};

/// What `ferry.sql.copy_table` returns.
pub static COPY_TABLE_REPORT: ClassDoc = ClassDoc {
    name: "ferry.sql.CopyTableReport",
    doc: "The report of ferry.sql.copy_table. verified, source_rows and target_rows are set when \
          the copy was verified (checksum too with verify = \"checksum\"); under --dry-run \
          would_copy is the number of rows to copy and dry_run is true.",
    fields: &[
        ("rows", "integer"),
        ("batches", "integer"),
        ("seconds", "number"),
        ("ranges", "integer"),
        ("resumed", "boolean"),
        ("retries", "integer"),
        ("load_data_batches", "integer"),
        ("copy_batches", "integer"),
        ("verified", "(\"count\"|\"checksum\")?"),
        ("source_rows", "integer?"),
        ("target_rows", "integer?"),
        ("checksum", "string?"),
        ("would_copy", "integer?"),
        ("dry_run", "boolean?"),
    ],
    methods: &[],
};

/// A pool, or (inside db:transaction) the one connection of the transaction.
#[derive(Clone)]
pub struct LuaDb {
    pub db: Db,
    tx: Option<Rc<Mutex<Option<Conn>>>>,
}

pub fn value_to_lua(lua: &Lua, v: &SqlValue) -> mlua::Result<Value> {
    Ok(match v {
        SqlValue::Null => lua.null(),
        SqlValue::Int(i) => Value::Integer(*i),
        SqlValue::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::String(lua.create_string(u.to_string())?),
        },
        SqlValue::Float(f) => Value::Number(*f),
        SqlValue::Bool(b) => Value::Boolean(*b),
        SqlValue::Text(s) => Value::String(lua.create_string(s)?),
        SqlValue::Bytes(b) => Value::String(lua.create_string(b)?),
    })
}

pub fn value_from_lua(v: &Value) -> mlua::Result<SqlValue> {
    Ok(match v {
        Value::Nil => SqlValue::Null,
        Value::LightUserData(p) if p.0.is_null() => SqlValue::Null,
        Value::Boolean(b) => SqlValue::Bool(*b),
        Value::Integer(i) => SqlValue::Int(*i),
        Value::Number(n) => SqlValue::Float(*n),
        Value::String(s) => match s.to_str() {
            Ok(t) => SqlValue::Text(t.to_string()),
            Err(_) => SqlValue::Bytes(s.as_bytes().to_vec()),
        },
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!("cannot bind a {} as an SQL parameter", other.type_name()),
            )
            .into());
        }
    })
}

pub fn params_from(t: Option<Table>) -> mlua::Result<Vec<SqlValue>> {
    let Some(t) = t else { return Ok(Vec::new()) };
    // Honour holes (nil) up to the highest index so positions stay right.
    let mut max = 0;
    for pair in t.pairs::<Value, Value>() {
        if let (Value::Integer(i), _) = pair? {
            max = max.max(i);
        }
    }
    (1..=max)
        .map(|i| value_from_lua(&t.raw_get::<Value>(i)?))
        .collect()
}

pub fn row_to_lua(
    lua: &Lua,
    columns: &[String],
    row: &[SqlValue],
    array: bool,
) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(
        if array { row.len() } else { 0 },
        if array { 0 } else { row.len() },
    )?;
    for (i, v) in row.iter().enumerate() {
        let lv = value_to_lua(lua, v)?;
        if array {
            t.raw_set(i + 1, lv)?;
        } else {
            t.raw_set(columns[i].as_str(), lv)?;
        }
    }
    Ok(t)
}

fn result_to_lua(lua: &Lua, rs: &ResultSet, array: bool) -> mlua::Result<(Table, Table)> {
    let rows = lua.create_table_with_capacity(rs.rows.len(), 0)?;
    for (i, r) in rs.rows.iter().enumerate() {
        rows.raw_set(i + 1, row_to_lua(lua, &rs.columns, r, array)?)?;
    }
    let cols = lua.create_sequence_from(rs.columns.iter().cloned())?;
    Ok((rows, cols))
}

impl LuaDb {
    async fn run_query(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> crate::runtime::error::Result<ResultSet> {
        match &self.tx {
            None => self.db.query(sql, params).await,
            Some(tx) => {
                let mut guard = tx.lock().await;
                let conn = guard.as_mut().ok_or_else(finished_tx)?;
                conn.query(&self.db.display, sql, params).await
            }
        }
    }

    async fn run_exec(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> crate::runtime::error::Result<(u64, Option<u64>)> {
        match &self.tx {
            None => self.db.exec(sql, params).await,
            Some(tx) => {
                let mut guard = tx.lock().await;
                let conn = guard.as_mut().ok_or_else(finished_tx)?;
                conn.exec(&self.db.display, sql, params).await
            }
        }
    }
}

fn finished_tx() -> FerryError {
    FerryError::new(
        ErrorKind::InvalidInput,
        "this transaction has already ended",
    )
}

fn one_line(sql: &str) -> String {
    let s: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 300 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(300).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// Reports a statement instead of running it in a dry run. True when it must not run.
fn would_execute(lua: &Lua, db: &Db, sql: &str, params: &[SqlValue]) -> bool {
    if statement::is_read_only(sql) {
        return false;
    }
    let shown_params = if params.is_empty() {
        String::new()
    } else {
        let p: Vec<String> = params
            .iter()
            .map(|v| String::from_utf8_lossy(&v.canonical()).into_owned())
            .collect();
        format!(" with ({})", p.join(", "))
    };
    ctx(lua).would(&format!(
        "execute on {}: {}{shown_params}",
        db.display,
        one_line(sql)
    ))
}

impl UserData for LuaDb {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("url", |_, d| Ok(d.db.display.clone()));
        f.add_field_method_get("backend", |_, d| {
            Ok(match d.db.backend {
                Backend::Mysql => "mysql",
                Backend::Postgres => "postgres",
            })
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(mlua::MetaMethod::ToString, |_, d, ()| {
            Ok(format!("db {}", d.db.display))
        });
        m.add_async_method(
            "query",
            |lua, this, (sql, params, opts): (String, Option<Table>, Option<Table>)| async move {
                crate::runtime::options::check_method(opts.as_ref(), &DB, "query")?;
                let params = params_from(params)?;
                let array = match &opts {
                    Some(o) => o.get::<Option<bool>>("array")?.unwrap_or(false),
                    None => false,
                };
                if would_execute(&lua, &this.db, &sql, &params) {
                    return Ok((lua.create_table()?, lua.create_table()?));
                }
                let rs = this.run_query(&sql, &params).await.lua_err()?;
                result_to_lua(&lua, &rs, array)
            },
        );
        m.add_async_method(
            "exec",
            |lua, this, (sql, params): (String, Option<Table>)| async move {
                let params = params_from(params)?;
                if would_execute(&lua, &this.db, &sql, &params) {
                    return Ok((0u64, None));
                }
                this.run_exec(&sql, &params).await.lua_err()
            },
        );
        m.add_async_method(
            "rows",
            |lua, this, (sql, params, opts): (String, Option<Table>, Option<Table>)| async move {
                crate::runtime::options::check_method(opts.as_ref(), &DB, "rows")?;
                let params = params_from(params)?;
                let array = match &opts {
                    Some(o) => o.get::<Option<bool>>("array")?.unwrap_or(false),
                    None => false,
                };
                if this.tx.is_some() {
                    // Inside a transaction: the transaction's connection, buffered.
                    let rs = this.run_query(&sql, &params).await.lua_err()?;
                    let mut rows = rs.rows.into_iter();
                    let columns = rs.columns;
                    return lua.create_function_mut(move |lua, ()| match rows.next() {
                        Some(r) => Ok(Some(row_to_lua(lua, &columns, &r, array)?)),
                        None => Ok(None),
                    });
                }
                if !statement::is_read_only(&sql) && ctx(&lua).dry_run() {
                    would_execute(&lua, &this.db, &sql, &params);
                    return lua.create_function(|_, ()| Ok(None::<Table>));
                }
                let (columns, rx) = this.db.stream_with_columns(sql, params).await.lua_err()?;
                let rx = Rc::new(Mutex::new(rx));
                lua.create_async_function(move |lua, ()| {
                    let rx = rx.clone();
                    let columns = columns.clone();
                    async move {
                        match rx.lock().await.recv().await {
                            Some(Ok(r)) => Ok(Some(row_to_lua(&lua, &columns, &r, array)?)),
                            Some(Err(e)) => Err(e.into()),
                            None => Ok(None),
                        }
                    }
                })
            },
        );
        m.add_async_method("transaction", |lua, this, f: Function| async move {
            if this.tx.is_some() {
                return Err(FerryError::new(ErrorKind::InvalidInput, "db:transaction inside a transaction is not supported").into());
            }
            let c = ctx(&lua);
            if c.dry_run() {
                let ud = lua.create_userdata(this.clone())?;
                let mut args = MultiValue::new();
                args.push_back(Value::UserData(ud));
                return crate::runtime::call_protected(&lua, f, args).await.map_err(mlua::Error::from);
            }
            let begin = match this.db.backend {
                Backend::Mysql => "START TRANSACTION",
                Backend::Postgres => "BEGIN",
            };
            let mut conn = this.db.conn().await.lua_err()?;
            conn.exec(&this.db.display, begin, &[]).await.lua_err()?;
            let slot = Rc::new(Mutex::new(Some(conn)));
            let tx = LuaDb { db: this.db.clone(), tx: Some(slot.clone()) };
            let mut args = MultiValue::new();
            args.push_back(Value::UserData(lua.create_userdata(tx)?));
            let result = crate::runtime::call_protected(&lua, f, args).await;
            let mut conn = slot.lock().await.take().ok_or_else(finished_tx)?;
            match result {
                Ok(values) => {
                    conn.exec(&this.db.display, "COMMIT", &[]).await.lua_err()?;
                    Ok(values)
                }
                Err(e) => {
                    if let Err(rb) = conn.exec(&this.db.display, "ROLLBACK", &[]).await {
                        tracing::warn!(target: crate::runtime::output::EV, "rollback failed: {}", rb.one_line());
                    }
                    Err(e.into())
                }
            }
        });
    }
}

/// A timeout option: seconds (a number) or a duration string ("30s", "2m"); 0 or less is refused.
fn duration(t: &Table, key: &str) -> mlua::Result<Option<std::time::Duration>> {
    let secs = match t.get::<Value>(key)? {
        Value::Nil => return Ok(None),
        Value::Integer(i) => i as f64,
        Value::Number(n) => n,
        Value::String(s) => crate::runtime::params::parse_duration(&s.to_str()?).map_err(|m| {
            FerryError::new(
                ErrorKind::InvalidInput,
                format!("ferry.sql.connect: {key}: {m}"),
            )
        })?,
        other => {
            return Err(FerryError::new(
                ErrorKind::InvalidInput,
                format!(
                    "ferry.sql.connect: {key} must be seconds or a duration string, not a {}",
                    other.type_name()
                ),
            )
            .into());
        }
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!("ferry.sql.connect: {key} must be more than 0 seconds, got {secs}"),
        )
        .into());
    }
    Ok(Some(crate::runtime::params::secs_to_duration(secs)))
}

fn build(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("null", lua.null())?;
    m.set(
        "connect",
        lua.create_async_function(|_, (url, opts): (String, Option<Table>)| async move {
            let mut o = ConnectOptions::default();
            if let Some(t) = opts {
                crate::runtime::options::check_documented(&t, &MODULE, "connect")?;
                o.pool_size = t.get("pool_size")?;
                o.connect_timeout = duration(&t, "connect_timeout")?;
                o.query_timeout = duration(&t, "query_timeout")?;
                o.tls = match t.get::<Value>("tls")? {
                    Value::Nil => None,
                    Value::Boolean(true) => Some("require".to_string()),
                    Value::Boolean(false) => Some("disable".to_string()),
                    Value::String(v) => Some(v.to_str()?.to_string()),
                    other => {
                        return Err(FerryError::new(
                            ErrorKind::InvalidInput,
                            format!(
                                "ferry.sql.connect: tls must be a string or a boolean, not a {}",
                                other.type_name()
                            ),
                        )
                        .into());
                    }
                };
                o.ca = t.get("ca")?;
            }
            Ok(LuaDb {
                db: Db::connect(&url, &o).await.lua_err()?,
                tx: None,
            })
        })?,
    )?;
    m.set(
        "copy_table",
        lua.create_async_function(super::copy_table::lua_copy_table)?,
    )?;
    Ok(m)
}
