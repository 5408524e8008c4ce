//! The admin socket: its protocol, the server the appliance runs, the command-line client.

pub mod client;
pub mod proto;
pub mod server;
