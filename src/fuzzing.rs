//! Properties the fuzz targets (fuzz/) check, kept in the library so that a
//! unit test replays every committed corpus file on stable in each CI run.

use crate::config::ini;
use crate::postgres::conninfo;

/// INI reader: no panic; interpolation no panic; re-rendering a parsed
/// file gives the same sections back.
pub fn config_ini(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sections) = ini::parse(text) else {
        return;
    };
    for s in &sections {
        for e in &s.entries {
            let lookup = |k: &str| {
                s.entries
                    .iter()
                    .find(|x| x.key == k)
                    .map(|x| x.value.clone())
            };
            let _ = ini::interpolate(&e.value, &lookup);
        }
    }
    // Keys starting with '[' would re-render as headers; skip those files.
    if sections
        .iter()
        .any(|s| s.entries.iter().any(|e| e.key.starts_with('[')))
    {
        return;
    }
    let mut rendered = String::new();
    for s in &sections {
        rendered.push_str(&format!("[{}]\n", s.name));
        for e in &s.entries {
            rendered.push_str(&format!("{} = {}\n", e.key, e.value.replace('\n', "\n  ")));
        }
    }
    let again = ini::parse(&rendered).expect("rendered INI parses");
    type Flat = Vec<(String, Vec<(String, String)>)>;
    let flat = |v: &[ini::Section]| -> Flat {
        v.iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.entries
                        .iter()
                        .map(|e| (e.key.clone(), e.value.clone()))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(flat(&sections), flat(&again), "round trip of:\n{rendered}");
}

/// conninfo: no panic; quoting every parsed value and parsing again gives
/// the same pairs.
pub fn conninfo(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = conninfo::parse(text) else {
        return;
    };
    let rendered: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    let again = conninfo::parse(&rendered.join(" ")).expect("re-quoted conninfo parses");
    assert_eq!(pairs, again);
}

/// .pgpass: no panic, and lookups never panic.
pub fn pgpass(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let entries = conninfo::parse_pgpass(&text);
    let _ = conninfo::pgpass_lookup(&entries, "localhost", "5432", "db", "user");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays fuzz/corpus/<target>/* through the same property functions.
    #[test]
    fn replay_fuzz_corpora() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        type Property = fn(&[u8]);
        let targets: [(&str, Property); 3] = [
            ("config_ini", super::config_ini),
            ("conninfo", super::conninfo),
            ("pgpass", super::pgpass),
        ];
        for (name, f) in targets {
            let dir = root.join(name);
            let mut n = 0;
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                f(&data);
                n += 1;
            }
            assert!(n > 0, "corpus {name} is empty");
        }
    }
}
