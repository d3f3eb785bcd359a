-- lua/ferry/starrocks.lua: the pure functions, against ../shared/reference/starrocks.md and the
-- manual ../shared/procedures/starrocks-cluster-sync.md (sync.properties, hosts.properties,
-- include/exclude lists) and StarRocks' own texts (SHOW CREATE TABLE, SHOW PARTITIONS, SHOW DATA).
local sr = require "ferry.starrocks"

local function set_of(list)
  local out = {}
  for _, x in ipairs(list) do out[x] = true end
  return out
end

---------------------------------------------------------------------------------------------------
-- include_data_list / exclude_data_list ("db1, db2.tbl2, db3"; include takes effect first)
---------------------------------------------------------------------------------------------------

local l = sr.split_list("db1, db2.tbl2, db3")
assert(#l == 3 and l[1] == "db1" and l[2] == "db2.tbl2" and l[3] == "db3")
assert(#sr.split_list("") == 0 and #sr.split_list(" , ,") == 0)

-- Nothing listed: everything.
local all = sr.selector({}, {})
assert(all.db("any") and all.table("any", "t"))
assert(sr.selector(nil, nil).table("x", "y"))

-- Include whole databases and single tables, then exclude from them.
local sel = sr.selector({"db1", "db2.tbl2", "db3"}, {"db3", "db1.secret"})
assert(sel.db("db1") and sel.table("db1", "a"))
assert(not sel.table("db1", "secret"))
assert(sel.db("db2") and sel.table("db2", "tbl2"))
assert(not sel.table("db2", "other"))
assert(not sel.db("db3") and not sel.table("db3", "x"))
assert(not sel.db("db4") and not sel.table("db4", "t"))
-- Names are whole: db1 does not select db10, db10.t does not select db1.
assert(not sel.db("db10") and not sel.table("db10", "a"))
assert(not sr.selector({"db10.t"}, {}).db("db1"))
assert(not sr.selector({"db1"}, {}).table("db1x", "t"))
-- Exclude only: the rest stays.
local ex = sr.selector({}, {"db2.tbl2"})
assert(ex.db("db2") and ex.table("db2", "x") and not ex.table("db2", "tbl2") and ex.table("db1", "tbl2"))

---------------------------------------------------------------------------------------------------
-- SHOW CREATE TABLE texts, as StarRocks prints them (docs: CREATE TABLE, Data distribution,
-- Expression partitioning, Bitmap indexes)
---------------------------------------------------------------------------------------------------

local RANGE = [[
CREATE TABLE `site_access` (
  `event_day` date NULL COMMENT "",
  `site_id` int(11) NULL DEFAULT "10" COMMENT "",
  `city_code` varchar(100) NULL COMMENT "",
  `user_name` varchar(32) NULL DEFAULT "" COMMENT "",
  `pv` bigint(20) NULL DEFAULT "0" COMMENT "",
  INDEX index1 (`user_name`) USING BITMAP COMMENT 'user name index'
) ENGINE=OLAP 
DUPLICATE KEY(`event_day`, `site_id`, `city_code`, `user_name`)
COMMENT "OLAP"
PARTITION BY RANGE(`event_day`)
(PARTITION p20200321 VALUES [("0000-01-01"), ("2020-03-22")),
PARTITION p20200322 VALUES [("2020-03-22"), ("2020-03-23")))
DISTRIBUTED BY HASH(`event_day`, `site_id`) BUCKETS 32 
PROPERTIES (
"replication_num" = "3",
"in_memory" = "false",
"enable_persistent_index" = "true",
"replicated_storage" = "true",
"compression" = "LZ4"
);]]

local LIST = [[
CREATE TABLE `t_recharge_detail` (
  `id` bigint(20) NOT NULL COMMENT "",
  `user_id` bigint(20) NOT NULL COMMENT "",
  `recharge_money` decimal(32, 2) NOT NULL COMMENT "",
  `city` varchar(20) NOT NULL COMMENT "",
  `dt` varchar(20) NOT NULL COMMENT ""
) ENGINE=OLAP 
DUPLICATE KEY(`id`)
COMMENT "OLAP"
PARTITION BY LIST(`city`)
(PARTITION pLos_Angeles VALUES IN ("Los Angeles", "San Diego"),
PARTITION pOdd VALUES IN ("a,b", "c)d"))
DISTRIBUTED BY HASH(`id`) BUCKETS 16 
PROPERTIES (
"replication_num" = "1"
);]]

local LIST2 = [[
CREATE TABLE `t2` (
  `id` bigint(20) NOT NULL COMMENT "",
  `dt` varchar(20) NOT NULL COMMENT "",
  `city` varchar(20) NOT NULL COMMENT ""
) ENGINE=OLAP 
DUPLICATE KEY(`id`)
PARTITION BY LIST(`dt`,`city`)
(PARTITION p1 VALUES IN (("2022-04-01", "Los Angeles"), ("2022-04-01", "San Francisco")),
PARTITION p2 VALUES IN (("2022-04-02", "Los Angeles")))
DISTRIBUTED BY HASH(`id`) BUCKETS 16 
PROPERTIES (
"replication_num" = "1"
);]]

-- Automatic partitioning: PARTITION BY <expr> and no partition list (reference, Corrections).
local EXPR = [[
CREATE TABLE `events` (
  `event_day` datetime NULL COMMENT "",
  `site_id` int(11) NULL COMMENT ""
) ENGINE=OLAP 
DUPLICATE KEY(`event_day`, `site_id`)
PARTITION BY date_trunc('day', `event_day`)
DISTRIBUTED BY HASH(`event_day`, `site_id`)
PROPERTIES (
"partition_live_number" = "3",
"replication_num" = "3"
);]]

local PLAIN = [[
CREATE TABLE `plain` (
  `k` int(11) NOT NULL COMMENT "",
  `v` varchar(65533) NULL COMMENT ""
) ENGINE=OLAP 
PRIMARY KEY(`k`)
DISTRIBUTED BY HASH(`k`) BUCKETS 4 ;]]

-- partitions: {name, values} in order, values as printed.
local parts = sr.partitions(RANGE)
assert(#parts == 2)
assert(parts[1].name == "p20200321" and parts[1].values == 'VALUES [("0000-01-01"), ("2020-03-22"))')
assert(parts[2].name == "p20200322" and parts[2].values == 'VALUES [("2020-03-22"), ("2020-03-23"))')
parts = sr.partitions(LIST)
assert(#parts == 2)
assert(parts[1].name == "pLos_Angeles" and parts[1].values == 'VALUES IN ("Los Angeles", "San Diego")')
assert(parts[2].name == "pOdd" and parts[2].values == 'VALUES IN ("a,b", "c)d")', parts[2].values)
parts = sr.partitions(LIST2)
assert(#parts == 2)
assert(parts[1].name == "p1" and
  parts[1].values == 'VALUES IN (("2022-04-01", "Los Angeles"), ("2022-04-01", "San Francisco"))')
assert(parts[2].name == "p2" and parts[2].values == 'VALUES IN (("2022-04-02", "Los Angeles"))')
assert(#sr.partitions(EXPR) == 0)
assert(#sr.partitions(PLAIN) == 0)

-- schema_signature: columns, keys, partitioning scheme, distribution must match; the name,
-- the partition list, PROPERTIES and comments need not.
local sig = sr.schema_signature(RANGE)
assert(not sig:find("site_access", 1, true) and not sig:find("p20200321", 1, true))
assert(not sig:find("replication_num", 1, true) and not sig:find("COMMENT", 1, true))
assert(sig:find("PARTITION BY RANGE", 1, true) and sig:find("BUCKETS 32", 1, true))
assert(sig:find("`pv` bigint(20)", 1, true))
local renamed = RANGE:gsub("`site_access`", "`site_access_copy`")
  :gsub('"replication_num" = "3"', '"replication_num" = "1"')
  :gsub("PARTITION p20200322 VALUES %[%(\"2020%-03%-22\"%), %(\"2020%-03%-23\"%)%)",
    'PARTITION p20200322 VALUES [("2020-03-22"), ("2020-03-23")),\nPARTITION p20200323 VALUES [("2020-03-23"), ("2020-03-24"))')
  :gsub('COMMENT "OLAP"', 'COMMENT "copied"')
assert(renamed:find("p20200323", 1, true))
assert(sr.schema_signature(renamed) == sig)
-- Whitespace as another version prints it.
assert(sr.schema_signature((RANGE:gsub("\n  ", "\n    "):gsub(", ", ","))) == sig)
-- What does count.
assert(sr.schema_signature((RANGE:gsub("`pv` bigint%(20%)", "`pv` int(11)"))) ~= sig)
assert(sr.schema_signature((RANGE:gsub("BUCKETS 32", "BUCKETS 16"))) ~= sig)
assert(sr.schema_signature((RANGE:gsub("DUPLICATE KEY%(`event_day`, `site_id`", "DUPLICATE KEY(`site_id`, `event_day`"))) ~= sig)
assert(sr.schema_signature((RANGE:gsub("RANGE%(`event_day`%)", "RANGE(`site_id`)"))) ~= sig)
assert(sr.schema_signature((RANGE:gsub("HASH%(`event_day`, `site_id`%)", "HASH(`site_id`)"))) ~= sig)
-- Bitmap indexes count only with enable_bitmap_index_sync (opts.bitmap).
local no_index = RANGE:gsub(",\n  INDEX index1 %(`user_name`%) USING BITMAP COMMENT 'user name index'", "")
assert(no_index ~= RANGE)
assert(sr.schema_signature(no_index) == sig)
assert(sr.schema_signature(no_index, {bitmap = true}) ~= sr.schema_signature(RANGE, {bitmap = true}))
assert(sr.schema_signature(RANGE, {bitmap = true}):find("USING BITMAP", 1, true))
-- An index comment may hold commas and parentheses.
local odd_comment = RANGE:gsub("'user name index'", "'names, (for lookups)'")
assert(sr.schema_signature(odd_comment) == sig)
local odd_target = sr.target_ddl(odd_comment, "sales", "site_access", {target_cluster_replication_num = -1})
assert(not odd_target:find("lookups", 1, true) and not odd_target:find("INDEX", 1, true), odd_target)
assert(odd_target:find('`pv` bigint(20) NULL DEFAULT "0" COMMENT ""\n) ENGINE=OLAP', 1, true), odd_target)
-- List and expression partitioning.
local lsig = sr.schema_signature(LIST)
assert(lsig:find("PARTITION BY LIST", 1, true) and not lsig:find("Los Angeles", 1, true))
assert(sr.schema_signature((LIST:gsub("PARTITION pOdd[^\n]*\n", ""):gsub('"San Diego"%),', '"San Diego"))'))) == lsig)
local esig = sr.schema_signature(EXPR)
assert(esig:find("date_trunc('day',`event_day`)", 1, true), esig)
assert(sr.schema_signature((EXPR:gsub("'day'", "'month'"))) ~= esig)
assert(sr.schema_signature(PLAIN):find("PRIMARY KEY(`k`)", 1, true))

-- PROPERTIES as key -> value.
local props = sr.properties(RANGE)
assert(props.replication_num == "3" and props.in_memory == "false" and props.compression == "LZ4")
assert(props.enable_persistent_index == "true" and props.replicated_storage == "true")
local n = 0
for _ in pairs(props) do n = n + 1 end
assert(n == 5)
assert(next(sr.properties(PLAIN)) == nil)
assert(sr.properties(EXPR).partition_live_number == "3")

-- property_changes: source values that differ on the target, not counting what the
-- target_cluster_* settings decide; sorted by key.
local DST = RANGE:gsub('"replication_num" = "3"', '"replication_num" = "1"'):gsub('"LZ4"', '"ZSTD"')
  :gsub('"in_memory" = "false",\n', '"in_memory" = "false",\n"target_only" = "x",\n')
local ch = sr.property_changes(RANGE, DST, {target_cluster_replication_num = -1})
assert(#ch == 2 and ch[1][1] == "compression" and ch[1][2] == "LZ4" and ch[2][1] == "replication_num" and ch[2][2] == "3")
ch = sr.property_changes(RANGE, DST, {target_cluster_replication_num = 1})
assert(#ch == 1 and ch[1][1] == "compression")
ch = sr.property_changes(RANGE, RANGE:gsub('"true"', '"false"'), {target_cluster_enable_persistent_index = "false"})
assert(#ch == 1 and ch[1][1] == "replicated_storage" and ch[1][2] == "true")
ch = sr.property_changes(RANGE, RANGE:gsub('"true"', '"false"'), {target_cluster_enable_persistent_index = ""})
assert(#ch == 2 and ch[1][1] == "enable_persistent_index" and ch[2][1] == "replicated_storage")
local LAKE = RANGE:gsub('"compression" = "LZ4"', '"compression" = "LZ4",\n"storage_volume" = "src_vol"')
assert(#sr.property_changes(LAKE, RANGE:gsub('"compression" = "LZ4"', '"compression" = "LZ4",\n"storage_volume" = "dst_vol"'),
  {target_cluster_storage_volume = "dst_vol"}) == 0)
assert(#sr.property_changes(LAKE, RANGE, {}) == 1)

-- target_ddl: qualified with the database, target_cluster_* applied, bitmap indexes only when synced.
local defaults = {target_cluster_replication_num = -1, target_cluster_storage_volume = "",
  target_cluster_use_builtin_storage_volume_only = false, target_cluster_enable_persistent_index = "",
  enable_bitmap_index_sync = false}
local function with(over)
  local c = {}
  for k, v in pairs(defaults) do c[k] = v end
  for k, v in pairs(over) do c[k] = v end
  return c
end
local t = sr.target_ddl(RANGE, "sales", "site_access", defaults)
assert(t:sub(1, 38) == "CREATE TABLE `sales`.`site_access` (\n ", t:sub(1, 40))
assert(not t:find("USING BITMAP", 1, true))
assert(sr.properties(t).replication_num == "3" and sr.properties(t).storage_volume == nil)
assert(sr.schema_signature(t) == sig)
assert(#sr.partitions(t) == 2)
t = sr.target_ddl(RANGE, "sales", "site_access", with{target_cluster_replication_num = 1,
  target_cluster_enable_persistent_index = "false", enable_bitmap_index_sync = true})
assert(sr.properties(t).replication_num == "1" and sr.properties(t).enable_persistent_index == "false")
assert(sr.properties(t).compression == "LZ4" and t:find("USING BITMAP", 1, true))
assert(not t:find('"replication_num" = "3"', 1, true))
t = sr.target_ddl(RANGE, "sales", "site_access", with{target_cluster_storage_volume = "vol1"})
assert(sr.properties(t).storage_volume == "vol1")
t = sr.target_ddl(RANGE, "sales", "site_access", with{target_cluster_storage_volume = "vol1",
  target_cluster_use_builtin_storage_volume_only = true})
assert(sr.properties(t).storage_volume == "builtin_storage_volume")
-- No PROPERTIES clause at all: one is added.
t = sr.target_ddl(PLAIN, "d", "plain", with{target_cluster_replication_num = 2})
assert(sr.properties(t).replication_num == "2" and t:find("^CREATE TABLE `d`%.`plain` %("))
assert(sr.schema_signature(t) == sr.schema_signature(PLAIN))

---------------------------------------------------------------------------------------------------
-- Names
---------------------------------------------------------------------------------------------------

assert(sr.quote("t") == "`t`")
assert(sr.quote("a`b") == "`a``b`")
assert(sr.quote("``") == "``````")
assert(sr.qualified("db", "t`x") == "`db`.`t``x`")
-- RFC 3986 unreserved characters stay, every other byte is %XX.
assert(sr.urlencode("aZ09-._~") == "aZ09-._~")
assert(sr.urlencode("dru id") == "dru%20id")
assert(sr.urlencode("p@ss:w/rd") == "p%40ss%3Aw%2Frd")
assert(sr.urlencode("a+b%c&d=e?#") == "a%2Bb%25c%26d%3De%3F%23")
assert(sr.urlencode("café") == "caf%C3%A9")

-- Stream Load labels (System limits: digits, letters and underscores, at most 128 characters).
local function valid_label(s) return #s >= 1 and #s <= 128 and s:find("^[A-Za-z0-9_]+$") ~= nil end
local lab = sr.label("db", "tbl", "p1", 3, "0000abcd")
assert(valid_label(lab) and lab:find("db_tbl_p1", 1, true) and lab:find("3", 1, true) and lab:find("0000abcd", 1, true))
-- The same job (retries) gets the same label, another version or token another.
assert(sr.label("db", "tbl", "p1", 3, "0000abcd") == lab)
assert(sr.label("db", "tbl", "p1", 4, "0000abcd") ~= lab)
assert(sr.label("db", "tbl", "p1", 3, "0000abce") ~= lab)
assert(sr.label("db", "tbl", "p2", 3, "0000abcd") ~= lab)
assert(valid_label(sr.label("my-db", "t.x", "p 1", 1, "deadbeef")))
assert(valid_label(sr.label("café", "日本", "p", 1, "deadbeef")))
local long = sr.label(("d"):rep(256), ("t"):rep(1024), ("p"):rep(64), 123456789, "7fffffff")
assert(valid_label(long) and long:find("7fffffff", 1, true))
assert(long ~= sr.label(("d"):rep(256), ("t"):rep(1024), ("p"):rep(64), 123456788, "7fffffff"))
local tok = sr.token()
assert(valid_label(tok) and #tok == 8)

---------------------------------------------------------------------------------------------------
-- Sizes as SHOW PARTITIONS (DataSize: "4KB") and SHOW DATA ("900.000 B", "1.400 KB") print them
---------------------------------------------------------------------------------------------------

assert(sr.size_bytes("4KB") == 4096)
assert(sr.size_bytes("900.000 B") == 900)
assert(sr.size_bytes("0B") == 0)
assert(sr.size_bytes("1.400 KB") == 1.4 * 1024)
assert(sr.size_bytes("10.000MB") == 10 * 1024 * 1024)
assert(sr.size_bytes("1024.000 GB") == 1024 ^ 4)
assert(sr.size_bytes("1.088 TB") == 1.088 * 1024 ^ 4)
assert(sr.size_bytes("2PB") == 2 * 1024 ^ 5)
assert(sr.size_bytes("80.000") == 80)
assert(sr.size_bytes("NULL") == nil and sr.size_bytes(nil) == nil and sr.size_bytes("3 XB") == nil)

---------------------------------------------------------------------------------------------------
-- conf/sync.properties and conf/hosts.properties, in a scratch folder
---------------------------------------------------------------------------------------------------

local dir = os.tmpname()
os.remove(dir)
ferry.fs.mkdir(dir .. "/conf")
ferry.fs.write(dir .. "/conf/sync.properties", table.concat({
  "# a comment",
  "one_time_run_mode=true",
  "source_fe_host=192.1.1.1",
  "source_fe_query_port=9030",
  "source_cluster_password=s3cr3t-pw",
  "target_fe_host=fe-0.starrocks.svc.cluster.local",
  "target_cluster_password=",
  "include_data_list=db1, db2.tbl2, db3",
  "source_cluster_token=5dd2f6d5-a6c6-4d4a-b5f8-fd2c3b4e1a2f",
  "target_cluster_replication_num=2",
  "my_own_key=1",
  "enable_bitmap_index_sync=TRUE",
}, "\n") .. "\n")
ferry.fs.write(dir .. "/conf/hosts.properties", table.concat({
  "# <SOURCE/TARGET>_<host>=<mappedHost>[;<srcPort>:<dstPort>[,<srcPort>:<dstPort>...]]",
  "SOURCE_192.1.1.1=10.1.1.1;8030:38030,9030:39030",
  "SOURCE_192.1.1.2=10.1.1.2",
  "TARGET_fe-0.starrocks.svc.cluster.local=10.1.2.1;9030:19030",
}, "\n") .. "\n")

-- The tool folder or its conf folder both work; -p values win over the file, the file over defaults.
local cfg, path, warnings = sr.read_conf(dir, {target_fe_query_port = 19030})
assert(path == dir .. "/conf/sync.properties")
local cfg2, path2 = sr.read_conf(dir .. "/conf", {})
assert(path2 == path and cfg2.source_fe_host == "192.1.1.1")
assert(cfg.one_time_run_mode == true and cfg.enable_bitmap_index_sync == true)
assert(cfg.source_fe_host == "192.1.1.1" and cfg.source_fe_query_port == 9030)
assert(cfg.target_fe_host == "fe-0.starrocks.svc.cluster.local" and cfg.target_fe_query_port == 19030)
assert(cfg.source_cluster_password == "s3cr3t-pw" and cfg.target_cluster_password == "")
assert(cfg.source_cluster_user == "root" and cfg.target_cluster_user == "root")
assert(cfg.target_cluster_replication_num == 2 and cfg2.target_cluster_replication_num == 2)
local inc = cfg.include_data_list
assert(#inc == 3 and inc[1] == "db1" and inc[2] == "db2.tbl2" and inc[3] == "db3")
assert(#cfg.exclude_data_list == 0)
-- Defaults of §1.4.
assert(cfg.meta_job_interval_seconds == 180 and cfg.meta_job_threads == 4 and cfg.ddl_job_interval_seconds == 10)
assert(cfg.ddl_job_batch_size == 10 and cfg.replication_job_interval_seconds == 10 and cfg.replication_job_batch_size == 10)
assert(cfg.report_interval_seconds == 300 and cfg.max_replication_data_size_per_job_in_gb == 1024)
assert(cfg.target_cluster_max_disk_used_percent == 80 and cfg.jdbc_connect_timeout_ms == 30000)
assert(cfg.ddl_job_allow_drop_target_only == false and cfg.ddl_job_allow_drop_schema_change_table == true)
assert(cfg.enable_materialized_view_sync == false and cfg.enable_view_sync == false)
assert(cfg.enable_table_property_sync == false)
assert(cfg2.target_fe_query_port == 9030)
-- Warnings: the token (not used by ferry) and the unknown key with its line; never a password.
local wtext = table.concat(warnings, "\n")
assert(#warnings == 2, wtext)
assert(wtext:find("source_cluster_token", 1, true))
assert(wtext:find(path .. ":11: unknown key my_own_key", 1, true), wtext)
assert(not wtext:find("s3cr3t", 1, true))
-- Values that are not of their type name the file, line and key.
ferry.fs.write(dir .. "/sync.properties", "one_time_run_mode=true\nmeta_job_threads=four\n")
local ok, err = pcall(sr.read_conf, dir, {})
assert(not ok and err.kind == "usage")
assert(err.message:find(dir .. "/sync.properties:2", 1, true) and err.message:find("meta_job_threads=four", 1, true), err.message)
ferry.fs.write(dir .. "/sync.properties", "one_time_run_mode=yes\n")
ok, err = pcall(sr.read_conf, dir, {})
assert(not ok and err.message:find("one_time_run_mode=yes", 1, true))
ferry.fs.remove(dir .. "/sync.properties")
ok, err = pcall(sr.read_conf, dir .. "/nowhere", {})
assert(not ok and err.kind == "not_found")

-- hosts.properties next to sync.properties (the manual's example).
local hosts, hosts_path = sr.read_hosts(dir .. "/conf")
assert(hosts_path == dir .. "/conf/hosts.properties")
local h, port = sr.map_address(hosts, "SOURCE", "192.1.1.1", 9030)
assert(h == "10.1.1.1" and port == 39030)
h, port = sr.map_address(hosts, "SOURCE", "192.1.1.1", 8030)
assert(h == "10.1.1.1" and port == 38030)
h, port = sr.map_address(hosts, "SOURCE", "192.1.1.1", 8040)
assert(h == "10.1.1.1" and port == 8040)
h, port = sr.map_address(hosts, "SOURCE", "192.1.1.2", 9030)
assert(h == "10.1.1.2" and port == 9030)
h, port = sr.map_address(hosts, "TARGET", "fe-0.starrocks.svc.cluster.local", 9030)
assert(h == "10.1.2.1" and port == 19030)
-- A mapping is for its side only; unmapped hosts stay.
h, port = sr.map_address(hosts, "TARGET", "192.1.1.1", 9030)
assert(h == "192.1.1.1" and port == 9030)
h, port = sr.map_address(hosts, "SOURCE", "192.1.1.3", 9030)
assert(h == "192.1.1.3" and port == 9030)
-- No file: no mapping.
local none, none_path = sr.read_hosts(dir)
assert(none_path == nil and next(none.SOURCE) == nil and next(none.TARGET) == nil)
ferry.fs.write(dir .. "/hosts.properties", "MIDDLE_x=y\n")
ok, err = pcall(sr.read_hosts, dir)
assert(not ok and err.kind == "usage" and err.message:find("MIDDLE_x=y", 1, true))
ferry.fs.remove(dir, {recursive = true})

---------------------------------------------------------------------------------------------------
-- *_cluster_password_secret_key: TO_BASE64(AES_ENCRYPT(pwd, key)) (manual, Step 2)
---------------------------------------------------------------------------------------------------

-- SELECT TO_BASE64(AES_ENCRYPT('hello', 'secret key')) in MariaDB (src/codec/cipher.rs).
assert(sr.decrypt_password("/GrAeBvL3M8IneUPHC++Dw==", "secret key") == "hello")
local plain, why = sr.decrypt_password("/GrAeBvL3M8IneUPHC++Dw==", "other key")
assert(plain == nil and why:find("secret key", 1, true))
plain, why = sr.decrypt_password("not base64 at all!", "secret key")
assert(plain == nil and why:find("Base64", 1, true))
plain = sr.decrypt_password("aGVsbG8=", "secret key") -- "hello": not a whole AES block
assert(plain == nil)
assert(sr.decrypt_password("", "secret key") == nil)

---------------------------------------------------------------------------------------------------
-- The sync's working parts (moved out of scripts/starrocks-sync.lua)
---------------------------------------------------------------------------------------------------

-- FE query port URLs: mapped by hosts.properties, user and password percent-encoded, TLS keys.
local fe_cfg = {source_fe_host = "192.1.1.1", source_fe_query_port = 9030, source_cluster_user = "ro ot",
  source_cluster_password = "p@ss:w/rd", source_cluster_ssl_mode = "", source_cluster_ssl_ca = "",
  target_fe_host = "fe-0.starrocks.svc.cluster.local", target_fe_query_port = 9030, target_cluster_user = "root",
  target_cluster_password = "", target_cluster_ssl_mode = "verify-ca", target_cluster_ssl_ca = "/etc/ca dir/ca.pem"}
local url, uhost, uport = sr.fe_url(fe_cfg, hosts, "source")
assert(url == "mysql://ro%20ot:p%40ss%3Aw%2Frd@10.1.1.1:39030/" and uhost == "10.1.1.1" and uport == 39030, url)
url, uhost, uport = sr.fe_url(fe_cfg, hosts, "target")
assert(url == "mysql://root:@10.1.2.1:19030/?ssl-mode=verify-ca&ssl-ca=%2Fetc%2Fca%20dir%2Fca.pem", url)
assert(uhost == "10.1.2.1" and uport == 19030)

-- Both FE hosts must be set; an encrypted password is replaced by its plain text.
local sides = {source_fe_host = "a", target_fe_host = "b", source_cluster_password = "/GrAeBvL3M8IneUPHC++Dw==",
  source_cluster_password_secret_key = "secret key", target_cluster_password = "plain",
  target_cluster_password_secret_key = ""}
sr.check_sides(sides, "sync.properties")
assert(sides.source_cluster_password == "hello" and sides.target_cluster_password == "plain")
sides.source_cluster_password, sides.source_cluster_password_secret_key = "/GrAeBvL3M8IneUPHC++Dw==", "k3y-value"
ok, err = pcall(sr.check_sides, sides, "sync.properties")
assert(not ok and err.kind == "usage" and err.message:find("source_cluster_password does not decrypt", 1, true))
assert(not err.message:find("k3y-value", 1, true) and not err.message:find("GrAe", 1, true))
ok, err = pcall(sr.check_sides, {source_fe_host = "", target_fe_host = "b"}, "sync.properties")
assert(not ok and err.kind == "usage" and err.message:find("source_fe_host is empty", 1, true))

-- Counters start at zero; big partitions are above the per-job size, at most Stream Load's 10 GB.
local c = sr.new_counters()
assert(c.jobs == 0 and c.finished == 0 and c.failed == 0 and c.ddl == 0 and c.rows == 0)
assert(sr.new_counters() ~= c)
assert(sr.big_partition_bytes({max_replication_data_size_per_job_in_gb = 1024}) == 10 * 1024 ^ 3)
assert(sr.big_partition_bytes({max_replication_data_size_per_job_in_gb = 2}) == 2 * 1024 ^ 3)
assert(sr.big_partition_bytes({max_replication_data_size_per_job_in_gb = -1}) == 10 * 1024 ^ 3)

-- Jobs of several tables are taken round-robin.
local rr = sr.round_robin({{"a1", "a2", "a3"}, {}, {"b1"}, {"c1", "c2"}})
assert(table.concat(rr, ",") == "a1,b1,c1,a2,c2,a3")
assert(#sr.round_robin({}) == 0)

-- set_property keeps a value holding `%` as written (a gsub replacement string would read `%1`
-- as a capture and `%` alone as an error).
local with_pct = sr.set_property('PROPERTIES (\n"storage_medium" = "HDD"\n)', "storage_medium", "50%1")
assert(with_pct:find('"storage_medium" = "50%1"', 1, true), with_pct)

print("starrocks ok")
