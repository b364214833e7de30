//! Integration tests: Rosetta on 127.0.0.1:0 in front of faithful fake upstreams.

mod it;
