//! The run and experiment search grammar (`ferroflow-core/src/filter.rs`): any text either parses or is
//! refused with an error, never a panic; what parses renders to text that parses without a panic too (it
//! may be refused: a value holding both kinds of quote has no rendering, see `Comparison`'s `Display`).
#![no_main]

use ferroflow_core::filter::{
    parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by,
    render_filter,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(comparisons) = parse_run_filter(text) {
        let _ = parse_run_filter(&render_filter(&comparisons));
    }
    let _ = parse_experiment_filter(text);
    let _ = parse_run_order_by(text);
    let _ = parse_experiment_order_by(text);
});
