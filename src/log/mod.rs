//! `ferry.log`: script logging and progress for long work. The Rust side is `runtime::output`
//! and `runtime::progress`; this folder only binds them.

pub mod lua;
