//! A client used in a real forked child is refused with advice, and the parent's client keeps working.

use tasker_shared_ffi::{Client, ClientOptions};

#[test]
#[allow(unsafe_code)]
fn a_forked_child_is_refused_and_the_parent_is_untouched() {
    let (url, _dir) = super::support::sqlite_url();
    let client = Client::open(&url, ClientOptions::default()).expect("open");
    client.templates().expect("the parent can use its client");

    // SAFETY: after fork the child calls only the client's guard (which compares process ids before it
    // touches the runtime or the pool) and then `_exit`s, so it never runs the test harness or destructors
    // that belong to the parent. The parent only waits for the child.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = match client.templates() {
            Err(e) if e.code == "configuration" && e.message.contains("open a new client after fork") => 0,
            Err(_) => 2,
            Ok(_) => 3,
        };
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
        "0 = refused with advice, 2 = another error, 3 = not refused"
    );
    client
        .templates()
        .expect("the parent's client still works after the child is gone");
    client.close().expect("close");
}
