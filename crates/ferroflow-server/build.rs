//! Rebuilds the crate when the web UI's build output appears or changes, so a release binary embeds the
//! current `ui/dist` (debug builds read the folder at run time). Never runs npm: `scripts/build-ui` does.

fn main() {
    let dist = std::path::Path::new("../../ui/dist");
    if dist.join("index.html").exists() {
        println!("cargo:rerun-if-changed=../../ui/dist/index.html");
    } else {
        // No build yet: watch `ui/`, where `scripts/build-ui` will write `dist/` (a missing path would
        // rerun this script on every build).
        println!("cargo:rerun-if-changed=../../ui");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
