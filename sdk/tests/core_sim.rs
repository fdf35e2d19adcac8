//! Scenario tests of the sans-IO core against the simulated peer (virtual time).

mod sim;

use std::time::Duration;

use pitchey_realtime::core::{Config, Event, Instant, State};
use sim::{Op, PeerConfig, Sim};

fn config() -> Config {
    Config::new("ws://sim/ws")
}

#[test]
fn connects_sends_and_gets_acks() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 1);
    sim.run_for(1_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    sim.at(0, Op::SendDurable { n: 3 });
    sim.run_for(1_000);
    assert_eq!(sim.acked.len(), 3);
    assert_eq!(sim.applied.len(), 3);
    assert_eq!(sim.conn.metrics().queue_depth, 0);
}

#[test]
fn smoke_faults() {
    let mut sim = Sim::new(config(), PeerConfig::full(), 2);
    sim.at(500, Op::SendDurable { n: 10 });
    sim.at(600, Op::DropLink);
    sim.at(700, Op::SendDurable { n: 10 });
    sim.at(5_000, Op::Restart { down_ms: 3_000 });
    sim.at(5_010, Op::SendDurable { n: 10 });
    sim.run_for(60_000);
    assert_eq!(sim.conn.state(), &State::Connected);
    assert_eq!(sim.acked.len(), 30);
    for id in &sim.accepted {
        assert_eq!(sim.applied_count(id), 1);
    }
    let _ = (Duration::ZERO, Instant::ZERO, Event::QueueFull);
}
