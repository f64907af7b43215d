//! Golden path-loss values (hUT 1.5 m; hBS 25 m UMa / 10 m UMi), from
//! `shared/design/research/ran-handover-models.md` §1.2, computed from TR 38.901.

use edgeshift_radio::pathloss::{Environment, LogDistance, ThreeGpp, rsrp_dbm};

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 0.02, "got {got:.3}, want {want}");
}

#[test]
fn uma_and_umi_match_the_golden_table() {
    // (GHz, d2D, UMa LOS, UMa NLOS, UMi LOS, UMi NLOS, P_LOS UMa, P_LOS UMi)
    let rows = [
        (2.0, 50.0, 72.35, 87.65, 74.23, 89.00, 0.649, 0.520),
        (2.0, 100.0, 78.28, 98.18, 80.45, 99.47, 0.348, 0.231),
        (2.0, 200.0, 84.71, 109.60, 90.95, 110.05, 0.128, 0.094),
        (2.0, 500.0, 96.88, 125.06, 106.85, 124.09, 0.036, 0.036),
        (2.0, 1000.0, 108.91, 136.81, 118.89, 134.71, 0.018, 0.018),
        (3.5, 50.0, 77.21, 92.51, 79.09, 94.18, 0.649, 0.520),
        (3.5, 100.0, 83.14, 103.04, 85.31, 104.64, 0.348, 0.231),
        (3.5, 200.0, 89.57, 114.46, 91.61, 115.23, 0.128, 0.094),
        (3.5, 500.0, 98.27, 129.92, 107.11, 129.26, 0.036, 0.036),
        (3.5, 1000.0, 109.41, 141.67, 119.15, 139.89, 0.018, 0.018),
    ];
    for (f, d, uma_los, uma_nlos, umi_los, umi_nlos, p_uma, p_umi) in rows {
        let uma = ThreeGpp::new(Environment::UMa, f);
        let umi = ThreeGpp::new(Environment::UMi, f);
        close(uma.los(d), uma_los);
        close(uma.nlos(d), uma_nlos);
        close(umi.los(d), umi_los);
        close(umi.nlos(d), umi_nlos);
        assert!((uma.p_los(d) - p_uma).abs() < 0.001, "P_LOS UMa at {d}");
        assert!((umi.p_los(d) - p_umi).abs() < 0.001, "P_LOS UMi at {d}");
    }
}

#[test]
fn breakpoints_and_rsrp() {
    assert!((ThreeGpp::new(Environment::UMa, 2.0).breakpoint() - 320.2).abs() < 0.1);
    assert!((ThreeGpp::new(Environment::UMi, 3.5).breakpoint() - 210.1).abs() < 0.1);
    // 46 dBm over 50 PRB, UMa NLOS at 3.5 GHz and 500 m: −111.7 dBm.
    let pl = ThreeGpp::new(Environment::UMa, 3.5).nlos(500.0);
    assert!((rsrp_dbm(46.0, 50, pl) - -111.7).abs() < 0.05);
    // Log-distance, n = 3.5 from free space at 1 m: 137.80 dB at 500 m, 3.5 GHz.
    close(LogDistance::from_free_space(3.5, 3.5).loss(500.0), 137.80);
}
