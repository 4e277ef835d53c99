//! In a real forked child a client opened before the fork is refused with advice, a new client works and runs a
//! task, and the parent's client keeps working.

use tasker_shared_ffi::testkit::{self, HandlerScript, PatternSpec, RunOptions};
use tasker_shared_ffi::{Client, ClientOptions};

/// What the child does: 0 when the old client is refused and a new one runs a diamond to completion.
fn in_the_child(inherited: &Client, url: &str) -> i32 {
    match inherited.templates() {
        Err(e) if e.code == "configuration" && e.message.contains("open a new client after fork") => {}
        Err(_) => return 2,
        Ok(_) => return 3,
    }
    let run = || -> Result<String, tasker_shared_ffi::FfiError> {
        let own = Client::open(url, ClientOptions::default())?;
        let task = testkit::create_pattern_tasks(&own, &PatternSpec::new("diamond"), 1, None)?
            .tasks
            .remove(0);
        testkit::run_until_idle(&own, &HandlerScript::default(), &RunOptions::default())?;
        let state = own.task(&task.id)?.state;
        own.close()?;
        Ok(state)
    };
    match run() {
        Ok(state) if state == "complete" => 0,
        Ok(_) => 4,
        Err(_) => 5,
    }
}

#[test]
#[allow(unsafe_code)]
fn a_forked_child_opens_its_own_client_and_the_parent_is_untouched() {
    let (url, _dir) = super::support::sqlite_url();
    let client = Client::open(&url, ClientOptions::default()).expect("open");
    client.templates().expect("the parent can use its client");

    // SAFETY: after fork the child uses the inherited client only through its guard (which compares process
    // ids before it touches the runtime or the pool), opens a client of its own on a runtime of its own, and
    // then `_exit`s, so it never runs the test harness or destructors that belong to the parent. The parent
    // only waits for the child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The child's own store is in memory: SQLite's global mutexes are inherited as they were at the fork,
        // and other tests' threads may hold them then (see docs/bindings.md §2).
        let code = in_the_child(&client, "memory:");
        // SAFETY: see above; `_exit` skips atexit handlers and destructors of the parent's state.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child this test created.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child did not exit normally: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "0 = old client refused and a new one ran a diamond; 2/3 = old client not refused as expected; 4/5 = the \
         new client did not finish the task"
    );
    client
        .templates()
        .expect("the parent's client still works after the child is gone");
    client.close().expect("close");
}
