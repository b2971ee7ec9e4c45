//! The headless build (`cargo build --no-default-features`): no desktop app, everything else.
//! The rest of the suite runs against this build's binary too (packaging/test.sh runs it in
//! both builds); these tests are about what differs.

mod common;

#[cfg(not(feature = "app"))]
#[test]
fn the_headless_build_says_it_has_no_app() {
    let output = common::tally()
        .env("DISPLAY", ":0")
        .output()
        .expect("tally runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = common::stderr(&output);
    assert!(stderr.contains("headless build"), "{stderr}");
    assert!(stderr.contains("tally record"), "{stderr}");
}

#[test]
fn the_command_line_is_the_same_in_both_builds() {
    let output = common::tally().arg("--help").output().expect("tally runs");
    assert!(output.status.success());
    let help = common::stdout(&output);
    for command in ["check", "record", "stream", "run", "snapshot", "devices"] {
        assert!(
            help.contains(command),
            "`{command}` missing from --help:\n{help}"
        );
    }
}
