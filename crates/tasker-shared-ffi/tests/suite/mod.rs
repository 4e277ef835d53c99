//! The integration suite: the client handle, the worker protocol, and the scenario replays.

mod client;
mod fork;
mod postgres;
mod scenarios;
mod support;
mod worker;
