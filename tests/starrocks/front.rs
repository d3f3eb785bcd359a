//! The StarRocks double's FE query port: the opensrv-mysql shim and the statements the double
//! answers itself or translates before MariaDB sees them.

use std::io;
use std::sync::Arc;

use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ColumnFlags, ErrorKind, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter,
};
use sha1::{Digest, Sha1};
use tokio::io::AsyncWrite;

use super::show;
use super::{
    Answer, Fail, Key, STR, Shared, TableMeta, bump_changed, cells, cols, ddl, exec, fail,
    fingerprints, qualified, raw_query, re,
};

// ---------------------------------------------------------------------------------------------
// The MySQL front

pub async fn serve_mysql(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut conn_id = 1u32;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        conn_id += 1;
        let shared = shared.clone();
        let id = conn_id;
        tokio::spawn(async move {
            let Ok(backend) = shared.pool.get_conn().await else {
                return;
            };
            let (r, mut w) = stream.into_split();
            let r = FirstPacketAlone::new(r);
            let tls = shared.tls.lock().unwrap().clone();
            let counter = shared.clone();
            let mut shim = Front {
                shared,
                conn: backend,
                id,
            };
            let Some(cfg) = tls else {
                let _ = AsyncMysqlIntermediary::run_on(shim, r, w).await;
                return;
            };
            // The handshake offers CLIENT_SSL; a client that answers with an SSL request
            // switches to TLS before it logs in (MySQL protocol, Protocol::SSLRequest).
            let Ok((is_ssl, params)) =
                AsyncMysqlIntermediary::init_before_ssl(&mut shim, r, &mut w, &Some(cfg.clone()))
                    .await
            else {
                return;
            };
            let opts = opensrv_mysql::IntermediaryOptions::default();
            if is_ssl {
                counter
                    .tls_sessions
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = opensrv_mysql::secure_run_with_options(shim, w, opts, cfg, params).await;
            } else {
                let _ = opensrv_mysql::plain_run_with_options(shim, w, opts, params).await;
            }
        });
    }
}

/// The client's first packet (its SSLRequest or its login), and never a byte after it, in the
/// reads that carry it; then everything as it comes. opensrv-mysql 0.7.0 loses a ClientHello that
/// arrives in the same segment as the SSLRequest: `PacketReader`'s `AsyncRead` (which the TLS
/// acceptor reads through, src/packet_reader.rs) serves `bytes[start..]`, where `start` still
/// points at the consumed SSLRequest, so the TLS handshake reads that packet again and fails,
/// and the client sees "tls handshake eof" (22% of runs of procedure_starrocks_tls under load).
/// A StarRocks FE (Netty) has no such limit; reading the first packet alone avoids the bug.
struct FirstPacketAlone<R> {
    inner: R,
    header: [u8; 4],
    delivered: usize,
    /// Header and payload of the first packet, once its header is read.
    first_len: Option<usize>,
}

impl<R> FirstPacketAlone<R> {
    fn new(inner: R) -> FirstPacketAlone<R> {
        FirstPacketAlone {
            inner,
            header: [0; 4],
            delivered: 0,
            first_len: None,
        }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for FirstPacketAlone<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = &mut *self;
        let cap = match this.first_len {
            None => 4 - this.delivered,
            Some(n) if this.delivered < n => n - this.delivered,
            Some(_) => return std::pin::Pin::new(&mut this.inner).poll_read(cx, buf),
        };
        let mut tmp = vec![0u8; cap.min(buf.remaining())];
        let mut rb = tokio::io::ReadBuf::new(&mut tmp);
        std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
        let got = rb.filled();
        if this.first_len.is_none() {
            this.header[this.delivered..this.delivered + got.len()].copy_from_slice(got);
        }
        this.delivered += got.len();
        buf.put_slice(got);
        if this.first_len.is_none() && this.delivered == 4 {
            let h = this.header;
            this.first_len =
                Some(4 + (h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16));
        }
        std::task::Poll::Ready(Ok(()))
    }
}

struct Front {
    shared: Arc<Shared>,
    conn: mysql_async::Conn,
    id: u32,
}

/// A reply the front writes: a result set or an OK packet.
fn native_password_ok(password: &str, salt: &[u8], auth: &[u8]) -> bool {
    if password.is_empty() {
        return auth.is_empty();
    }
    let h1 = Sha1::digest(password.as_bytes());
    let h2 = Sha1::digest(h1);
    let mut s = Sha1::new();
    s.update(salt);
    s.update(h2);
    let h3 = s.finalize();
    let token: Vec<u8> = h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect();
    token == auth
}

#[async_trait::async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Front {
    type Error = io::Error;

    fn version(&self) -> String {
        "5.1.0-StarRocks-double-3.3.0".into()
    }

    fn connect_id(&self) -> u32 {
        self.id
    }

    async fn authenticate(&self, _plugin: &str, user: &[u8], salt: &[u8], auth: &[u8]) -> bool {
        user == self.shared.user.as_bytes() && native_password_ok(&self.shared.password, salt, auth)
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(
            ErrorKind::ER_UNKNOWN_ERROR,
            b"the StarRocks double takes no prepared statements",
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results
            .error(ErrorKind::ER_UNKNOWN_ERROR, b"no prepared statements")
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let answer = handle(&self.shared, &mut self.conn, query).await;
        write_answer(results, answer).await
    }
}

async fn write_answer<W: AsyncWrite + Send + Unpin>(
    results: QueryResultWriter<'_, W>,
    answer: Result<Answer, Fail>,
) -> io::Result<()> {
    match answer {
        Err((code, msg)) => {
            let kind = ErrorKind::from(code);
            results.error(kind, msg.as_bytes()).await
        }
        Ok(Answer::Ok(n)) => {
            results
                .completed(OkResponse {
                    affected_rows: n,
                    ..Default::default()
                })
                .await
        }
        Ok(Answer::Rows(cols, rows)) => {
            let columns: Vec<Column> = cols
                .iter()
                .map(|(n, t)| Column {
                    table: String::new(),
                    column: n.clone(),
                    coltype: *t,
                    colflags: ColumnFlags::empty(),
                })
                .collect();
            let mut w = results.start(&columns).await?;
            for r in rows {
                for v in r {
                    w.write_col(v)?;
                }
                w.end_row().await?;
            }
            w.finish().await
        }
        Ok(Answer::Raw(cols, rows)) => {
            let columns: Vec<Column> = cols
                .iter()
                .map(|(n, t, f)| Column {
                    table: String::new(),
                    column: n.clone(),
                    coltype: *t,
                    colflags: *f,
                })
                .collect();
            if columns.is_empty() {
                return results.completed(OkResponse::default()).await;
            }
            let mut w = results.start(&columns).await?;
            for r in rows {
                for v in r {
                    w.write_col(v)?;
                }
                w.end_row().await?;
            }
            w.finish().await
        }
    }
}

fn dml_table(sql: &str) -> Option<String> {
    let c = re(r"(?is)^\s*(?:INSERT\s+(?:IGNORE\s+)?INTO|REPLACE\s+INTO|DELETE\s+FROM|UPDATE|TRUNCATE\s+TABLE)\s+(`[^`]+`\s*\.\s*`[^`]+`)")
        .captures(sql)?;
    Some(c[1].to_string())
}

pub async fn handle(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    query: &str,
) -> Result<Answer, Fail> {
    let sql = query.trim().trim_end_matches(';').trim();
    let up = sql.to_uppercase();
    let up = up.split_whitespace().collect::<Vec<_>>().join(" ");
    {
        let mut m = shared.meta.lock().expect("meta");
        if let Some(i) = m
            .fail_once
            .iter()
            .position(|(p, _, _)| up.starts_with(p.as_str()))
        {
            if m.fail_once[i].1 > 0 {
                m.fail_once[i].1 -= 1;
            } else {
                let (_, _, msg) = m.fail_once.remove(i);
                return Err((1105, msg));
            }
        }
    }

    if let Some(c) = re(
        r"(?is)^SELECT\s+.*\s+FROM\s+information_schema\.partitions_meta\s+WHERE\s+DB_NAME\s*=\s*'([^']*)'\s+AND\s+TABLE_NAME\s*=\s*'([^']*)'\s*$",
    )
    .captures(sql)
    {
        return show::partitions_meta(shared, conn, &(c[1].to_string(), c[2].to_string())).await;
    }
    if let Some(c) = re(r"(?is)^SHOW\s+PARTITIONS\s+FROM\s+(\S+)").captures(sql) {
        return show::show_partitions(shared, conn, &qualified(&c[1])?).await;
    }
    if up.starts_with("ADMIN SHOW FRONTEND CONFIG") {
        let pat = re(r#"(?is)LIKE\s+['"]([^'"]*)['"]"#)
            .captures(sql)
            .map(|c| c[1].to_string());
        return Ok(show::show_config(shared, pat.as_deref()));
    }
    if up.starts_with("ADMIN SET FRONTEND CONFIG") {
        let c = re(r#"(?is)\(\s*"([^"]+)"\s*=\s*"([^"]*)"\s*\)"#)
            .captures(sql)
            .ok_or_else(|| fail("ADMIN SET FRONTEND CONFIG (\"key\" = \"value\") expected"))?;
        let mut m = shared.meta.lock().expect("meta");
        match m.config.get_mut(&c[1]) {
            Some(item) if item.mutable => item.value = c[2].to_string(),
            _ => {
                return Err((
                    1105,
                    format!("Config '{}' does not exist or is not mutable", &c[1]),
                ));
            }
        }
        m.config_sets.push((c[1].to_string(), c[2].to_string()));
        return Ok(Answer::Ok(0));
    }
    if up == "SHOW FRONTENDS" {
        return Ok(show::show_frontends(shared));
    }
    if up == "SHOW BACKENDS" {
        return Ok(show::show_backends(shared));
    }
    if up == "SHOW COMPUTE NODES" {
        return Ok(Answer::Rows(
            cols(&[
                "ComputeNodeId",
                "IP",
                "HeartbeatPort",
                "BePort",
                "HttpPort",
                "BrpcPort",
                "LastStartTime",
                "LastHeartbeat",
                "Alive",
                "SystemDecommissioned",
                "ClusterDecommissioned",
                "ErrMsg",
                "Version",
                "CpuCores",
                "NumRunningQueries",
                "MemUsedPct",
                "CpuUsedPct",
                "HasStoragePath",
                "StarletPort",
                "WorkerId",
                "WarehouseName",
                "TabletNum",
            ]),
            Vec::new(),
        ));
    }
    if up.starts_with("SHOW DATA") && up != "SHOW DATABASES" {
        return show::show_data(shared, conn, sql).await;
    }
    if up == "SHOW DATABASES" {
        let rows = cells(
            shared,
            conn,
            &format!(
                "SHOW DATABASES LIKE '{}%{}'",
                shared.prefix.replace('_', "\\_"),
                shared.suffix.replace('_', "\\_")
            ),
        )
        .await?;
        let mut names = vec![
            Some("_statistics_".to_string()),
            Some("information_schema".to_string()),
        ];
        names.extend(
            rows.into_iter()
                .map(|r| r[0].clone().map(|n| shared.unmap(&n))),
        );
        names.sort();
        return Ok(Answer::Rows(
            cols(&["Database"]),
            names.into_iter().map(|n| vec![n]).collect(),
        ));
    }
    if let Some(c) = re(r"(?is)^SHOW\s+(FULL\s+)?TABLES\s+FROM\s+`?([^`\s]+)`?$").captures(sql) {
        let full = c.get(1).is_some();
        let dbname = c[2].to_string();
        let rows = cells(
            shared,
            conn,
            &format!("SHOW FULL TABLES FROM `{}`", shared.mdb(&dbname)),
        )
        .await?;
        let mut names: Vec<Vec<Option<String>>> = rows
            .into_iter()
            .filter(|r| r[0].as_deref().is_some_and(|n| !n.is_empty()))
            .map(|r| if full { r } else { vec![r[0].clone()] })
            .collect();
        names.sort();
        let mut c = cols(&[&format!("Tables_in_{dbname}")]);
        if full {
            c.push(("Table_type".into(), STR));
        }
        return Ok(Answer::Rows(c, names));
    }
    if let Some(c) = re(r"(?is)^SHOW\s+CREATE\s+(?:TABLE|VIEW)\s+(\S+)$").captures(sql) {
        let key = qualified(&c[1])?;
        let m = shared.meta.lock().expect("meta");
        if let Some(v) = m.views.get(&key) {
            return Ok(Answer::Rows(
                cols(&[
                    "View",
                    "Create View",
                    "character_set_client",
                    "collation_connection",
                ]),
                vec![vec![
                    Some(key.1.clone()),
                    Some(v.clone()),
                    Some("utf8".into()),
                    Some("utf8_general_ci".into()),
                ]],
            ));
        }
        let t = m
            .tables
            .get(&key)
            .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", key.0, key.1)))?;
        return Ok(Answer::Rows(
            cols(&["Table", "Create Table"]),
            vec![vec![Some(key.1.clone()), Some(t.ddl.clone())]],
        ));
    }
    if let Some(c) = re(r"(?is)^SHOW\s+MATERIALIZED\s+VIEWS\s+FROM\s+`?([^`\s]+)`?$").captures(sql)
    {
        let dbname = c[1].to_string();
        let m = shared.meta.lock().expect("meta");
        let rows = m
            .mvs
            .iter()
            .filter(|(k, _)| k.0 == dbname)
            .enumerate()
            .map(|(i, (k, text))| {
                vec![
                    Some((20_000 + i).to_string()),
                    Some(k.0.clone()),
                    Some(k.1.clone()),
                    Some("ASYNC".into()),
                    Some("true".into()),
                    Some(String::new()),
                    Some("UNPARTITIONED".into()),
                    Some("0".into()),
                    Some(text.clone()),
                ]
            })
            .collect();
        return Ok(Answer::Rows(
            cols(&[
                "id",
                "database_name",
                "name",
                "refresh_type",
                "is_active",
                "inactive_reason",
                "partition_type",
                "rows",
                "text",
            ]),
            rows,
        ));
    }
    if let Some(c) = re(r"(?is)^SHOW\s+CREATE\s+MATERIALIZED\s+VIEW\s+(\S+)$").captures(sql) {
        let key = qualified(&c[1])?;
        let m = shared.meta.lock().expect("meta");
        let text = m.mvs.get(&key).ok_or_else(|| {
            (
                1146,
                format!("Unknown materialized view '{}.{}'", key.0, key.1),
            )
        })?;
        return Ok(Answer::Rows(
            cols(&["Materialized View", "Create Materialized View"]),
            vec![vec![Some(key.1.clone()), Some(text.clone())]],
        ));
    }
    if let Some(c) = re(r"(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)(.*?)\bAS\s+(SELECT\b.*)$")
        .captures(sql)
    {
        let key = qualified(&c[2])?;
        exec(
            shared,
            conn,
            &format!(
                "CREATE VIEW `{}`.`{}` AS {}",
                shared.mdb(&key.0),
                key.1,
                shared.map_names(&c[4])
            ),
        )
        .await?;
        let text = format!(
            "CREATE MATERIALIZED VIEW `{}`{}AS {}",
            key.1,
            &c[3],
            c[4].trim()
        );
        shared.meta.lock().expect("meta").mvs.insert(key, text);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^DROP\s+MATERIALIZED\s+VIEW\s+(IF\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)$")
            .captures(sql)
    {
        let key = qualified(&c[2])?;
        exec(
            shared,
            conn,
            &format!("DROP VIEW IF EXISTS `{}`.`{}`", shared.mdb(&key.0), key.1),
        )
        .await?;
        shared.meta.lock().expect("meta").mvs.remove(&key);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^CREATE\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)\s+AS\s+(.*)$")
            .captures(sql)
    {
        let key = qualified(&c[2])?;
        let ine = if c.get(1).is_some() {
            "IF NOT EXISTS "
        } else {
            ""
        };
        exec(
            shared,
            conn,
            &format!(
                "CREATE VIEW {ine}`{}`.`{}` AS {}",
                shared.mdb(&key.0),
                key.1,
                shared.map_names(&c[3])
            ),
        )
        .await?;
        let text = format!("CREATE VIEW `{}` AS {}", key.1, c[3].trim());
        shared.meta.lock().expect("meta").views.insert(key, text);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^DROP\s+VIEW\s+(IF\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)$").captures(sql)
    {
        let key = qualified(&c[2])?;
        let ie = if c.get(1).is_some() { "IF EXISTS " } else { "" };
        exec(
            shared,
            conn,
            &format!("DROP VIEW {ie}`{}`.`{}`", shared.mdb(&key.0), key.1),
        )
        .await?;
        shared.meta.lock().expect("meta").views.remove(&key);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^CREATE\s+DATABASE\s+(IF\s+NOT\s+EXISTS\s+)?`?([^`\s]+)`?$").captures(sql)
    {
        let ine = if c.get(1).is_some() {
            "IF NOT EXISTS "
        } else {
            ""
        };
        return exec(
            shared,
            conn,
            &format!(
                "CREATE DATABASE {ine}`{}` CHARACTER SET utf8mb4",
                shared.mdb(&c[2])
            ),
        )
        .await
        .map(Answer::Ok);
    }
    if let Some(c) =
        re(r"(?is)^DROP\s+DATABASE\s+(IF\s+EXISTS\s+)?`?([^`\s]+)`?(\s+FORCE)?$").captures(sql)
    {
        let ie = if c.get(1).is_some() { "IF EXISTS " } else { "" };
        let dbname = c[2].to_string();
        shared
            .meta
            .lock()
            .expect("meta")
            .tables
            .retain(|k, _| k.0 != dbname);
        return exec(
            shared,
            conn,
            &format!("DROP DATABASE {ie}`{}`", shared.mdb(&dbname)),
        )
        .await
        .map(Answer::Ok);
    }
    if let Some(c) = re(r"(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)\s+LIKE\s+(`[^`]+`\s*\.\s*`[^`]+`)$").captures(sql) {
        let (new, old) = (qualified(&c[2])?, qualified(&c[3])?);
        let mut t = shared
            .meta
            .lock()
            .expect("meta")
            .tables
            .get(&old)
            .cloned()
            .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", old.0, old.1)))?;
        let ine = c.get(1).is_some();
        if ine && shared.meta.lock().expect("meta").tables.contains_key(&new) {
            return Ok(Answer::Ok(0));
        }
        exec(
            shared,
            conn,
            &format!(
                "CREATE TABLE `{}`.`{}` LIKE `{}`.`{}`",
                shared.mdb(&new.0),
                new.1,
                shared.mdb(&old.0),
                old.1
            ),
        )
        .await?;
        t.ddl = rename_ddl(&t.ddl, &new.1);
        t.id = shared.next_id();
        // CREATE TABLE LIKE re-parses the original's SHOW CREATE TABLE text
        // (CreateTableLikeAnalyzer), which for an automatic table names no partition: the copy
        // starts without any.
        let automatic = t.scheme.automatic();
        t.auto_parts.clear();
        register(shared, &new, t);
        if automatic {
            super::auto_partition::create_partitions(shared, conn, &new, true).await?;
        }
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)\s*\(")
            .captures(sql)
    {
        let key = qualified(&c[2])?;
        if shared.meta.lock().expect("meta").tables.contains_key(&key) {
            if c.get(1).is_some() {
                return Ok(Answer::Ok(0));
            }
            return Err((1050, format!("Table '{}' already exists", key.1)));
        }
        let body = &sql[c.get(2).map(|m| m.end()).unwrap_or(0)..];
        let sr_ddl = format!("CREATE TABLE `{}` {}", key.1, body.trim());
        let parsed = ddl::parse(&sr_ddl).map_err(fail)?;
        let my = ddl::to_mariadb(&sr_ddl, &shared.mdb(&key.0), &key.1).map_err(fail)?;
        exec(shared, conn, &my).await?;
        let t = TableMeta {
            ddl: sr_ddl,
            partitioned: parsed.partition_column.is_some(),
            id: shared.next_id(),
            scheme: parsed.scheme.clone(),
            column: parsed.partition_column.clone(),
            auto_parts: Vec::new(),
        };
        register(shared, &key, t);
        return Ok(Answer::Ok(0));
    }
    if let Some(c) =
        re(r"(?is)^DROP\s+TABLE\s+(IF\s+EXISTS\s+)?(`[^`]+`\s*\.\s*`[^`]+`)(\s+FORCE)?$")
            .captures(sql)
    {
        let key = qualified(&c[2])?;
        let ie = if c.get(1).is_some() { "IF EXISTS " } else { "" };
        let n = exec(
            shared,
            conn,
            &format!("DROP TABLE {ie}`{}`.`{}`", shared.mdb(&key.0), key.1),
        )
        .await?;
        let mut m = shared.meta.lock().expect("meta");
        m.tables.remove(&key);
        m.versions.retain(|k, _| !(k.0 == key.0 && k.1 == key.1));
        return Ok(Answer::Ok(n));
    }
    if let Some(c) = re(r"(?is)^ALTER\s+TABLE\s+(`[^`]+`\s*\.\s*`[^`]+`)\s+(.*)$").captures(sql) {
        return alter_table(shared, conn, &qualified(&c[1])?, c[2].trim()).await;
    }
    if let Some(c) = re(r"(?is)^INSERT\s+OVERWRITE\s+(`[^`]+`\s*\.\s*`[^`]+`)\s*(?:PARTITION\s*\(\s*`?(\w+)`?\s*\))?\s*(SELECT.*)$").captures(sql) {
        let key = qualified(&c[1])?;
        let part = c.get(2).map(|m| m.as_str().to_string());
        return insert_overwrite(shared, conn, &key, part.as_deref(), &c[3]).await;
    }
    if let Some(t) = dml_table(sql) {
        let key = qualified(&t)?;
        if shared.meta.lock().expect("meta").tables.contains_key(&key) {
            let before = fingerprints(shared, conn, &key).await?;
            let r = raw_query(shared, conn, &shared.map_names(sql)).await?;
            super::auto_partition::create_partitions(shared, conn, &key, false).await?;
            bump_changed(shared, conn, &key, &before).await?;
            return Ok(r);
        }
    }
    raw_query(shared, conn, &shared.map_names(sql)).await
}

fn rename_ddl(ddl: &str, new_name: &str) -> String {
    re(r"(?is)^CREATE\s+TABLE\s+`[^`]+`")
        .replace(ddl, format!("CREATE TABLE `{new_name}`").as_str())
        .into_owned()
}

fn register(shared: &Shared, key: &Key, t: TableMeta) {
    let names: Vec<String> = if t.partitioned {
        ddl::partitions(&t.ddl)
            .into_iter()
            .map(|p| p.name)
            .collect()
    } else {
        vec![key.1.clone()]
    };
    let mut m = shared.meta.lock().expect("meta");
    m.tables.insert(key.clone(), t);
    for p in names {
        m.versions.insert((key.0.clone(), key.1.clone(), p), 1);
    }
}

async fn alter_table(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
    clause: &str,
) -> Result<Answer, Fail> {
    let t = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .get(key)
        .cloned()
        .ok_or_else(|| (1146, format!("Unknown table '{}.{}'", key.0, key.1)))?;
    let target = format!("`{}`.`{}`", shared.mdb(&key.0), key.1);
    let new_ddl;
    if let Some(c) = re(r#"(?is)^SET\s*\(\s*"([^"]+)"\s*=\s*"([^"]*)"\s*\)$"#).captures(clause) {
        // Properties live in the StarRocks text only; MariaDB has nothing to change.
        new_ddl = ddl::set_property(&t.ddl, &c[1], &c[2]);
    } else if let Some(c) = re(r"(?is)^ADD\s+COLUMN\s+(.*)$").captures(clause) {
        exec(
            shared,
            conn,
            &format!("ALTER TABLE {target} ADD COLUMN {}", &c[1]),
        )
        .await?;
        new_ddl = ddl::add_column(&t.ddl, c[1].trim()).map_err(fail)?;
    } else if let Some(c) = re(r"(?is)^DROP\s+COLUMN\s+`?(\w+)`?$").captures(clause) {
        exec(
            shared,
            conn,
            &format!("ALTER TABLE {target} DROP COLUMN `{}`", &c[1]),
        )
        .await?;
        new_ddl = ddl::drop_column(&t.ddl, &c[1]).map_err(fail)?;
    } else if let Some(c) =
        re(r"(?is)^ADD\s+PARTITION\s+(IF\s+NOT\s+EXISTS\s+)?(.*)$").captures(clause)
    {
        let clause = format!("PARTITION {}", c[2].trim());
        let parts = ddl::partitions(&clause);
        let p = parts
            .first()
            .ok_or_else(|| fail(format!("cannot read the partition in {clause}")))?;
        if t.scheme.automatic() {
            // The double models automatic tables through their loads only (see auto_partition.rs).
            return Err(fail(
                "the StarRocks double does not do ADD PARTITION on an automatic partitioned table",
            ));
        }
        let bound = if t.scheme.list() {
            format!("VALUES IN ({})", p.upper)
        } else {
            format!("VALUES LESS THAN ({})", p.upper)
        };
        exec(
            shared,
            conn,
            &format!(
                "ALTER TABLE {target} ADD PARTITION (PARTITION `{}` {bound})",
                p.name
            ),
        )
        .await?;
        new_ddl = ddl::add_partition(&t.ddl, c[2].trim()).map_err(fail)?;
        shared
            .meta
            .lock()
            .expect("meta")
            .versions
            .insert((key.0.clone(), key.1.clone(), p.name.clone()), 1);
    } else if let Some(c) =
        re(r"(?is)^DROP\s+PARTITION\s+(IF\s+EXISTS\s+)?`?(\w+)`?(\s+FORCE)?$").captures(clause)
    {
        // Not while a load creates partitions: it would write back the list it read before the
        // drop (see Shared::partitioning).
        let one_at_a_time = shared.partitioning.lock().await;
        exec(
            shared,
            conn,
            &format!("ALTER TABLE {target} DROP PARTITION `{}`", &c[2]),
        )
        .await?;
        new_ddl = ddl::drop_partition(&t.ddl, &c[2]);
        {
            let mut m = shared.meta.lock().expect("meta");
            m.versions
                .remove(&(key.0.clone(), key.1.clone(), c[2].to_string()));
            if let Some(tm) = m.tables.get_mut(key) {
                tm.auto_parts.retain(|p| p.name != c[2]);
            }
        }
        drop(one_at_a_time);
        if t.scheme.automatic() {
            // MariaDB gave the dropped range to its neighbour: lay the hidden gaps out again.
            super::auto_partition::create_partitions(shared, conn, key, true).await?;
        }
    } else {
        return Err(fail(format!(
            "the StarRocks double does not do ALTER TABLE {clause}"
        )));
    }
    if let Some(t) = shared.meta.lock().expect("meta").tables.get_mut(key) {
        t.ddl = new_ddl;
    }
    Ok(Answer::Ok(0))
}

async fn insert_overwrite(
    shared: &Shared,
    conn: &mut mysql_async::Conn,
    key: &Key,
    partition: Option<&str>,
    select: &str,
) -> Result<Answer, Fail> {
    let before = fingerprints(shared, conn, key).await?;
    let target = format!("`{}`.`{}`", shared.mdb(&key.0), key.1);
    let partitioned = shared
        .meta
        .lock()
        .expect("meta")
        .tables
        .get(key)
        .map(|t| t.partitioned)
        .unwrap_or(false);
    if let Some(p) = partition
        && partitioned
        && !super::partition_names(shared, key).iter().any(|n| n == p)
    {
        // InsertAnalyzer: a named target partition must exist (ERR_UNKNOWN_PARTITION), also on an
        // automatic table, whose partitions only a load creates.
        return Err((
            1064,
            format!(
                "Getting analyzing error. Detail message: Unknown partition '{p}' in table '{}'.",
                key.1
            ),
        ));
    }
    let part = match partition {
        Some(p) if partitioned => format!(" PARTITION (`{p}`)"),
        _ => String::new(),
    };
    let _active =
        super::Active::enter(&shared.meta, format!("overwrite {}.{}{part}", key.0, key.1));
    let delay = shared.meta.lock().expect("meta").overwrite_delay;
    exec(shared, conn, "START TRANSACTION").await?;
    let r = async {
        exec(shared, conn, &format!("DELETE FROM {target}{part}")).await?;
        tokio::time::sleep(delay).await;
        let n = exec(
            shared,
            conn,
            &format!("INSERT INTO {target}{part} {}", shared.map_names(select)),
        )
        .await?;
        exec(shared, conn, "COMMIT").await?;
        Ok::<u64, Fail>(n)
    }
    .await;
    match r {
        Ok(n) => {
            super::auto_partition::create_partitions(shared, conn, key, false).await?;
            bump_changed(shared, conn, key, &before).await?;
            Ok(Answer::Ok(n))
        }
        Err(e) => {
            let _ = exec(shared, conn, "ROLLBACK").await;
            Err(e)
        }
    }
}
