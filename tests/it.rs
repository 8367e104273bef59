//! The one integration-test binary (`autotests = false`): every extra test
//! binary is one more full link on 2 cores. One module per capability, under `tests/it/`.

mod it {
    pub mod application;
    pub mod cli;
    pub mod common;
    pub mod config;
    pub mod faults;
    pub mod judgments;
    pub mod leadership;
    pub mod logs;
    pub mod notify;
    pub mod observability;
    pub mod operator;
    pub mod packaging;
    pub mod pairing;
    pub mod pipelines;
    pub mod process;
    pub mod production;
    pub mod provider_health;
    pub mod providers;
    pub mod receiver;
    pub mod replicas;
    pub mod retention;
    pub mod store;
    pub mod supervisor;
    pub mod supervisor_kinds;
    pub mod upgrade;
    pub mod whatsapp;
}
