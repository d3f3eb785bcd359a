-- starrocks-sync's DDL planning for one source object: the statements that bring the target's
-- table or view in line with the source's SHOW CREATE text [manual: Step 3; sync.properties table,
-- view and index settings; ../shared/reference/starrocks.md §2.7]. Installed into ferry.starrocks
-- (M) by require("ferry.starrocks_ddl")(M); scripts/starrocks-sync.lua runs the jobs.
return function(M)
  --- Appends to `jobs` (tables) and `view_jobs` (views, run after every table) the DDL jobs
  --- ({sql, why, table, after}) for source object `obj` ({db, name, kind, state}) of database
  --- `dbname`; `existing` holds the target's objects of that database (name -> kind).
  --- o = {src, dst, cfg}: the metadata connections to both clusters and the sync config.
  function M.object_jobs(o, dbname, obj, existing, jobs, view_jobs)
    local src, dst, cfg = o.src, o.dst, o.cfg
    local ddl = M.show_create(src, dbname, obj.name)
    obj.automatic = obj.kind == "table" and M.automatic(ddl)
    local full = ("%s.%s"):format(dbname, obj.name)
    if obj.kind == "view" then
      -- Views go to view_jobs, run after every table: a view needs what it selects from.
      local create = ddl:gsub("^%s*CREATE%s+VIEW%s+`?[^`%s]+`?", "CREATE VIEW " .. M.qualified(dbname, obj.name), 1)
      if not existing[obj.name] then
        view_jobs[#view_jobs + 1] = {sql = create, why = "create view " .. full, table = obj}
      elseif M.show_create(dst, dbname, obj.name) ~= ddl then
        if cfg.ddl_job_allow_drop_inconsistent_view then
          view_jobs[#view_jobs + 1] = {sql = "DROP VIEW " .. M.qualified(dbname, obj.name),
            why = "drop inconsistent view " .. full}
          view_jobs[#view_jobs + 1] = {sql = create, why = "create view " .. full, table = obj}
        else
          ferry.log.warn(("view %s differs on the target; ddl_job_allow_drop_inconsistent_view=false leaves it"):format(full))
        end
      end
    elseif not existing[obj.name] then
      jobs[#jobs + 1] = {sql = M.target_ddl(ddl, dbname, obj.name, cfg), why = "create table " .. full, table = obj,
        after = function() ferry.state.set(M.synced_key(dbname, obj.name), {}) end}
    else
      local tddl = M.show_create(dst, dbname, obj.name)
      local opts = {bitmap = cfg.enable_bitmap_index_sync}
      if M.schema_signature(ddl, opts) ~= M.schema_signature(tddl, opts) then
        if cfg.ddl_job_allow_drop_schema_change_table then
          jobs[#jobs + 1] = {sql = "DROP TABLE " .. M.qualified(dbname, obj.name), why = "drop table " .. full ..
            " (schema differs from the source; ddl_job_allow_drop_schema_change_table=true)", table = obj}
          jobs[#jobs + 1] = {sql = M.target_ddl(ddl, dbname, obj.name, cfg), why = "re-create table " .. full,
            table = obj, after = function() ferry.state.set(M.synced_key(dbname, obj.name), {}) end}
        else
          obj.state = "mismatch"
          ferry.log.warn(("table %s: schema differs on the target and ddl_job_allow_drop_schema_change_table=false; " ..
            "its data is not synced"):format(full))
        end
      else
        if cfg.enable_table_property_sync then
          for _, kv in ipairs(M.property_changes(ddl, tddl, cfg)) do
            jobs[#jobs + 1] = {sql = ('ALTER TABLE %s SET ("%s" = "%s")'):format(M.qualified(dbname, obj.name), kv[1], kv[2]),
              why = ("set property %s=%s on %s"):format(kv[1], kv[2], full)}
          end
        end
        -- Partitions: add the missing, replace the inconsistent, drop the target-only.
        local sparts, tparts = M.partitions(ddl), M.partitions(tddl)
        local tby = {}
        for _, tp in ipairs(tparts) do tby[tp.name] = tp end
        local sby = {}
        local ok_src, src_meta = pcall(M.partitions_of, src, dbname, obj.name)
        local ok_dst, dst_meta = pcall(M.partitions_of, dst, dbname, obj.name)
        local sb, tb = {}, {}
        for _, m in ipairs(ok_src and src_meta or {}) do sb[m.name] = m end
        for _, m in ipairs(ok_dst and dst_meta or {}) do tb[m.name] = m end
        local function forget(part)
          local s = M.synced(dbname, obj.name)
          s[part] = nil
          ferry.state.set(M.synced_key(dbname, obj.name), s)
        end
        for _, sp in ipairs(sparts) do
          sby[sp.name] = true
          local tp = tby[sp.name]
          local add = ("ALTER TABLE %s ADD PARTITION %s %s"):format(M.qualified(dbname, obj.name), M.quote(sp.name), sp.values)
          if not tp then
            jobs[#jobs + 1] = {sql = add, why = ("add partition %s to %s"):format(sp.name, full),
              after = function() forget(sp.name) end}
          else
            local time_differs = tp.values ~= sp.values
            local dist_differs = sb[sp.name] and tb[sp.name] and (sb[sp.name].buckets ~= tb[sp.name].buckets)
            local allowed = (time_differs and cfg.ddl_job_allow_drop_inconsistent_time_partition) or
              (not time_differs and dist_differs and cfg.ddl_job_allow_drop_inconsistent_partition)
            if (time_differs or dist_differs) and allowed then
              jobs[#jobs + 1] = {sql = ("ALTER TABLE %s DROP PARTITION %s"):format(M.qualified(dbname, obj.name), M.quote(sp.name)),
                why = ("drop inconsistent partition %s of %s (%s)"):format(sp.name, full,
                  time_differs and "range differs" or "bucketing differs")}
              jobs[#jobs + 1] = {sql = add, why = ("re-add partition %s to %s"):format(sp.name, full),
                after = function() forget(sp.name) end}
            elseif time_differs or dist_differs then
              ferry.log.warn(("partition %s of %s differs on the target; the ddl_job_allow_drop_inconsistent_* " ..
                "setting keeps it"):format(sp.name, full))
            end
          end
        end
        if M.automatic(ddl) and ok_src and ok_dst then
          -- No partition list to compare: the partitions are what SHOW PARTITIONS lists; the
          -- loads create the missing ones (data-sync), the source's drops are repeated here.
          for name in pairs(tb) do
            if not sb[name] then tparts[#tparts + 1] = {name = name} end
          end
          table.sort(tparts, function(a, b) return a.name < b.name end)
        end
        for _, tp in ipairs(tparts) do
          if not sby[tp.name] then
            if cfg.ddl_job_allow_drop_partition_target_only then
              jobs[#jobs + 1] = {sql = ("ALTER TABLE %s DROP PARTITION %s"):format(M.qualified(dbname, obj.name), M.quote(tp.name)),
                why = ("drop partition %s of %s (dropped on the source)"):format(tp.name, full),
                after = function() forget(tp.name) end}
            else
              ferry.log.warn(("partition %s of %s exists only on the target; kept"):format(tp.name, full))
            end
          end
        end
      end
    end
  end
end
