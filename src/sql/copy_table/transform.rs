//! The script's `transform(row)`: a row map that calls Lua on the Lua thread.

use super::*;

/// The script's `transform(row)`, called on the Lua thread (slower path).
pub(super) struct Transform {
    pub(super) f: Function,
    pub(super) lua: Lua,
}

impl RowMap for Rc<Transform> {
    fn map(&self, run: &Run, rows: Vec<Vec<SqlValue>>) -> Result<Vec<Vec<SqlValue>>> {
        let f = &self.f;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let t = row_to_lua(&self.lua, &run.select_cols, &r, false)
                .map_err(|e| FerryError::from_lua_error(&e))?;
            let v: Value = f.call(t).map_err(|e| FerryError::from_lua_error(&e))?;
            match v {
                Value::Nil | Value::Boolean(false) => continue,
                Value::Table(t) => {
                    let mut row = Vec::with_capacity(run.insert_cols.len());
                    for c in &run.insert_cols {
                        row.push(
                            value_from_lua(
                                &t.get::<Value>(c.as_str())
                                    .map_err(|e| FerryError::from_lua_error(&e))?,
                            )
                            .map_err(|e| FerryError::from_lua_error(&e))?,
                        );
                    }
                    out.push(row);
                }
                other => {
                    return Err(FerryError::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "transform returned a {}, expected a row table or nil",
                            other.type_name()
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }
}
