//! Rebuild when a bundled script or Lua module changes: `include_dir!` embeds `scripts/` and `lua/`
//! but cannot tell cargo to watch them on stable Rust.
fn main() {
    println!("cargo:rerun-if-changed=scripts");
    println!("cargo:rerun-if-changed=lua");
}
