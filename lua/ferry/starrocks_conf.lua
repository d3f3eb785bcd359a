-- starrocks-sync: the official tool's configuration as code: every conf/sync.properties key with its
-- default and what ferry does with it [§1.4], conf/hosts.properties address mapping, and the
-- password decryption. Installed into ferry.starrocks (M) by require("ferry.starrocks_conf")(M).
-- Sections in brackets cite ../shared/reference/starrocks.md.
return function(M)
  -- Every key of the official conf/sync.properties with its default [§1.4] and what ferry does.
  -- support: "yes" (ferry honours it), "no" (named in a warning when set to anything but the
  -- default), "n/a" (about the replication RPC path ferry does not use; warned the same way).
  M.KEYS = {
    {"one_time_run_mode", "boolean", false, "yes"},
    {"source_fe_host", "string", nil, "yes"},
    {"source_fe_query_port", "integer", 9030, "yes"},
    {"source_cluster_user", "string", "root", "yes"},
    {"source_cluster_password", "string", "", "yes", secret = true},
    {"source_cluster_password_secret_key", "string", "", "yes", secret = true},
    {"source_cluster_token", "string", "", "n/a"},
    {"target_fe_host", "string", nil, "yes"},
    {"target_fe_query_port", "integer", 9030, "yes"},
    {"target_cluster_user", "string", "root", "yes"},
    {"target_cluster_password", "string", "", "yes", secret = true},
    {"target_cluster_password_secret_key", "string", "", "yes", secret = true},
    -- ferry's own (the official tool has none; its JDBC URL takes no SSL settings): TLS to the FE
    -- query port, as ferry.sql.connect's ssl-mode (disable, prefer, require, verify-ca,
    -- verify-full) and ssl-ca (a PEM CA file). Empty: plain, as the MySQL client default.
    {"source_cluster_ssl_mode", "string", "", "yes"},
    {"source_cluster_ssl_ca", "string", "", "yes"},
    {"target_cluster_ssl_mode", "string", "", "yes"},
    {"target_cluster_ssl_ca", "string", "", "yes"},
    {"jdbc_connect_timeout_ms", "integer", 30000, "yes"},
    {"jdbc_socket_timeout_ms", "integer", 60000, "yes"},
    {"include_data_list", "list", {}, "yes"},
    {"exclude_data_list", "list", {}, "yes"},
    {"target_cluster_storage_volume", "string", "", "yes"},
    {"target_cluster_use_builtin_storage_volume_only", "boolean", false, "yes"},
    {"target_cluster_replication_num", "integer", -1, "yes"},
    {"target_cluster_max_disk_used_percent", "integer", 80, "yes"},
    {"target_cluster_enable_persistent_index", "string", "", "yes"},
    {"max_replication_data_size_per_job_in_gb", "integer", 1024, "yes"},
    {"meta_job_interval_seconds", "integer", 180, "yes"},
    {"meta_job_threads", "integer", 4, "yes"},
    {"ddl_job_interval_seconds", "integer", 10, "yes"},
    {"ddl_job_batch_size", "integer", 10, "yes"},
    {"ddl_job_allow_drop_target_only", "boolean", false, "yes"},
    {"ddl_job_allow_drop_schema_change_table", "boolean", true, "yes"},
    {"ddl_job_allow_drop_inconsistent_partition", "boolean", true, "yes"},
    {"ddl_job_allow_drop_inconsistent_time_partition", "boolean", true, "yes"},
    {"ddl_job_allow_drop_partition_target_only", "boolean", true, "yes"},
    {"enable_bitmap_index_sync", "boolean", false, "yes"},
    {"ddl_job_allow_drop_inconsistent_bitmap_index", "boolean", true, "no"},
    {"ddl_job_allow_drop_bitmap_index_target_only", "boolean", true, "no"},
    {"enable_materialized_view_sync", "boolean", false, "yes"},
    {"ddl_job_allow_drop_inconsistent_materialized_view", "boolean", true, "yes"},
    {"ddl_job_allow_drop_materialized_view_target_only", "boolean", false, "yes"},
    {"enable_view_sync", "boolean", false, "yes"},
    {"ddl_job_allow_drop_inconsistent_view", "boolean", true, "yes"},
    {"ddl_job_allow_drop_view_target_only", "boolean", false, "yes"},
    {"replication_job_interval_seconds", "integer", 10, "yes"},
    {"replication_job_batch_size", "integer", 10, "yes"},
    {"report_interval_seconds", "integer", 300, "yes"},
    {"enable_table_property_sync", "boolean", false, "yes"},
  }

  M.WHY_NOT = {
    source_cluster_token = "ferry copies through SQL and Stream Load; the token is for BE-to-BE snapshot downloads",
    ddl_job_allow_drop_inconsistent_bitmap_index = "bitmap index changes are schema changes " ..
      "(ddl_job_allow_drop_schema_change_table)",
    ddl_job_allow_drop_bitmap_index_target_only = "bitmap index changes are schema changes " ..
      "(ddl_job_allow_drop_schema_change_table)",
  }

  local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

  local function split_list(s)
    local out = {}
    for item in tostring(s):gmatch("[^,]+") do
      item = trim(item)
      if item ~= "" then out[#out + 1] = item end
    end
    return out
  end
  M.split_list = split_list

  local function same(a, b)
    if type(a) == "table" and type(b) == "table" then
      if #a ~= #b then return false end
      for i = 1, #a do if a[i] ~= b[i] then return false end end
      return true
    end
    return a == b
  end

  local function convert(name, ty, raw, where)
    if ty == "boolean" then
      local v = raw:lower()
      if v == "true" then return true elseif v == "false" then return false end
      ferry.fail("usage", ("%s: %s=%s is not true or false"):format(where, name, raw))
    elseif ty == "integer" then
      local n = math.tointeger(tonumber(raw))
      if not n then ferry.fail("usage", ("%s: %s=%s is not an integer"):format(where, name, raw)) end
      return n
    elseif ty == "list" then
      return split_list(raw)
    end
    return raw
  end

  --- Reads <conf_dir>/sync.properties (or <conf_dir>/conf/sync.properties), applies the -p
  --- overrides (`given`: name -> value, nil when not given) over the file over the manual's
  --- defaults, and warns about unknown keys and about unsupported keys that are set.
  --- Returns cfg (name -> value), the path read, and the list of warnings.
  function M.read_conf(conf_dir, given)
    local path
    for _, rel in ipairs({"sync.properties", "conf/sync.properties"}) do
      if ferry.fs.exists(conf_dir .. "/" .. rel) then path = conf_dir .. "/" .. rel; break end
    end
    if not path then
      ferry.fail("not_found", "no sync.properties in " .. conf_dir,
        {hint = "point conf_dir at the starrocks-cluster-sync/conf folder (the one holding sync.properties)"})
    end
    local file, lines = ferry.properties.decode(ferry.fs.read(path), {path = path})
    local cfg, warnings, known = {}, {}, {}
    for _, k in ipairs(M.KEYS) do
      local name, ty, default, support = k[1], k[2], k[3], k[4]
      known[name] = true
      local v = default
      local raw = file[name]
      if raw ~= nil and trim(raw) ~= "" then
        v = convert(name, ty, trim(raw), ("%s:%d"):format(path, lines[name]))
      elseif raw ~= nil and ty == "string" then
        v = ""
      end
      if given[name] ~= nil then v = given[name] end
      cfg[name] = v
      if support ~= "yes" and v ~= nil and not same(v, default) then
        warnings[#warnings + 1] = ("%s=%s is not supported by ferry and is ignored: %s"):format(
          name, k.secret and "***" or tostring(type(v) == "table" and table.concat(v, ",") or v), M.WHY_NOT[name])
      end
    end
    local unknown = {}
    for name in pairs(file) do
      if not known[name] then unknown[#unknown + 1] = name end
    end
    table.sort(unknown)
    for _, name in ipairs(unknown) do
      warnings[#warnings + 1] = ("%s:%d: unknown key %s (not a starrocks-cluster-sync setting ferry knows; ignored)")
        :format(path, lines[name], name)
    end
    return cfg, path, warnings
  end

  --- Reads hosts.properties next to sync.properties: {SOURCE = {host = {host=, ports={[from]=to}}}, TARGET = ...}.
  --- Lines: <SOURCE/TARGET>_<host>=<mappedHost>[;<srcPort>:<dstPort>[,...]]
  function M.read_hosts(dir)
    local map = {SOURCE = {}, TARGET = {}}
    local path = dir .. "/hosts.properties"
    if not ferry.fs.exists(path) then return map, nil end
    for line in ferry.fs.read(path):gmatch("[^\r\n]+") do
      line = trim(line)
      if line ~= "" and not line:match("^[#!]") then
        local side, host, value = line:match("^(%u+)_([^=]+)=(.*)$")
        if not side or not map[side] then
          ferry.fail("usage", path .. ": cannot read line " .. line,
            {hint = "lines are <SOURCE/TARGET>_<host>=<mappedHost>[;<srcPort>:<dstPort>[,...]]"})
        end
        local mapped, ports = value:match("^([^;]*);?(.*)$")
        local entry = {host = trim(mapped), ports = {}}
        for a, b in ports:gmatch("(%d+)%s*:%s*(%d+)") do entry.ports[tonumber(a)] = tonumber(b) end
        map[side][trim(host)] = entry
      end
    end
    return map, path
  end

  --- Maps host:port of one side through hosts.properties.
  function M.map_address(hosts, side, host, port)
    local e = hosts[side] and hosts[side][host]
    if not e then return host, port end
    return (e.host ~= "" and e.host or host), (e.ports[port] or port)
  end

  ---------------------------------------------------------------------------------------------------
  -- *_cluster_password_secret_key: the password is TO_BASE64(AES_ENCRYPT(pwd, key)) [manual, Step 2]
  -- AES_ENCRYPT in StarRocks (as in MySQL and MariaDB) is AES-128-ECB with PKCS7 padding and the
  -- key folded into 16 bytes by XOR: ferry.cipher.aes_decrypt.
  ---------------------------------------------------------------------------------------------------

  --- The plain password from sync.properties' encrypted form and its secret key; nil and a reason
  --- when it does not decrypt.
  function M.decrypt_password(encrypted, secret_key)
    local ok, data = pcall(ferry.base64.decode, encrypted)
    if not ok or #data == 0 or #data % 16 ~= 0 then return nil, "not the Base64 of AES_ENCRYPT output" end
    local plain = ferry.cipher.aes_decrypt(data, secret_key)
    if not plain then return nil, "wrong secret key (bad padding)" end
    return plain
  end

  M.trim = trim
end
