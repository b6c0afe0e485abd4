//! The library's table of status kinds is the one source: the command's man page and the
//! Prolog pack's documented codes are held to it here (the command's `--help` rows are made
//! from it, and bindings/cli/tests/test_cli.sh holds the man page to `--help`; the Prolog glue
//! reads each code's name from `usock_status_name`). A kind added to `status_kinds!` and not to
//! those fails here.

use std::fs;
use std::path::Path;

use usock::ErrorKind;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The man page's EXIT STATUS rows, as (code, text); a long text is a tbl text block
/// (`T{`, its lines, `T}`), read as one line.
fn man_page_exit_rows() -> Vec<(u32, String)> {
    let man = read("bindings/cli/usock.1");
    let table = man
        .split(".SH EXIT STATUS")
        .nth(1)
        .and_then(|rest| rest.split(".TE").next())
        .expect("usock.1 has an EXIT STATUS table");
    let mut rows = Vec::new();
    let mut lines = table.lines();
    while let Some(line) = lines.next() {
        let Some((code, text)) = line.split_once('\t') else {
            continue;
        };
        let text = if text == "T{" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "T}").collect();
            block.join(" ")
        } else {
            text.to_owned()
        };
        if let Ok(code) = code.parse() {
            rows.push((code, text));
        }
    }
    rows
}

#[test]
fn every_status_of_the_rust_api_has_its_exit_code_in_the_man_page() {
    let rows = man_page_exit_rows();
    for &kind in ErrorKind::all().iter().filter(|kind| kind.in_rust_api()) {
        let code = 10 + kind.code().unsigned_abs();
        let want = format!("{} ({}", kind.describe(), kind.name());
        let row = rows.iter().find(|(c, _)| *c == code);
        assert!(
            row.is_some_and(|(_, text)| text.starts_with(&want)),
            "usock.1: exit code {code} should read \"{want}...\", found {row:?}"
        );
    }
}

#[test]
fn the_man_page_has_no_exit_code_of_a_status_the_library_lacks() {
    for (code, text) in man_page_exit_rows() {
        if let Some(name) = text
            .split(['(', ';', ')'])
            .find(|w| w.starts_with("USOCK_ERR_"))
        {
            let kind = ErrorKind::all().iter().find(|k| k.name() == name);
            assert!(
                kind.is_some_and(|k| 10 + k.code().unsigned_abs() == code && k.in_rust_api()),
                "usock.1: exit code {code} names {name}"
            );
        }
    }
}

/// The codes usock.pl's documentation lists (backquoted, after "where Code is").
fn prolog_documented_codes() -> Vec<String> {
    let pl = read("bindings/prolog/prolog/usock.pl");
    let after = pl
        .split("where Code is")
        .nth(1)
        .expect("usock.pl documents Code");
    let list = after.split("Message names").next().unwrap();
    list.split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_prolog_pack_documents_every_status_code_by_the_librarys_name() {
    let want: Vec<String> = ErrorKind::all()
        .iter()
        .map(|kind| kind.name().trim_start_matches("USOCK_ERR_").to_lowercase())
        .collect();
    assert_eq!(prolog_documented_codes(), want, "usock.pl's list of codes");
}

#[test]
fn the_table_has_a_distinct_name_and_code_per_kind() {
    let kinds = ErrorKind::all();
    for (i, kind) in kinds.iter().enumerate() {
        assert_eq!(kind.code(), -(i as i32) - 1);
        assert!(kind.name().starts_with("USOCK_ERR_"));
        assert_eq!(ErrorKind::from_code(kind.code()), Some(*kind));
    }
}
