-- druid-deep-storage: the migration's working parts (where the local deep storage is, the
-- metadata store, the segments' rows, the plan, the copy manifest, the import files). Installed
-- into ferry.druid (M) by require("ferry.druid_meta")(M); the layout and loadSpec rules of Druid
-- itself stay in ferry/druid.lua.

return function(M)
  local json = ferry.json

  ---------------------------------------------------------------------------------------------------
  -- The migration's working parts (scripts/druid-deep-storage.lua): where the local deep storage
  -- is, the metadata store, the segments' rows, the plan, the copy manifest, the import files.
  ---------------------------------------------------------------------------------------------------

  --- The local deep storage directory: storage_dir, else druid.storage.storageDirectory of conf
  --- (relative to druid_home, else the folder holding conf/), without trailing slashes; nil if neither.
  function M.local_storage_dir(conf, storage_dir, druid_home)
    if not storage_dir and conf then
      if conf.storage_type ~= "local" then
        ferry.log.warn(("%s: druid.storage.type=%s; ferry migrates segments whose loadSpec is local"):format(conf.path, conf.storage_type))
      end
      storage_dir = conf.storage_dir
      if storage_dir:sub(1, 1) ~= "/" then
        storage_dir = (druid_home or M.druid_home(conf.path)) .. "/" .. storage_dir
      end
    end
    return storage_dir and (storage_dir:gsub("/+$", ""))
  end

  --- A segment file's path on this machine: under local_root when storage_dir is mounted there.
  function M.source_path(path, storage_dir, local_root)
    if local_root and storage_dir and path:sub(1, #storage_dir + 1) == storage_dir .. "/" then
      return local_root .. path:sub(#storage_dir + 1)
    end
    return path
  end

  --- The metadata store's SQL URL and connect options from -p metadata_url / metadata_ca or conf's
  --- connectURI, user and password (TLS and schema settings honoured or refused): url (nil when
  --- there is none, with the reason), the problem, the connect options and the PostgreSQL schema.
  function M.metadata_store(conf, metadata_url, metadata_ca)
    local metadata_problem
    local connect_opts = {ca = metadata_ca}
    local pg_schema = conf and conf.pg_schema or "public"
    if not metadata_url and conf then
      if conf.metadata_type == "derby" then
        metadata_problem = conf.path .. " uses Derby (druid.metadata.storage.type=derby); run export-metadata and use " ..
          "-p mode=csv -p export_dir=DIR"
      else
        -- TLS and schema settings of the JDBC URL and druid.metadata.*.ssl.*: honoured, or refused
        -- (as are URLs naming several servers).
        local j = conf.connect_uri and M.jdbc_options(conf.connect_uri,
          conf.metadata_type == "postgresql" and conf.postgres_ssl or conf.mysql_ssl, metadata_ca) or {}
        metadata_url, metadata_problem = M.sql_url(conf.connect_uri, conf.user, conf.password)
        if metadata_url then
          connect_opts = {tls = j.tls, ca = j.ca}
          if j.schema then pg_schema = j.schema end
          if j.ignored and #j.ignored > 0 then
            ferry.log.info("connection properties without effect on ferry: " .. table.concat(j.ignored, ", "))
          end
        end
      end
    end
    return metadata_url, metadata_problem, connect_opts, pg_schema
  end

  --- A table name quoted for the metadata store's SQL: backquotes on MySQL, else double quotes.
  function M.quote_name(db, name)
    if db and db.backend == "mysql" then return "`" .. name .. "`" end
    return '"' .. name .. '"'
  end

  --- A table name in the metadata store's SQL: schema-qualified on PostgreSQL outside public, bare on PostgreSQL.
  function M.qualified_name(db, pg_schema, name)
    if db and db.backend == "postgres" and pg_schema ~= "public" then
      return M.quote_name(db, pg_schema) .. "." .. M.quote_name(db, name)
    end
    return db and db.backend == "postgres" and name or M.quote_name(db, name)
  end

  --- Every row of the segments table (table_sql: its name in SQL) as {cells, id, payload} by id, and the canonical columns.
  function M.read_db_rows(db, table_sql)
    local rows, columns = db:query("SELECT * FROM " .. table_sql .. " ORDER BY id")
    local out = {}
    for i, r in ipairs(rows) do
      local cells = {}
      for _, c in ipairs(columns) do cells[c] = r[c] end
      out[i] = {cells = cells, id = r.id, payload = r.payload}
    end
    return out, M.canonical_columns(columns)
  end

  --- Whether a CSV payload field is export-metadata -x hex (of a JSON object: 7B is "{").
  function M.is_hex_payload(v)
    return #v % 2 == 0 and v:match("^%x+$") and v:sub(1, 2):upper() == "7B"
  end

  --- The rows of export-metadata's <segments_table>.csv in dir (header, csv_columns, or the first
  --- columns of M.COLUMNS), as {cells, id, payload}, and their columns.
  function M.read_csv_rows(dir, segments_table, csv_columns)
    local path = dir .. "/" .. segments_table .. ".csv"
    if not ferry.fs.exists(path) then
      ferry.fail("not_found", "no " .. segments_table .. ".csv in " .. dir,
        {hint = "run export-metadata with -o " .. dir .. " (with -x for hex payloads, which keep backslashes)"})
    end
    local records = ferry.csv.decode(ferry.fs.read(path), {header = false})
    local columns
    if records[1] and records[1][1] == "id" and records[1][2] == "dataSource" then
      columns = table.remove(records, 1)
    elseif csv_columns then
      columns = csv_columns
    elseif records[1] and #records[1] <= 10 then
      columns = {table.unpack(M.COLUMNS, 1, #records[1])}
    elseif records[1] then
      ferry.fail("usage", ("%s has %d columns and no header; name them with -p csv_columns=id,dataSource,..."):format(
        path, #records[1]))
    end
    local out = {}
    for i, rec in ipairs(records) do
      if #rec ~= #columns then
        ferry.fail("invalid_input", ("%s line %d has %d fields, expected %d (%s)"):format(
          path, i, #rec, #columns, table.concat(columns, ",")))
      end
      local cells = {}
      for j, c in ipairs(columns) do
        local v = rec[j]
        if v == "" and j > 9 then v = nil end -- NULL is an empty unquoted field
        if c == "payload" and v and M.is_hex_payload(v) then v = ferry.hex.decode(v) end
        cells[c] = v
      end
      out[i] = {cells = cells, id = cells.id, payload = cells.payload}
    end
    return out, columns
  end

  --- The plan: which rows are local, grouped by the file each points at, and the target key and
  --- loadSpec of each file. o: wanted (data source -> true, nil for all), s3_schema, source_path (function).
  function M.make_plan(rows, target, o)
    local plan = {groups = {}, order = {}, local_rows = 0, tombstones = 0, elsewhere = 0, filtered = 0,
                  already = 0, already_rows = {}, by_type = {}}
    for _, row in ipairs(rows) do
      local seg = M.segment(row.payload, row.id)
      local spec = seg.load_spec
      if o.wanted and not o.wanted[seg.dataSource] then
        plan.filtered = plan.filtered + 1
      elseif spec.type == "tombstone" then
        plan.tombstones = plan.tombstones + 1
      elseif spec.type ~= "local" then
        plan.elsewhere = plan.elsewhere + 1
        plan.by_type[tostring(spec.type)] = (plan.by_type[tostring(spec.type)] or 0) + 1
        local key = M.in_target(target, spec)
        if key then
          plan.already = plan.already + 1
          plan.already_rows[#plan.already_rows + 1] = {id = row.id, key = key, used = row.cells.used, ds = seg.dataSource}
        end
      elseif type(spec.path) ~= "string" then
        ferry.fail("invalid_input", ("segment %s: local loadSpec without a path"):format(row.id))
      elseif target.kind == "local" and M.in_target(target, spec) then
        plan.already = plan.already + 1
        plan.elsewhere = plan.elsewhere + 1
        plan.already_rows[#plan.already_rows + 1] = {id = row.id, key = M.in_target(target, spec),
                                                     used = row.cells.used, ds = seg.dataSource}
      else
        plan.local_rows = plan.local_rows + 1
        local g = plan.groups[spec.path]
        if not g then
          g = {path = spec.path, rows = {}}
          plan.groups[spec.path] = g
          plan.order[#plan.order + 1] = spec.path
        end
        row.seg = seg
        g.rows[#g.rows + 1] = row
      end
    end
    -- Segments that share one file (upgraded_from_segment_id) keep sharing it: the file goes where
    -- Druid would have written it for the segment that owns it, and every row points there.
    for _, path in ipairs(plan.order) do
      local g = plan.groups[path]
      local uuid = M.unique_id(path)
      local owner
      for _, row in ipairs(g.rows) do
        if path:find("/" .. M.default_dir(row.seg, uuid) .. "/index", 1, true) then owner = row; break end
      end
      if not owner then
        for _, row in ipairs(g.rows) do
          local up = row.cells.upgraded_from_segment_id
          if up == nil or up == ferry.sql.null or up == "" then owner = row; break end
        end
      end
      owner = owner or g.rows[1]
      g.key = M.target_key(target, owner.seg, uuid)
      g.spec = M.load_spec(target, g.key, {s3_schema = o.s3_schema})
      g.is_dir = path:sub(-1) == "/" or not path:match("%.zip$")
      g.src = o.source_path(path)
    end
    -- Two source files mapped to one target key would overwrite each other and never verify: a
    -- shard spec whose partition ferry misread, or a layout Druid did not write. Stop before any
    -- copy (and in a dry run), naming both.
    local by_key, clashes = {}, {}
    for _, path in ipairs(plan.order) do
      local g = plan.groups[path]
      local other = by_key[g.key]
      if other then
        clashes[#clashes + 1] = ("%s: %s (segment %s) and %s (segment %s)"):format(
          g.key, other.path, other.rows[1].id, path, g.rows[1].id)
      else
        by_key[g.key] = g
      end
    end
    if #clashes > 0 then
      ferry.fail("invalid_input", ("%d target key(s) would receive two different segment files; nothing was " ..
        "copied:\n  %s"):format(#clashes, table.concat(clashes, "\n  ", 1, math.min(#clashes, 20))),
        {hint = "check the shardSpec of these segments (partitionNum, or partitionId for numbered_overwrite)"})
    end
    return plan
  end

  --- The copy manifest, key -> {key, size, src} of every object copied and verified: copied.jsonl
  --- of this state dir, or of every shard's in a sharded run (docs/scale-out.md).
  function M.read_manifest()
    local m = {}
    for _, dir in ipairs(ferry.shard.state_dirs()) do
      local path = dir .. "/copied.jsonl"
      if ferry.fs.exists(path) then
        for line in ferry.fs.read(path):gmatch("[^\n]+") do
          local ok, e = pcall(json.decode, line)
          if ok and type(e) == "table" and e.key then m[e.key] = e end
        end
      end
    end
    return m
  end

  --- Opens the target store with s3_opts (druid.s3_options); a failure names the target (param, as
  --- given) and says what to check and that nothing was copied or changed.
  function M.open_target(target, s3_opts, param)
    local o = {create = target.kind == "local"}
    for k, v in pairs(s3_opts) do o[k] = v end
    local ok, store = pcall(ferry.store.open, target.url, o)
    if ok then return store end
    local err = store
    if type(err) ~= "userdata" or not err.kind then error(err, 0) end
    ferry.fail(err.kind, ("%s; nothing was copied and the metadata was not changed"):format(err.message),
      {target = param, hint = M.target_hint(target, err)})
  end

  --- The rows to rewrite, each {row, new (payload), key}; every file must have been copied and
  --- verified (skip_missing: files gone from local storage are left out).
  function M.rewritten_rows(plan, skip_missing)
    local manifest = M.read_manifest()
    local out = {}
    for _, path in ipairs(plan.order) do
      local g = plan.groups[path]
      local done = manifest[g.key]
      if not (done and done.src == g.path) and not ferry.dry_run() then
        if skip_missing and not ferry.fs.stat(g.src) then goto continue end
        ferry.fail("conflict", ("segment %s: %s was not copied and verified; the metadata was not changed"):format(
          g.rows[1].id, g.key), {hint = "run again with --from-step copy-segments"})
      end
      for _, row in ipairs(g.rows) do
        out[#out + 1] = {row = row, new = M.rewrite(row.payload, g.spec), key = g.key}
      end
      ::continue::
    end
    return out
  end

  --- A cell as export-metadata writes it: nil for NULL, 1/0 for the boolean columns.
  function M.csv_value(cells, c)
    local v = cells[c]
    if v == nil or v == ferry.sql.null then return nil end
    if M.BOOLEAN[c] then return M.bool(v) and "1" or "0" end
    return v
  end

  --- Writes rows as an export-metadata (post-#19698) CSV: canonical columns, JSON payloads.
  function M.write_export_csv(path, rows_, cols)
    ferry.fs.write(path, "")
    local buf = {}
    for _, row in ipairs(rows_) do
      local fields = {}
      for i, c in ipairs(cols) do fields[i] = M.csv_value(row.cells, c) end
      buf[#buf + 1] = M.csv_line(fields, #cols)
      if #buf >= 1000 then ferry.fs.write(path, table.concat(buf), {append = true}); buf = {} end
    end
    ferry.fs.write(path, table.concat(buf), {append = true})
  end

  --- A SQL string literal (quotes doubled).
  function M.sql_string(s) return "'" .. s:gsub("'", "''") .. "'" end

  M.NULLABLE_FROM = 10 -- columns after payload may be NULL

  --- The columns of the table the csv-mode rows are imported into: o.target_columns, else o.import_url's
  --- table, else unknown (nil). Lower-case name -> true; asked once per o.
  function M.target_column_set(o)
    if o.column_set ~= nil then return o.column_set or nil end
    local list
    if o.target_columns then
      list = o.target_columns
    elseif o.import_url then
      local dst = ferry.sql.connect(o.import_url)
      local qn = dst.backend == "mysql" and ("`" .. o.segments_table .. "`") or ('"' .. o.segments_table .. '"')
      local _, cols = dst:query("SELECT * FROM " .. qn .. " WHERE 1 = 0")
      list = cols
    end
    if not list then o.column_set = false; return nil end
    local set = {}
    for _, c in ipairs(list) do set[c:lower()] = true end
    o.column_set = set
    return set
  end

  --- The columns of the rewritten CSV and the import SQL: the source's, used_status_last_updated
  --- added when the source lacks it (NOT NULL on tables Druid 28+ created) unless the target table
  --- is known to predate it; a source column the target lacks is an error (data would be lost).
  --- o: as for M.target_column_set.
  function M.import_columns(columns, o)
    local cols = {}
    for i, c in ipairs(columns) do cols[i] = c end
    local has = {}
    for _, c in ipairs(cols) do has[c:lower()] = true end
    local target_set = M.target_column_set(o)
    if not has.used_status_last_updated and (not target_set or target_set.used_status_last_updated) then
      table.insert(cols, 10, "used_status_last_updated")
    end
    if not target_set then return cols end
    local out, dropped = {}, {}
    for _, c in ipairs(cols) do
      if target_set[c:lower()] then out[#out + 1] = c else dropped[#dropped + 1] = c end
    end
    for _, c in ipairs(dropped) do
      if c:lower() ~= "used_status_last_updated" then
        ferry.fail("conflict", ("the target %s has no column %s, which the exported rows carry"):format(
          o.segments_table, c), {hint = "run Druid's metadata-init for the same Druid version first, or fix target_columns"})
      end
    end
    return out
  end

  --- A row's cells for the import files: the new payload, used_status_last_updated filled with migration_time when empty.
  function M.out_cells(row, new_payload, migration_time)
    local cells = {}
    for k, v in pairs(row.cells) do cells[k] = v end
    if new_payload then cells.payload = new_payload end
    local u = cells.used_status_last_updated
    if u == nil or u == ferry.sql.null or u == "" then cells.used_status_last_updated = migration_time end
    return cells
  end

  --- csv mode: writes <segments_table>.csv and -derby.csv (hex payloads) and import-mysql.sql,
  --- import-postgresql.sql and import-derby.sql into o.out_dir; returns the CSV's path.
  --- o: out_dir, segments_table, pg_schema.
  function M.write_import_files(all, cols, o)
    local out_dir, segments_table = o.out_dir, o.segments_table
    ferry.fs.mkdir(out_dir)
    local csv_path = out_dir .. "/" .. segments_table .. ".csv"
    local derby_path = out_dir .. "/" .. segments_table .. "-derby.csv"
    local plain, derby = {}, {}
    for _, cells in ipairs(all) do
      local a, b = {}, {}
      for i, c in ipairs(cols) do
        local v = cells[c]
        if v == ferry.sql.null then v = nil end
        if c == "payload" then v = ferry.hex.encode(v, {upper = true}) end
        if M.BOOLEAN[c] then
          a[i] = M.bool(v) and "1" or "0"
          b[i] = M.bool(v) and "true" or "false"
        else
          a[i], b[i] = v, v
        end
      end
      plain[#plain + 1] = M.csv_line(a, #cols)
      derby[#derby + 1] = M.csv_line(b, #cols)
    end
    ferry.fs.write(csv_path, table.concat(plain))
    ferry.fs.write(derby_path, table.concat(derby))

    -- MySQL / MariaDB: LOAD DATA with ESCAPED BY '' (backslashes are data), hex payloads, NULLIF for
    -- the nullable columns (an unassigned user variable would be dropped).
    local list, sets = {}, {"payload = UNHEX(@payload)"}
    for i, c in ipairs(cols) do
      if c == "payload" then list[i] = "@payload"
      elseif i >= M.NULLABLE_FROM then
        list[i] = "@" .. c
        sets[#sets + 1] = ("`%s` = NULLIF(@%s, '')"):format(c, c)
      else list[i] = "`" .. c .. "`" end
    end
    local mysql = ("-- Import the rewritten %s into MySQL/MariaDB: mysql --local-infile=1 DB < this file\n" ..
      "-- The table must be empty of these segment ids (a fresh metadata store, or after DELETE FROM %s).\n" ..
      "LOAD DATA LOCAL INFILE %s INTO TABLE `%s` CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' " ..
      "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' (%s) SET %s;\nSHOW WARNINGS;\n"):format(
      segments_table, segments_table, M.sql_string(csv_path), segments_table, table.concat(list, ","), table.concat(sets, ", "))
    ferry.fs.write(out_dir .. "/import-mysql.sql", mysql)

    -- PostgreSQL: psql's \copy into a text staging table, then decode the hex payload (COPY into
    -- BYTEA would interpret backslashes).
    local staging, select = {}, {}
    for i, c in ipairs(cols) do
      local lc = c:lower()
      staging[i] = ('"%s" text'):format(lc)
      if c == "payload" then select[i] = "decode(payload, 'hex')"
      elseif M.BOOLEAN[c] then select[i] = ('"%s"::boolean'):format(lc)
      elseif lc == "num_rows" then select[i] = '"num_rows"::bigint'
      else select[i] = ('"%s"'):format(lc) end
    end
    local names = {}
    for i, c in ipairs(cols) do names[i] = '"' .. c:lower() .. '"' end
    local pg_table = o.pg_schema ~= "public" and (o.pg_schema .. "." .. segments_table) or segments_table
    local pg = ("-- Import the rewritten %s into PostgreSQL: psql -v ON_ERROR_STOP=1 -d DB -f this file\n" ..
      "BEGIN;\nCREATE TEMP TABLE ferry_segments_import (%s) ON COMMIT DROP;\n" ..
      "\\copy ferry_segments_import FROM %s WITH (FORMAT csv)\n" ..
      "INSERT INTO %s (%s) SELECT %s FROM ferry_segments_import;\nCOMMIT;\n"):format(
      segments_table, table.concat(staging, ", "), M.sql_string(csv_path), pg_table,
      table.concat(names, ", "), table.concat(select, ", "))
    ferry.fs.write(out_dir .. "/import-postgresql.sql", pg)

    -- Derby: SYSCS_IMPORT_DATA with upper-case names except the quoted lower-case "end"; BLOBs as hex.
    local dcols = {}
    for i, c in ipairs(cols) do dcols[i] = c == "end" and "end" or c:upper() end
    local derby_sql = ("-- Import into Derby (Coordinator stopped; ij or the Derby network client):\n" ..
      "CALL SYSCS_UTIL.SYSCS_IMPORT_DATA (null, '%s', '%s', null, %s, ',', '\"', 'UTF-8', 0);\n"):format(
      segments_table:upper(), table.concat(dcols, ","), M.sql_string(derby_path))
    ferry.fs.write(out_dir .. "/import-derby.sql", derby_sql)
    return csv_path
  end
end
