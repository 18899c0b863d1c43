//! `durability-report <history files...>`: the durability table from `durability history v1`
//! files (see `invariants::acked_writes`), one row per configuration, one column group per
//! implementation, in the order the files name them. `ci/durability-real` calls it on the
//! histories of real redis-server and store-server runs; a corrupt value or an unread
//! acknowledged write fails it (exit 1).

use std::collections::BTreeMap;

use invariants::acked_writes::{measure, History};

#[derive(Default)]
struct Cell {
    runs: u64,
    acked: u64,
    lost: u64,
    unavailable_ms: u64,
    stuck: u64,
    worst: (u64, String),
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: durability-report <history files...>");
        std::process::exit(2);
    }
    let mut configurations: Vec<String> = Vec::new();
    let mut implementations: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(String, String), Cell> = BTreeMap::new();
    let mut failed = false;
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{f}: {e}");
                std::process::exit(2);
            }
        };
        let h = match History::parse(&text) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{f}: {e}");
                std::process::exit(2);
            }
        };
        for (list, name) in [(&mut configurations, &h.configuration), (&mut implementations, &h.implementation)] {
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
        let cell = cells.entry((h.configuration.clone(), h.implementation.clone())).or_default();
        cell.runs += 1;
        cell.unavailable_ms += h.unavailable_ms;
        cell.stuck += u64::from(h.stuck);
        match measure(&h) {
            Ok(loss) => {
                cell.acked += loss.acked;
                cell.lost += loss.lost;
                if loss.lost > cell.worst.0 || cell.worst.1.is_empty() {
                    cell.worst = (loss.lost, f.clone());
                }
            }
            Err(v) => {
                eprintln!("{f}: {v}");
                failed = true;
            }
        }
    }
    let mut header = String::from("| configuration |");
    let mut rule = String::from("|---|");
    for i in &implementations {
        header.push_str(&format!(" {i}: runs | acknowledged | lost (share) | unavailable per run | stuck |"));
        rule.push_str("---:|---:|---:|---:|---:|");
    }
    println!("{header}\n{rule}");
    for c in &configurations {
        let mut row = format!("| {c} |");
        for i in &implementations {
            match cells.get(&(c.clone(), i.clone())) {
                None => row.push_str(" | | | | |"),
                Some(x) => {
                    let share = if x.acked == 0 { 0.0 } else { x.lost as f64 * 100.0 / x.acked as f64 };
                    let unavail = x.unavailable_ms as f64 / 1000.0 / x.runs.max(1) as f64;
                    row.push_str(&format!(
                        " {} | {} | {} ({share:.1}%) | {unavail:.1} s | {} |",
                        x.runs, x.acked, x.lost, x.stuck
                    ));
                }
            }
        }
        println!("{row}");
    }
    if failed {
        std::process::exit(1);
    }
}
