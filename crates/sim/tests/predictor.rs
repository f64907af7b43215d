//! The radio model with the `ran` predictor: a UE on a straight line through a hex grid,
//! without shadowing, is predicted right and early.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgeshift_radio::roads::RoadNet;
use edgeshift_radio::sumo::{FcdTrace, Sample};
use edgeshift_sim::predict::{MobilitySource, PredictConfig, run};

#[test]
fn straight_line_through_a_hex_grid_is_predicted_with_more_than_2_s_lead() {
    for predictor in ["trend", "kalman", "markov", "roads"] {
        straight_line(predictor);
    }
}

fn straight_line(predictor: &str) {
    // 15 m/s eastwards for 300 s, off the site rows so the targets are unambiguous.
    let samples: Vec<Sample> = (0..=300)
        .map(|t| Sample {
            t: f64::from(t),
            x: 15.0 * f64::from(t),
            y: 120.0,
        })
        .collect();
    let mut tracks = BTreeMap::new();
    tracks.insert("car".to_owned(), samples);
    // A second, stationary UE gives the grid some height.
    tracks.insert(
        "pole".to_owned(),
        vec![
            Sample {
                t: 0.0,
                x: 2000.0,
                y: 1000.0,
            },
            Sample {
                t: 300.0,
                x: 2000.0,
                y: 1000.0,
            },
        ],
    );
    let cfg = PredictConfig {
        mobility: MobilitySource::Trace(FcdTrace { tracks }),
        isd_m: 500.0,
        sites: None,
        freq_ghz: 3.5,
        shadowing_db: 0.0,
        seed: 1,
        predictor: predictor.into(),
        // The car's road, and a parallel one 200 m north with crossings every 200 m.
        roads: Some(Arc::new(RoadNet::grid(
            [0.0, 120.0, 4600.0, 320.0],
            200.0,
            15.0,
        ))),
    };
    let r = run(&cfg).expect("runs");
    assert!(r.handovers >= 6, "{} handovers along 4.5 km", r.handovers);
    assert_eq!(r.top1_accuracy, 1.0, "{predictor}: {r:#?}");
    assert!(
        r.lead_s_p50 > 2.0,
        "{predictor}: median lead {} s",
        r.lead_s_p50
    );
    assert_eq!(r.pingpong_rate, 0.0);
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let cfg = |seed| PredictConfig {
        mobility: MobilitySource::Synthetic {
            model: "manhattan".into(),
            ues: 5,
            duration_s: 120.0,
        },
        isd_m: 500.0,
        sites: None,
        freq_ghz: 3.5,
        shadowing_db: 6.0,
        seed,
        predictor: "trend".into(),
        roads: None,
    };
    let a = serde_json::to_string(&run(&cfg(3)).expect("runs")).expect("json");
    let b = serde_json::to_string(&run(&cfg(3)).expect("runs")).expect("json");
    assert_eq!(a, b);
    let bad = PredictConfig {
        mobility: MobilitySource::Synthetic {
            model: "teleport".into(),
            ues: 1,
            duration_s: 1.0,
        },
        ..cfg(1)
    };
    assert!(run(&bad).is_err());
    // The road predictor needs roads: manhattan has its grid, a trace names none.
    let manhattan = PredictConfig {
        predictor: "roads".into(),
        ..cfg(1)
    };
    assert!(run(&manhattan).is_ok());
    let no_roads = PredictConfig {
        mobility: MobilitySource::Trace(FcdTrace {
            tracks: BTreeMap::from([(
                "car".to_owned(),
                vec![Sample {
                    t: 0.0,
                    x: 0.0,
                    y: 0.0,
                }],
            )]),
        }),
        ..manhattan
    };
    let e = run(&no_roads).expect_err("no road network");
    assert!(e.to_string().contains("--roads"), "{e}");
}
