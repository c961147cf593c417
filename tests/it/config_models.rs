//! Configuration models: `model = true` sections are not servers;
//! `config-switch` applies one to a server of its cluster (Barman's
//! messages), records it in `.active-model.auto`, and every later command
//! (barman-rs's and Barman 3.19.1's) runs with it until `--reset`.

use crate::harness::TestEnv;
use crate::interop::barman_py;

fn config(env: &TestEnv) {
    env.write_config(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
         [pg]\ndescription = primary\nconninfo = host=/nowhere port=5999 dbname=postgres\n\
         backup_method = postgres\narchiver = on\ncluster = c1\n\n\
         [pg-dr]\nmodel = true\ncluster = c1\nconninfo = host=/elsewhere port=5998 dbname=postgres\n\n\
         [other]\nmodel = true\ncluster = c2\ndescription = another cluster\n",
    );
}

fn conninfo_of(show: &str) -> String {
    show.lines()
        .find_map(|l| l.strip_prefix("\tconninfo: "))
        .unwrap_or_else(|| panic!("no conninfo in\n{show}"))
        .to_string()
}

#[test]
fn models_switch_like_barman_and_barman_reads_the_switch() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.home()).unwrap();
    config(&env);
    let list = env.barman(&["list-servers"]);
    assert_eq!(list.stdout, "pg - primary\n");

    let none = env.barman(&["config-switch", "pg"]);
    assert_eq!(none.code, 1);
    assert_eq!(
        none.stderr,
        "ERROR: Either a model name or '--reset' flag need to be given\n"
    );
    let unknown = env.barman(&["config-switch", "pg", "nomodel"]);
    assert_eq!(unknown.stderr, "ERROR: Unknown model 'nomodel'\n");
    let other = env.barman(&["config-switch", "pg", "other"]);
    assert_eq!(
        other.stderr,
        "ERROR: Model 'other' has 'cluster=c2', which is not compatible with 'cluster=c1' from server 'pg'\n"
    );

    let switch = env.barman(&["config-switch", "pg", "pg-dr"]);
    assert_eq!(switch.code, 0, "{}", switch.stderr);
    assert_eq!(
        switch.stdout,
        "Applying model 'pg-dr' to server 'pg'\n\
         Changing value of option 'conninfo' for server 'pg' from 'host=/nowhere port=5999 dbname=postgres' \
         to 'host=/elsewhere port=5998 dbname=postgres' through the model 'pg-dr'\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.home().join("pg/.active-model.auto")).unwrap(),
        "pg-dr"
    );
    let ours = env.barman(&["show-servers", "pg"]).stdout;
    assert_eq!(
        conninfo_of(&ours),
        "host=/elsewhere port=5998 dbname=postgres"
    );
    let theirs = barman_py(&env, &["show-servers", "pg"]);
    assert_eq!(
        conninfo_of(&String::from_utf8_lossy(&theirs.stdout)),
        "host=/elsewhere port=5998 dbname=postgres"
    );
    let again = env.barman(&["config-switch", "pg", "pg-dr"]);
    assert_eq!(
        again.stdout,
        "Model 'pg-dr' is already active for server 'pg', skipping...\n"
    );

    let reset = env.barman(&["config-switch", "pg", "--reset"]);
    assert_eq!(
        reset.stdout,
        "Resetting the active model for the server pg\n"
    );
    assert!(!env.home().join("pg/.active-model.auto").exists());
    let ours = env.barman(&["show-servers", "pg"]).stdout;
    assert_eq!(
        conninfo_of(&ours),
        "host=/nowhere port=5999 dbname=postgres"
    );

    // A model that disappeared disables the server, as in Barman.
    std::fs::write(env.home().join("pg/.active-model.auto"), "gone").unwrap();
    let check = env.barman(&["check", "pg"]);
    assert!(
        check.stdout.contains("Model 'gone' is set as the active model for the server 'pg' but the model does not exist."),
        "{}",
        check.stdout
    );
}
