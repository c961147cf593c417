//! `pg_service.conf`, libpq's named connection services (`service=name` or
//! `PGSERVICE`): `[name]` sections of `key=value` lines, `#` comments. Pure
//! over the text; which files are read is libpq's order, applied by
//! `conninfo::resolve`.

use std::collections::BTreeMap;

/// The `key=value` pairs of section `name`, or None when the file does not
/// define it. Malformed lines are an error naming the line, as in libpq
/// ("syntax error in service file").
pub fn lookup(text: &str, name: &str) -> Result<Option<BTreeMap<String, String>>, usize> {
    let mut current: Option<&str> = None;
    let mut found: Option<BTreeMap<String, String>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let section = section.strip_suffix(']').ok_or(i + 1)?;
            if found.is_some() {
                // libpq stops at the end of the first matching section.
                break;
            }
            current = Some(section);
            if section == name {
                found = Some(BTreeMap::new());
            }
            continue;
        }
        let (key, value) = line.split_once('=').ok_or(i + 1)?;
        if current == Some(name) {
            if let Some(map) = found.as_mut() {
                map.entry(key.trim().to_string())
                    .or_insert_with(|| value.trim().to_string());
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_named_section() {
        let text = "# services\n[main]\nhost=db1\nport = 5433\n\n[other]\nhost=db2\n";
        let main = lookup(text, "main").unwrap().unwrap();
        assert_eq!(main["host"], "db1");
        assert_eq!(main["port"], "5433");
        assert_eq!(lookup(text, "other").unwrap().unwrap()["host"], "db2");
        assert_eq!(lookup(text, "none").unwrap(), None);
        assert_eq!(lookup("[a]\nnot a pair\n", "a"), Err(2));
        assert_eq!(lookup("[a\nhost=x\n", "a"), Err(1));
    }
}
