-- Apache Druid's configuration as code: common.runtime.properties (password providers, the
-- metadata store's connectURI and its JDBC options, S3 settings) and the SQL URL ferry connects
-- with. Every rule here cites ../shared/reference/druid.md (sections in brackets). Installed into
-- ferry.druid (M) by require("ferry.druid_conf")(M).
return function(M)
  local json = ferry.json

  --- Percent-encodes a URL component (user names and passwords inside SQL URLs).
  local function urlencode(s)
    return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
  end

  --- A Druid password provider: a plain string, or {"type":"environment","variable":...} or
  --- {"type":"default","password":...} as druid.metadata.storage.connector.password allows.
  function M.password(value, where)
    if value == nil or value == "" then return nil end
    if value:match("^%s*{") then
      local ok, p = pcall(json.decode, value)
      if not ok or type(p) ~= "table" then
        ferry.fail("invalid_input", where .. " is neither a password nor a JSON password provider")
      end
      -- Druid's providers (DefaultPasswordProvider, EnvironmentVariablePasswordProvider) are
      -- Jackson beans: a non-string field fails there too, so say which one.
      for _, field in ipairs({"type", "variable", "password"}) do
        if p[field] == json.null then p[field] = nil end
        if p[field] ~= nil and type(p[field]) ~= "string" then
          ferry.fail("invalid_input", ("%s: the JSON password provider's \"%s\" is a %s, not a string")
            :format(where, field, type(p[field]) == "table" and "JSON object or array" or type(p[field])))
        end
      end
      if p.type == "environment" then
        if not p.variable then
          ferry.fail("invalid_input", where .. ": the environment password provider names no \"variable\"")
        end
        local v = os.getenv(p.variable)
        if not v then
          ferry.fail("invalid_input", ("%s reads the password from the environment variable %s, which is not set")
            :format(where, tostring(p.variable)), {hint = "export " .. tostring(p.variable) .. " before running ferry"})
        end
        return v
      elseif p.type == "default" or p.type == nil then
        return p.password
      end
      ferry.fail("invalid_input", ("%s uses the password provider type %q; ferry understands \"environment\" and " ..
        "\"default\" (pass metadata_url instead)"):format(where, tostring(p.type)))
    end
    return value
  end

  --- Reads common.runtime.properties: {metadata_type, connect_uri, user, password, storage_type,
  --- storage_dir, base, pg_schema, path}.
  function M.read_conf(path)
    if not ferry.fs.exists(path) then
      ferry.fail("not_found", "no Druid configuration at " .. path, {path = path})
    end
    local st = ferry.fs.stat(path)
    if st.is_dir then
      for _, rel in ipairs({"common.runtime.properties", "_common/common.runtime.properties",
                            "conf/druid/cluster/_common/common.runtime.properties",
                            "conf/druid/single-server/micro-quickstart/_common/common.runtime.properties"}) do
        if ferry.fs.exists(path .. "/" .. rel) then path = path .. "/" .. rel; break end
      end
    end
    local props = ferry.properties.decode(ferry.fs.read(path), {path = path})
    local where = path .. ": druid.metadata.storage.connector.password"
    return {
      path = path,
      metadata_type = props["druid.metadata.storage.type"] or "derby",
      connect_uri = props["druid.metadata.storage.connector.connectURI"],
      user = props["druid.metadata.storage.connector.user"],
      password = M.password(props["druid.metadata.storage.connector.password"], where),
      storage_type = props["druid.storage.type"] or "local",
      storage_dir = props["druid.storage.storageDirectory"] or "/tmp/druid/localStorage",
      base = props["druid.metadata.storage.tables.base"] or "druid",
      pg_schema = props["druid.metadata.postgres.dbTableSchema"] or "public",
      zip = props["druid.storage.zip"],
      sse_type = props["druid.storage.sse.type"],
      sse_kms_key_id = props["druid.storage.sse.kms.keyId"],
      sse_custom_key = props["druid.storage.sse.custom.base64EncodedKey"],
      disable_acl = props["druid.storage.disableAcl"],
      mysql_ssl = M.prefixed(props, "druid.metadata.mysql.ssl."),
      postgres_ssl = M.prefixed(props, "druid.metadata.postgres.ssl."),
    }
  end

  --- The properties under a prefix, the prefix taken off (nil when there are none).
  function M.prefixed(props, prefix)
    local out
    for k, v in pairs(props) do
      if k:sub(1, #prefix) == prefix then
        out = out or {}
        out[k:sub(#prefix + 1)] = v
      end
    end
    return out
  end

  local function java_bool(v, where)
    local l = tostring(v):lower()
    if l == "true" then return true elseif l == "false" then return false end
    ferry.fail("usage", ("%s=%s is not true or false"):format(where, tostring(v)))
  end

  -- JDBC properties that change nothing ferry does (timeouts, character sets, pool hints): they
  -- are named in the log, not applied.
  local HARMLESS = {
    mysql = {characterencoding = true, useunicode = true, connecttimeout = true, sockettimeout = true,
             servertimezone = true, autoreconnect = true, allowpublickeyretrieval = true,
             rewritebatchedstatements = true, zerodatetimebehavior = true, connectioncollation = true},
    postgresql = {applicationname = true, connecttimeout = true, sockettimeout = true, logintimeout = true,
                  tcpkeepalive = true, preparethreshold = true, reWriteBatchedInserts = true,
                  rewritebatchedinserts = true},
  }

  --- How to reach the metadata store the way Druid's connector would, from the connectURI's query
  --- and druid.metadata.{mysql,postgres}.ssl.*: {tls, ca, schema, ignored}. Raises a usage error
  --- for what ferry cannot honour (never drops a TLS or schema setting silently).
  --- MySQL: MySQLConnector + MySQLConnectorSslConfig (useSSL, verifyServerCertificate,
  --- trust/client keystores, cipher suites, TLS protocols; apache/druid extensions-core/
  --- mysql-metadata-storage), Connector/J's useSSL/requireSSL/sslMode. PostgreSQL:
  --- PostgreSQLConnector + PostgreSQLConnectorConfig (useSSL, sslMode, sslRootCert, sslCert,
  --- sslKey, sslPassword, sslFactory, ...; extensions-core/postgresql-metadata-storage), pgJDBC's
  --- ssl/sslmode/sslrootcert/currentSchema. ferry's MySQL TLS always verifies the certificate
  --- (stricter than useSSL=true with verifyServerCertificate=false); ca names a PEM file.
  function M.jdbc_options(connect_uri, conf_ssl, ca)
    local where = "druid.metadata.storage.connector.connectURI"
    if connect_uri:match("^jdbc:mysql:%a+://") or connect_uri:match("^jdbc:mysql%+srv") or
       connect_uri:match("^jdbc:mariadb:%a+://") then
      ferry.fail("usage", ("%s %s: replication, load-balanced and SRV URLs name several servers; ferry writes " ..
        "to one: give the primary as -p metadata_url=mysql://user:password@primary:3306/db"):format(
        where, (connect_uri:gsub("%?.*$", ""))))
    end
    local kind, hosts, query = connect_uri:match("^jdbc:(%w+)://([^/?]*)[^?]*%??(.*)$")
    if not kind then return {} end
    if hosts:find(",", 1, true) or hosts:find("(", 1, true) then
      ferry.fail("usage", ("%s names several hosts (%s); ferry connects to one: give the primary as -p metadata_url=..."):format(
        where, hosts))
    end
    local family = kind == "postgresql" and "postgresql" or "mysql"
    local o = {ca = ca, ignored = {}}
    local params = {}
    for pair in query:gmatch("[^&;]+") do
      local k, v = pair:match("^([^=]*)=?(.*)$")
      params[#params + 1] = {k = k, v = v, where = where .. " ?" .. k}
    end
    for k, v in pairs(conf_ssl or {}) do
      params[#params + 1] = {k = k, v = v, where = ("druid.metadata.%s.ssl.%s"):format(
        family == "mysql" and "mysql" or "postgres", k), conf = true}
    end
    table.sort(params, function(a, b) return a.where < b.where end)
    local function refuse(prm, why)
      ferry.fail("usage", ("%s=%s: %s"):format(prm.where, prm.v, why),
        {hint = "give -p metadata_url=... (and -p metadata_ca=PEM for a private CA) to connect another way"})
    end
    local mode -- "disable" | "prefer" | "require" | "verify"
    local function set(m) if mode == nil or m ~= "disable" then mode = m end end
    for _, prm in ipairs(params) do
      local k, v = prm.k:lower(), prm.v
      if family == "mysql" then
        if k == "usessl" or k == "requiressl" or k == "usessl" then
          if java_bool(v, prm.where) then set("require") elseif k == "usessl" then set("disable") end
        elseif k == "verifyservercertificate" then
          java_bool(v, prm.where) -- ferry verifies in any case
        elseif k == "sslmode" then
          local m = v:upper()
          if m == "DISABLED" then set("disable")
          elseif m == "REQUIRED" or m == "VERIFY_CA" or m == "VERIFY_IDENTITY" then set("require")
          else refuse(prm, "ferry's MySQL client cannot fall back to plain text; use REQUIRED, VERIFY_CA, VERIFY_IDENTITY or DISABLED") end
        elseif k == "servsslcert" or k == "serversslcert" then
          o.ca = v
        elseif HARMLESS.mysql[k] then
          o.ignored[#o.ignored + 1] = prm.k
        elseif k:match("keystore") or k:match("cipher") or k:match("tlsprotocols") or k:match("tlsversions") then
          refuse(prm, "Java keystores, cipher and protocol lists are not supported by ferry (it takes a PEM CA file)")
        else
          refuse(prm, "ferry does not know what this connection property changes, so it will not ignore it")
        end
      else
        if k == "ssl" or k == "usessl" then
          if java_bool(v, prm.where) then set("verify") end -- pgJDBC: ssl=true means sslmode=verify-full
        elseif k == "sslmode" then
          local m = v:lower()
          if m == "disable" then set("disable")
          elseif m == "prefer" then set("prefer")
          elseif m == "require" then set("require")
          elseif m == "verify-ca" or m == "verify-full" then set("verify")
          else refuse(prm, "ferry supports disable, prefer, require, verify-ca and verify-full") end
        elseif k == "sslrootcert" then
          o.ca = v
        elseif k == "currentschema" then
          o.schema = v:match("^([^,]+)")
        elseif HARMLESS.postgresql[k] then
          o.ignored[#o.ignored + 1] = prm.k
        elseif k == "sslcert" or k == "sslkey" or k == "sslpassword" or k == "password" or k:match("^sslfactory") or
               k == "sslhostnameverifier" or k == "sslpasswordcallback" then
          refuse(prm, "client certificates, SSL factories and host name verifiers are not supported by ferry")
        else
          refuse(prm, "ferry does not know what this connection property changes, so it will not ignore it")
        end
      end
    end
    o.tls = mode
    return o
  end

  --- The S3 store options that make ferry's uploads what Druid's S3 pusher writes, from
  --- common.runtime.properties (conf may be nil): {options, shown}.
  --- Encryption follows apache/druid extensions-core/s3-extensions/.../ServerSideEncryption.java
  --- (type names noop, s3, kms, custom), S3ServerSideEncryption (SSE-S3, AES256),
  --- KmsServerSideEncryption (aws:kms, the key id when druid.storage.sse.kms.keyId is set, else the
  --- account's default key), CustomServerSideEncryption (SSE-C with
  --- druid.storage.sse.custom.base64EncodedKey on puts, gets and heads), all applied by
  --- ServerSideEncryptingAmazonS3 to putObject, createMultipartUpload and uploadPart. The ACL
  --- follows S3DataSegmentPusher / S3Utils.uploadFileIfPossible and grantFullControlToBucketOwner:
  --- unless druid.storage.disableAcl=true, Druid reads the bucket's ACL (GetBucketAcl), adds a
  --- FULL_CONTROL grant for the bucket owner and puts that ACL on the upload (the AWS SDK v1 sends
  --- it as x-amz-grant-* headers); the store option acl_from_bucket does the same, on PutObject
  --- and CreateMultipartUpload only (src/store/open/s3_acl.rs).
  function M.s3_options(conf)
    conf = conf or {}
    local where = conf.path or "common.runtime.properties"
    local o, shown = {}, {}
    local t = conf.sse_type
    if t == nil or t == "" or t == "noop" then
      -- no encryption headers
    elseif t == "s3" then
      o.server_side_encryption = "AES256"
      shown[#shown + 1] = "druid.storage.sse.type=s3"
    elseif t == "kms" then
      o.server_side_encryption = "aws:kms"
      shown[#shown + 1] = "druid.storage.sse.type=kms"
      if conf.sse_kms_key_id and conf.sse_kms_key_id ~= "" then
        o.sse_kms_key_id = conf.sse_kms_key_id
        shown[#shown + 1] = "druid.storage.sse.kms.keyId=" .. conf.sse_kms_key_id
      end
    elseif t == "custom" then
      local key = conf.sse_custom_key
      if not key or key == "" then
        ferry.fail("usage", where .. ": druid.storage.sse.type=custom needs druid.storage.sse.custom.base64EncodedKey")
      end
      local ok, raw = pcall(ferry.base64.decode, key)
      if not ok or #raw ~= 32 then
        ferry.fail("usage", where .. ": druid.storage.sse.custom.base64EncodedKey is not the base64 form of a " ..
          "256-bit key (SSE-C needs 32 bytes)")
      end
      o.server_side_encryption = "sse-c"
      o.sse_customer_key_base64 = key
      shown[#shown + 1] = "druid.storage.sse.type=custom"
      shown[#shown + 1] = "druid.storage.sse.custom.base64EncodedKey=<the same key>"
    else
      ferry.fail("usage", ("%s: druid.storage.sse.type=%s; Druid knows noop, s3, kms and custom"):format(where, t))
    end
    local d = conf.disable_acl
    local disable = false
    if d ~= nil and d ~= "" then
      local l = d:lower()
      if l == "true" then disable = true
      elseif l ~= "false" then
        ferry.fail("usage", ("%s: druid.storage.disableAcl=%s is not true or false"):format(where, d))
      end
    end
    if disable then
      shown[#shown + 1] = "druid.storage.disableAcl=true"
    else
      o.acl_from_bucket = true
    end
    return o, shown
  end

  --- The distribution root a relative druid.storage.storageDirectory is resolved against: the folder
  --- holding conf/ when the properties file lives under conf/druid/..., else the file's folder.
  function M.druid_home(conf_path)
    local root = conf_path:match("^(.*)/conf/druid/")
    return root or (conf_path:match("^(.*)/[^/]*$") or ".")
  end

  --- jdbc:mysql://h:p/db?x or jdbc:postgresql://h:p/db -> ferry SQL URL (nil, reason for Derby).
  function M.sql_url(connect_uri, user, password)
    if not connect_uri then return nil, "druid.metadata.storage.connector.connectURI is not set" end
    local kind, rest = connect_uri:match("^jdbc:(%w+)://(.+)$")
    if kind == "derby" or connect_uri:match("^jdbc:derby:") then
      return nil, "the metadata store is Derby, which ferry cannot reach over the network; " ..
        "use -p mode=csv with export-metadata's CSV files (export_dir)"
    end
    local scheme = ({mysql = "mysql", mariadb = "mysql", postgresql = "postgres"})[kind or ""]
    if not scheme then
      return nil, ("unsupported connectURI %q (expected jdbc:mysql://, jdbc:mariadb:// or jdbc:postgresql://)")
        :format(connect_uri)
    end
    local hostpath = rest:gsub("%?.*$", "")
    local auth = ""
    if user and user ~= "" then
      auth = urlencode(user) .. (password and (":" .. urlencode(password)) or "") .. "@"
    end
    return scheme .. "://" .. auth .. hostpath
  end

  M.urlencode = urlencode
end
