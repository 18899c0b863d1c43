//! Loading the AOF at start-up (`loadAppendOnlyFiles`): the manifest, then the base (an RDB
//! image, recognised by its `REDIS` magic, or commands), then each incr file in order.
//!
//! Commands run through the normal command path as a client with Redis's AOF-client powers
//! (no reply, no refusal, no expiry while loading: the same "before every deadline" time the
//! replica's master client uses). A truncated last file is cut at its last complete command
//! when `aof-load-truncated yes` (Redis truncates the file on disk too); a truncated file that
//! is not the last, an unknown command or a malformed record stop start-up with Redis's
//! message. Nothing loaded is fed back into the AOF: recording starts after the load.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::manifest::{AofFile, FileType, Manifest};
use crate::cmd::{execute, Ctx, Session};
use crate::env::{Disk, Env};
use crate::server::State;

/// The time AOF commands execute at: before every deadline, so nothing expires while loading.
const LOADING_NOW_MS: i64 = i64::MIN / 4;
/// Arguments one AOF command may have, and bytes one argument may hold (Redis's limits on
/// what a client may send: 512 MB per bulk).
const ARGS_MAX: usize = 1 << 20;
const ARG_BYTES_MAX: usize = 512 << 20;

/// What the load found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub keys: u64,
    pub base_size: u64,
    pub total_size: u64,
}

/// Reads the manifest (always, as Redis does: a corrupt one stops start-up even with the AOF
/// off). Missing directory or file: an empty manifest.
pub async fn read_manifest(st: &State, disk: &Disk) -> Result<Manifest, String> {
    let path = super::manifest_path(st);
    match disk.read(&path).await {
        Ok(bytes) => Manifest::parse(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(format!(
            "Fatal error: can't open the AOF manifest file {} for reading: {}",
            path.display(),
            crate::env::strerror(&e)
        )),
    }
}

/// Loads every file the manifest names. Ok(None): there is no AOF (the dataset starts empty).
pub async fn load(st: &mut State, env: &Env, manifest: &Manifest) -> Result<Option<Loaded>, String> {
    if manifest.is_empty() {
        return Ok(None);
    }
    let files: Vec<&AofFile> = manifest.base.iter().chain(manifest.incrs.iter()).collect();
    let mut loaded = Loaded::default();
    // Replies and observations are not wanted while replaying.
    let observer = st.observer.take();
    let result = load_files(st, env, &files, &mut loaded).await;
    st.observer = observer;
    result?;
    loaded.keys = st.ks.dbs.iter().map(|d| d.len() as u64).sum();
    if let Some(obs) = &st.observer {
        st.tracking.digest = crate::db::digest::digest_all(&st.ks.dbs);
        obs.emit(crate::observe::Observation::Loaded { digest: st.tracking.digest, keys: loaded.keys });
    }
    crate::fault::probe("aof.loaded");
    Ok(Some(loaded))
}

async fn load_files(st: &mut State, env: &Env, files: &[&AofFile], loaded: &mut Loaded) -> Result<(), String> {
    let disk = &env.disk;
    let truncated_ok = st.config.get("aof-load-truncated") != Some("no");
    for (i, f) in files.iter().enumerate() {
        let path = super::in_dir(st, &f.name);
        let bytes = disk.read(&path).await.map_err(|e| {
            format!("Unable to obtain the AOF file {} length. stat: {}", f.name, crate::env::strerror(&e))
        })?;
        let size = bytes.len() as u64;
        loaded.total_size = loaded.total_size.saturating_add(size);
        if f.kind == FileType::Base {
            loaded.base_size = size;
        }
        if bytes.is_empty() {
            continue;
        }
        let last = i.saturating_add(1) == files.len();
        let outcome = if bytes.starts_with(b"REDIS") {
            load_rdb(st, &bytes, &f.name)?;
            Replay::Complete
        } else {
            replay(st, env, &bytes, &f.name)?
        };
        if let Replay::Truncated { valid_up_to } = outcome {
            truncated(st, disk, &path, &f.name, valid_up_to, truncated_ok, last).await?;
            loaded.total_size = loaded.total_size.saturating_sub(size.saturating_sub(valid_up_to));
        }
        let what = if f.kind == FileType::Base { "base" } else { "incr" };
        tracing::info!("DB loaded from {what} file {}", f.name);
    }
    Ok(())
}

/// A short read: the file is cut at its last complete command when allowed, as Redis does.
async fn truncated(
    _st: &State,
    disk: &Disk,
    path: &Path,
    name: &str,
    valid_up_to: u64,
    truncated_ok: bool,
    last: bool,
) -> Result<(), String> {
    if !truncated_ok {
        return Err(format!("Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."));
    }
    tracing::warn!("!!! Warning: short read while loading the AOF file {name}!!!");
    tracing::warn!("!!! Truncating the AOF {name} at offset {valid_up_to} !!!");
    disk.truncate(path, valid_up_to)
        .await
        .map_err(|e| format!("Error truncating the AOF file {name}: {}", crate::env::strerror(&e)))?;
    crate::fault::probe("aof.truncated_tail_loaded");
    if !last {
        return Err("Fatal error: the truncated file is not the last file".into());
    }
    tracing::warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
    Ok(())
}

fn load_rdb(st: &mut State, bytes: &[u8], name: &str) -> Result<(), String> {
    let data = crate::rdb::decode(bytes, st.ks.dbs.len(), &st.ks.hasher())
        .map_err(|e| format!("Error reading the RDB base file {name}, AOF loading aborted ({e})"))?;
    // Keys already expired are kept (RDBFLAGS_AOF_PREAMBLE); they expire afterwards.
    for (index, entries) in data.dbs.into_iter().enumerate() {
        for (key, value, expire) in entries {
            st.ks.dbs[index].insert(key.clone(), value, false);
            if let Some(t) = expire {
                st.ks.dbs[index].set_expire(&key, t);
            }
        }
    }
    Ok(())
}

enum Replay {
    Complete,
    Truncated { valid_up_to: u64 },
}

/// Runs a file of commands (`loadSingleAppendOnlyFile`'s loop).
fn replay(st: &mut State, env: &Env, bytes: &[u8], name: &str) -> Result<Replay, String> {
    let mut client = Session::new(u64::MAX, "aof".into(), String::new(), true);
    client.is_master = true;
    client.authenticated = true;
    let mut pos = 0usize;
    let mut valid_up_to = 0usize;
    let mut before_multi = 0usize;
    while pos < bytes.len() {
        let args = match parse_command(bytes, &mut pos) {
            Parsed::Command(a) => a,
            Parsed::Annotation => {
                valid_up_to = pos;
                continue;
            }
            Parsed::Truncated => {
                // Inside a transaction, the whole transaction goes.
                let at = if client.multi.is_some() { before_multi } else { valid_up_to };
                return Ok(Replay::Truncated { valid_up_to: at as u64 });
            }
            Parsed::Malformed => {
                return Err(format!("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"))
            }
        };
        if st.commands.lookup(&args[0]).is_none() {
            return Err(format!(
                "Unknown command '{}' reading the append only file {name}",
                String::from_utf8_lossy(&args[0])
            ));
        }
        let is_multi = args[0].eq_ignore_ascii_case(b"MULTI");
        let start = pos;
        let mut out = bytes::BytesMut::new();
        {
            let mut ctx = Ctx { st, client: &mut client, out: &mut out, env, now_ms: LOADING_NOW_MS, frame: None };
            execute(&mut ctx, args);
        }
        client.deferred.clear();
        if is_multi {
            before_multi = valid_up_to;
        }
        valid_up_to = start;
    }
    if client.multi.is_some() {
        tracing::warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
        return Ok(Replay::Truncated { valid_up_to: before_multi as u64 });
    }
    Ok(Replay::Complete)
}

enum Parsed {
    Command(Vec<Bytes>),
    Annotation,
    Truncated,
    Malformed,
}

/// One record at `*pos`: `#...\r\n` or `*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument.
fn parse_command(bytes: &[u8], pos: &mut usize) -> Parsed {
    let rest = &bytes[*pos..];
    let Some(line_end) = rest.iter().position(|b| *b == b'\n') else {
        return if rest.first() == Some(&b'*') || rest.first() == Some(&b'#') {
            Parsed::Truncated
        } else {
            Parsed::Malformed
        };
    };
    let line = &rest[..line_end];
    if line.first() == Some(&b'#') {
        *pos = pos.saturating_add(line_end).saturating_add(1);
        return Parsed::Annotation;
    }
    if line.first() != Some(&b'*') {
        return Parsed::Malformed;
    }
    let Some(argc) = number(&line[1..]).filter(|n| *n >= 1 && *n as usize <= ARGS_MAX) else {
        return Parsed::Malformed;
    };
    let mut at = pos.saturating_add(line_end).saturating_add(1);
    let mut args = Vec::with_capacity((argc as usize).min(1024));
    for _ in 0..argc {
        let rest = &bytes[at.min(bytes.len())..];
        let Some(end) = rest.iter().position(|b| *b == b'\n') else { return Parsed::Truncated };
        let header = &rest[..end];
        if header.first() != Some(&b'$') {
            return Parsed::Malformed;
        }
        let Some(len) = number(&header[1..]).filter(|n| *n >= 0 && *n as usize <= ARG_BYTES_MAX) else {
            return Parsed::Malformed;
        };
        let start = at.saturating_add(end).saturating_add(1);
        let stop = start.saturating_add(len as usize);
        // The two bytes after the argument are skipped unchecked, as Redis's loader does.
        if stop.saturating_add(2) > bytes.len() {
            return Parsed::Truncated;
        }
        args.push(Bytes::copy_from_slice(&bytes[start..stop]));
        at = stop.saturating_add(2);
    }
    *pos = at;
    Parsed::Command(args)
}

/// A decimal number ending the line (a trailing `\r` allowed).
fn number(digits: &[u8]) -> Option<i64> {
    let d = digits.strip_suffix(b"\r").unwrap_or(digits);
    std::str::from_utf8(d).ok()?.parse().ok()
}

/// The old single-file AOF (`<dir>/<appendfilename>`, before Redis 7): moved into the AOF
/// directory as its base, as Redis's upgrade does.
pub async fn upgrade_old_file(st: &State, disk: &Disk, manifest: &mut Manifest) -> Result<(), String> {
    let name = super::file_name(st);
    let old: PathBuf = PathBuf::from(st.config.hot.dir.as_str()).join(&name);
    if !manifest.is_empty() || disk.len(&old).await.ok().flatten().is_none() {
        return Ok(());
    }
    let dir = super::dir(st);
    disk.create_dir_all(&dir)
        .await
        .map_err(|e| format!("Can't open or create append-only dir {}: {e}", dir.display()))?;
    let m = Manifest {
        base: Some(AofFile { name: name.clone(), seq: 1, kind: FileType::Base }),
        base_seq: 1,
        ..Manifest::default()
    };
    disk.write_atomic(&super::manifest_path(st), m.render().as_bytes()).await.map_err(|e| e.to_string())?;
    disk.rename(&old, &dir.join(&name)).await.map_err(|e| e.to_string())?;
    disk.sync_dir_of(&dir.join(&name)).await.map_err(|e| e.to_string())?;
    tracing::info!("Successfully migrated an old-style AOF file ({name}) into the AOF directory ({}).", dir.display());
    *manifest = m;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_annotations_and_truncation() {
        let data = b"#TS:1\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$3\r\nSET\r\n$1\r\nk";
        let mut pos = 0;
        assert!(matches!(parse_command(data, &mut pos), Parsed::Annotation));
        assert!(matches!(parse_command(data, &mut pos), Parsed::Command(a) if a.len() == 2));
        assert!(matches!(parse_command(data, &mut pos), Parsed::Command(a) if a[2] == "v"));
        let before = pos;
        assert!(matches!(parse_command(data, &mut pos), Parsed::Truncated));
        assert_eq!(pos, before, "a truncated record does not advance");
        let mut pos = 0;
        assert!(matches!(parse_command(b"SET k v\r\n", &mut pos), Parsed::Malformed));
        assert!(matches!(parse_command(b"*0\r\n", &mut pos), Parsed::Malformed));
        assert!(matches!(parse_command(b"*1\r\n$-5\r\n", &mut pos), Parsed::Malformed));
        assert!(matches!(parse_command(b"*1\r\n$99999999999\r\n", &mut pos), Parsed::Malformed));
    }
}
