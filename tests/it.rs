//! The one integration-test binary (`autotests = false`): every extra test
//! binary is one more full link on 2 cores. One module per capability.

mod it {
    pub mod cli;
    pub mod common;
    pub mod config;
    pub mod notify;
    pub mod store;
}
