//! Path loss: 3GPP TR 38.901 UMa and UMi street canyon (Table 7.4.1-1) with the LOS
//! probability of Table 7.4.2-1, and a simple log-distance model.

/// Speed of light (m/s).
const C: f64 = 299_792_458.0;

/// The propagation environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Urban macro: base stations at 25 m.
    UMa,
    /// Urban micro, street canyon: base stations at 10 m.
    UMi,
}

/// A 3GPP TR 38.901 path-loss model for a ground or low UE.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThreeGpp {
    /// UMa or UMi.
    pub env: Environment,
    /// Carrier frequency (GHz).
    pub fc_ghz: f64,
    /// Base-station antenna height (m).
    pub h_bs: f64,
    /// UE height (m), 1.5 to 22.5.
    pub h_ut: f64,
}

impl ThreeGpp {
    /// The standard heights: 25 m (UMa) or 10 m (UMi) for the base station, 1.5 m for the UE.
    #[must_use]
    pub fn new(env: Environment, fc_ghz: f64) -> Self {
        let h_bs = match env {
            Environment::UMa => 25.0,
            Environment::UMi => 10.0,
        };
        Self {
            env,
            fc_ghz,
            h_bs,
            h_ut: 1.5,
        }
    }

    fn d3d(&self, d2d: f64) -> f64 {
        (d2d * d2d + (self.h_bs - self.h_ut).powi(2)).sqrt()
    }

    /// Breakpoint distance d'BP (m), with the effective environment height 1 m (a ground
    /// UE in UMa has C = 0, so hE = 1 m deterministically; UMi always uses 1 m).
    #[must_use]
    pub fn breakpoint(&self) -> f64 {
        4.0 * (self.h_bs - 1.0) * (self.h_ut - 1.0) * self.fc_ghz * 1e9 / C
    }

    /// Line-of-sight path loss (dB) at horizontal distance `d2d` (m).
    #[must_use]
    pub fn los(&self, d2d: f64) -> f64 {
        let d2d = d2d.max(10.0);
        NlosCurve::new(*self).los_at(d2d, self.d3d(d2d).log10())
    }

    /// Non-line-of-sight path loss (dB): never below the LOS loss.
    #[must_use]
    pub fn nlos(&self, d2d: f64) -> f64 {
        NlosCurve::new(*self).nlos(d2d)
    }

    /// Probability of line of sight at `d2d` (m), for UEs up to 13 m high.
    #[must_use]
    pub fn p_los(&self, d2d: f64) -> f64 {
        if d2d <= 18.0 {
            return 1.0;
        }
        let scale = match self.env {
            Environment::UMa => 63.0,
            Environment::UMi => 36.0,
        };
        18.0 / d2d + (-d2d / scale).exp() * (1.0 - 18.0 / d2d)
    }

    /// Shadow-fading standard deviation (dB).
    #[must_use]
    pub fn shadowing_db(&self, los: bool) -> f64 {
        match (self.env, los) {
            (_, true) => 4.0,
            (Environment::UMa, false) => 6.0,
            (Environment::UMi, false) => 7.82,
        }
    }

    /// Shadow-fading decorrelation distance (m), Table 7.5-6.
    #[must_use]
    pub fn decorrelation_m(&self, los: bool) -> f64 {
        match (self.env, los) {
            (Environment::UMa, true) => 37.0,
            (Environment::UMa, false) => 50.0,
            (Environment::UMi, true) => 10.0,
            (Environment::UMi, false) => 13.0,
        }
    }
}

/// Log-distance path loss `PL(d) = PL(d0) + 10·n·log10(d/d0)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogDistance {
    /// Loss at the reference distance (dB).
    pub pl0_db: f64,
    /// Reference distance (m).
    pub d0_m: f64,
    /// Exponent.
    pub exponent: f64,
}

impl LogDistance {
    /// Path loss (dB) at `d` metres (at least 1 m).
    #[must_use]
    pub fn loss(&self, d: f64) -> f64 {
        self.pl0_db + 10.0 * self.exponent * (d.max(1.0) / self.d0_m).log10()
    }

    /// Free-space loss at 1 m for `fc_ghz` as the reference, with exponent `n`.
    #[must_use]
    pub fn from_free_space(fc_ghz: f64, exponent: f64) -> Self {
        let pl0 = 20.0 * (4.0 * std::f64::consts::PI * fc_ghz * 1e9 / C).log10();
        Self {
            pl0_db: pl0,
            d0_m: 1.0,
            exponent,
        }
    }
}

/// A model's path loss with its distance-independent terms (the carrier's logarithm, the
/// breakpoint and its term) worked out once, for callers that evaluate it often: one
/// logarithm per distance instead of five. The same values as [`ThreeGpp::los`] and
/// [`ThreeGpp::nlos`], bit for bit (those delegate here): the same operations in the same
/// order, only not repeated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NlosCurve {
    model: ThreeGpp,
    /// log10 of the carrier frequency (GHz).
    lfc: f64,
    /// Breakpoint distance (m).
    bp: f64,
    /// log10(d'BP² + (h_BS − h_UT)²), beyond the breakpoint.
    far: f64,
}

impl NlosCurve {
    /// The curve of `model`.
    #[must_use]
    pub fn new(model: ThreeGpp) -> Self {
        let bp = model.breakpoint();
        let dh2 = (model.h_bs - model.h_ut).powi(2);
        Self {
            model,
            lfc: model.fc_ghz.log10(),
            bp,
            far: (bp * bp + dh2).log10(),
        }
    }

    /// [`ThreeGpp::nlos`] at `d2d` (m).
    #[must_use]
    pub fn nlos(&self, d2d: f64) -> f64 {
        let m = &self.model;
        let d2d = d2d.max(10.0);
        let ld = m.d3d(d2d).log10();
        let nlos = match m.env {
            Environment::UMa => 13.54 + 39.08 * ld + 20.0 * self.lfc - 0.6 * (m.h_ut - 1.5),
            Environment::UMi => 22.4 + 35.3 * ld + 21.3 * self.lfc - 0.3 * (m.h_ut - 1.5),
        };
        nlos.max(self.los_at(d2d, ld))
    }

    /// The LOS loss at `d2d` (already at least 10 m), `ld` being log10 of its 3D distance.
    fn los_at(&self, d2d: f64, ld: f64) -> f64 {
        let lf = 20.0 * self.lfc;
        match self.model.env {
            Environment::UMa if d2d <= self.bp => 28.0 + 22.0 * ld + lf,
            Environment::UMa => 28.0 + 40.0 * ld + lf - 9.0 * self.far,
            Environment::UMi if d2d <= self.bp => 32.4 + 21.0 * ld + lf,
            Environment::UMi => 32.4 + 40.0 * ld + lf - 9.5 * self.far,
        }
    }
}

/// RSRP (dBm): transmit power spread over the subcarriers of `n_prb` resource blocks,
/// minus the path loss (no antenna gains).
#[must_use]
pub fn rsrp_dbm(tx_dbm: f64, n_prb: u32, path_loss_db: f64) -> f64 {
    tx_dbm - 10.0 * (12.0 * f64::from(n_prb.max(1))).log10() - path_loss_db
}
