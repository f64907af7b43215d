//! `NlosCurve` (the path loss with its constant terms worked out once) gives the values of
//! the formulas as TR 38.901 writes them, bit for bit: the predictors' output, and so every
//! simulated run, must not change with it.

use edgeshift_radio::pathloss::{Environment, NlosCurve, ThreeGpp};

/// The formulas as written before the curve existed, each term computed where it is used.
fn reference(m: &ThreeGpp, d2d: f64) -> (f64, f64) {
    let d2d = d2d.max(10.0);
    let d3d = (d2d * d2d + (m.h_bs - m.h_ut).powi(2)).sqrt();
    let bp = m.breakpoint();
    let lf = 20.0 * m.fc_ghz.log10();
    let dh2 = (m.h_bs - m.h_ut).powi(2);
    let los = match m.env {
        Environment::UMa if d2d <= bp => 28.0 + 22.0 * d3d.log10() + lf,
        Environment::UMa => 28.0 + 40.0 * d3d.log10() + lf - 9.0 * (bp * bp + dh2).log10(),
        Environment::UMi if d2d <= bp => 32.4 + 21.0 * d3d.log10() + lf,
        Environment::UMi => 32.4 + 40.0 * d3d.log10() + lf - 9.5 * (bp * bp + dh2).log10(),
    };
    let nlos = match m.env {
        Environment::UMa => {
            13.54 + 39.08 * d3d.log10() + 20.0 * m.fc_ghz.log10() - 0.6 * (m.h_ut - 1.5)
        }
        Environment::UMi => {
            22.4 + 35.3 * d3d.log10() + 21.3 * m.fc_ghz.log10() - 0.3 * (m.h_ut - 1.5)
        }
    };
    (los, nlos.max(los))
}

#[test]
fn the_curve_equals_the_written_formulas_bit_for_bit() {
    for env in [Environment::UMa, Environment::UMi] {
        for fc in [0.7, 2.0, 3.5, 28.0] {
            let m = ThreeGpp::new(env, fc);
            let curve = NlosCurve::new(m);
            let mut d = 0.0;
            while d < 20_000.0 {
                let (los, nlos) = reference(&m, d);
                assert_eq!(
                    m.los(d).to_bits(),
                    los.to_bits(),
                    "{env:?} {fc} GHz los at {d} m"
                );
                assert_eq!(
                    m.nlos(d).to_bits(),
                    nlos.to_bits(),
                    "{env:?} {fc} GHz at {d} m"
                );
                assert_eq!(
                    curve.nlos(d).to_bits(),
                    nlos.to_bits(),
                    "{env:?} {fc} GHz at {d} m"
                );
                d = d * 1.013 + 0.37;
            }
        }
    }
}
