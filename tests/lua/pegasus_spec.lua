-- lua/ferry/pegasus.lua: the output formats and version rules of ../shared/reference/pegasus.md,
-- including shapes the doubles do not print (2.6 remote_command JSON, BLS_ prefixes, colours).
local pegasus = require "ferry.pegasus"

-- Versions and what differs between them.
local v23, v24, v25, v26 = pegasus.version("2.3.0"), pegasus.version("v2.4.1"), pegasus.version("2.5.0"),
  pegasus.version("2.6.0-SNAPSHOT")
assert(v26.major == 2 and v26.minor == 6 and pegasus.version("no version") == nil)
assert(pegasus.at_least(v25, "2.5") and not pegasus.at_least(v24, "2.5") and pegasus.at_least("3.0", "2.6"))
assert(pegasus.has_new_metrics(v26) and not pegasus.has_new_metrics(v25))
assert(pegasus.upload_limit(v24).key == "hdfs_write_limit_rate_mb_per_sec" and pegasus.upload_limit(v24).how == "http")
assert(pegasus.upload_limit(v23).key == "nfs.max_send_rate_megabytes" and pegasus.upload_limit(v23).how == "remote_command")
-- count_data counts precisely only with -c on every version (data_operations.cpp since v2.0.0).
assert(pegasus.count_command(v25) == "count_data -c" and pegasus.count_command(v24) == "count_data -c"
  and pegasus.count_command(v23) == "count_data -c")
assert(pegasus.copy_data_has_multi_set(v24) and not pegasus.copy_data_has_multi_set(v23))
assert(pegasus.add_dup_command(v26, "t", "B", {checkpoint = true, remote_app = "u"}) == "add_dup t B -s -a u")
assert(pegasus.add_dup_command(v25, "t", "B", {checkpoint = true, remote_app = "t"}) == "add_dup t B -s")
local ok, err = pcall(pegasus.add_dup_command, v25, "t", "B", {remote_app = "u"})
assert(not ok and err.message:find("2.6"))
ok, err = pcall(pegasus.add_dup_command, v23, "t", "B", {checkpoint = true})
assert(not ok and err.message:find("2.4"))

-- Colours and the banner.
assert(pegasus.strip_ansi("\27[1mBACKUPID\27[0m \27[32mok\27[0m") == "BACKUPID ok")
local b = pegasus.banner("Pegasus Shell 2.5.0\nType \"help\" for more information.\nThe config file is: config.ini\n" ..
  "The cluster name is: onebox\nThe cluster meta list is: 127.0.0.1:34601,127.0.0.1:34602\n")
assert(b.version.minor == 5 and b.cluster == "onebox" and b.metas == "127.0.0.1:34601,127.0.0.1:34602" and b.config == "config.ini")

-- Failures the shell prints while exiting 0.
local f = pegasus.failures("OK\nInvalid argument(s)\nERROR: invalid subcommand 'x'\n\27[31mstart bulk load failed, error=ERR_BUSY\27[0m\nfine\n")
assert(#f == 3 and f[3] == "start bulk load failed, error=ERR_BUSY", table.concat(f, "|"))

-- Arguments for the shell's splitter and for sh.
assert(pegasus.arg("abc") == "abc" and pegasus.arg("a b") == '"a b"' and pegasus.arg('q"x') == '"q\\"x"')
assert(pegasus.sh_quote("it's") == "'it'\\''s'")
assert(pegasus.fill("rm -r {path}", {path = "/a b"}, "x") == "rm -r '/a b'")
ok, err = pcall(pegasus.fill, "{nope}", {}, "remove_command")
assert(not ok and err.message:find("nope"))

-- Where the shell reads config.ini.
assert(pegasus.shell_config_path("./run.sh shell --config /etc/p.ini") == "/etc/p.ini")
assert(pegasus.shell_config_path("/opt/pegasus/run.sh shell -n c") == "/opt/pegasus/src/shell/config.ini")
assert(pegasus.shell_config_path("/opt/bin/pegasus_shell my.ini ClusterA", "/w") == "/w/my.ini")
assert(pegasus.shell_config_path("pegasus_shell") == "config.ini")

-- The shell for the other cluster, and where the clusters are.
assert(pegasus.shell_for("/opt/pegasus_shell config.ini ClusterA", "ClusterA", "ClusterB") == "/opt/pegasus_shell config.ini ClusterB")
assert(pegasus.shell_for("./run.sh shell --cluster 10.0.0.1:34601", "ClusterA", "ClusterB") == nil)
assert(pegasus.shell_for("pegasus_shell c.ini A", "A", "A") == "pegasus_shell c.ini A")

-- copy_data progress and result [§2.5].
local pr = pegasus.parse_copy_progress("INFO: processed for 12 seconds, (3/8) splits, total 1200000 rows, last second 101000 rows")
assert(pr.seconds == 12 and pr.done_splits == 3 and pr.splits == 8 and pr.rows == 1200000 and pr.last == 101000 and not pr.error)
local copy = pegasus.parse_copy(table.concat({
  "INFO: open source app scanner succeed, partition_count = 8",
  "INFO: processed for 2 seconds, (0/8) splits, total 30 rows, last second 10 rows, error occurred, terminating...",
  "ERROR: split[3] async set failed: ERR_TIMEOUT", "ERROR: error occurred, processing terminated",
  "INFO: split[3]: 30 rows", "", "Copy terminated, total 30 rows."}, "\n"))
assert(copy.done == false and copy.rows == 30 and copy.partition_count == 8 and #copy.errors == 2 and copy.last.error)
assert(copy.split_rows[3] == 30)
assert(pegasus.explain_copy_error(copy.errors[1]):find("write stall"))
assert(pegasus.parse_copy("\nCopy done, total 5 rows.\n").done == true)
assert(pegasus.parse_count("INFO: ...\n\nCount done, total 42 rows.\n") == 42)

-- admin-cli backup and its status table (bold headers) [§3.2].
assert(pegasus.parse_backup_id("[hint]: Backup succeed: ...\nBackupID: 1742888751127\n") == "1742888751127")
local tbl = "+----+\n| \27[1mBACKUPID\27[0m | \27[1mAPPNAME\27[0m | \27[1mSTATUS\27[0m |\n+----+\n" ..
  "| 1742888751127 | temp | in progress |\n| 1742888751999 | temp | completed |\n+----+\n"
assert(pegasus.backup_status(tbl, "1742888751127") == "in progress")
assert(pegasus.backup_status(tbl, 1742888751999) == "completed")
assert(pegasus.backup_status(tbl, "1") == nil)

-- Bulk load status [§4.1].
local bl = pegasus.parse_bulk_load("[summary]\nis_bulk_loading : YES\napp_bulk_load_status : BLS_DOWNLOADING\n" ..
  "app_total_download_progress : 40\n")
assert(bl.loading and bl.status == "DOWNLOADING" and bl.download == 40)
bl = pegasus.parse_bulk_load("[summary]\nis_bulk_loading : NO\napp_bulk_load_status : FAILED\nbulk_load_err : ERR_CORRUPTION")
assert(not bl.loading and bl.status == "FAILED" and bl.err == "ERR_CORRUPTION")

-- Duplication [§5.2]: both add_dup answers, query_dup -d's JSON line, the lag.
assert(pegasus.parse_add_dup("adding duplication succeed [app: t, remote: B, appid: 2, dupid: 1669]").dupid == "1669")
assert(pegasus.parse_add_dup("\27[32madding duplication succeed [app_name: t, remote_cluster_name: B, appid: 2, dupid: 77, " ..
  "checkpoint: true]\27[0m").dupid == "77")
assert(pegasus.parse_add_dup("adding duplication failed: ERR_DUP_EXIST").exists)
-- duplication_common.cpp duplication_query_response_to_string: keyed "1", "2"... (sequence), dupid inside.
local q = pegasus.parse_query_dup('duplications of app [t] in detail:\n' ..
  '{"1":{"dupid":1669,"remote":"B","status":"DS_LOG","fail_mode":"FAIL_SLOW",' ..
  '"progress":{"0":10},"partition_states":{"0":{"confirmed_decree":90,"last_committed_decree":100},' ..
  '"1":{"confirmed_decree":100,"last_committed_decree":100}}},"2":{"dupid":1700,"remote":"C","status":"DS_PAUSE"},"appid":2}\n')
assert(q.appid == 2 and q.dups["1669"].status == "DS_LOG" and pegasus.dup_lag(q.dups["1669"]) == 10)
assert(q.dups["1"] == nil and q.dups["1700"].remote == "C")
local drain = require("ferry.pegasus_dup").entry_drain(q.dups["1669"], 2)
assert(drain.lag == 10 and drain.partitions == 2 and not drain.drained)
-- No duplication: the JSON is `null`.
assert(next(pegasus.parse_query_dup("duplications of app [t] in detail:\nnull\n\n").dups) == nil)
assert(pegasus.dup_lag({status = "DS_LOG"}) == nil)

-- remote_command, 2.5 text on stderr and 2.6 JSON [§7.3].
local rc = pegasus.parse_remote_command("COMMAND: nfs.max_send_rate_megabytes 50\n" ..
  "CALL [replica-server] [10.0.0.1:34801] succeed: OK\nCALL [replica-server] [10.0.0.2:34801] succeed: ERR: invalid arguments\n" ..
  "\nSucceed count: 2\nFailed count: 0\n")
assert(rc.nodes["10.0.0.1:34801"].ok and not rc.nodes["10.0.0.2:34801"].ok)
rc = pegasus.parse_remote_command('{\n "command": "nfs.max_send_rate_megabytes_per_disk 50",\n "details": {\n' ..
  '  "10.0.0.1:34801": {"role": "replica-server", "acked": true, "message": {"error": "ok"}},\n' ..
  '  "10.0.0.2:34801": {"role": "replica-server", "acked": false, "message": "timeout"}\n },\n' ..
  ' "succeed_count": 1,\n "failed_count": 1\n}')
assert(rc.nodes["10.0.0.1:34801"].ok and not rc.nodes["10.0.0.2:34801"].ok)

-- The shell's config.ini, leniently.
local dir = ferry.state.dir()
ferry.fs.write(dir .. "/config.ini", "[apps.mimic]\ntype = dsn.app.mimic ; comment\n[pegasus.clusters]\n" ..
  "  onebox = 127.0.0.1:34601,127.0.0.1:34602\n# x\n[threadpool.THREAD_POOL_DEFAULT]\nworker_count = 20\n")
local c = pegasus.read_config(dir .. "/config.ini")
assert(c["pegasus.clusters"].onebox == "127.0.0.1:34601,127.0.0.1:34602")
assert(c["threadpool.THREAD_POOL_DEFAULT"].worker_count == "20" and c["apps.mimic"].type == "dsn.app.mimic")
assert(pegasus.metric_name(v25, pegasus.METRICS.upload_max_bytes) == "cold.backup.max.upload.file.size")
assert(pegasus.metric_name(v26, pegasus.METRICS.upload_max_bytes) == "backup_file_upload_max_bytes")

print("pegasus ok")
